//! `[alert]`: `match` and `diagnose`.

use super::*;

const ALERT_KEYS: &[&str] = &["match", "diagnose"];

impl Reader<'_> {
    /// `[alert]`: `match = { label = "value", ... }` and `diagnose = true|false`.
    pub(super) fn alert(&mut self, v: &Value<'_>) -> Option<RawAlert> {
        let t = self.table(v, "[alert]")?;
        self.unknown_keys(t, ALERT_KEYS, "in [alert]", "");
        let matchers = t.get("match").and_then(|m| {
            let mt = self.table(m, "`match`")?;
            let mut pairs = Vec::new();
            for (k, val) in mt {
                match val.get_ref() {
                    DeValue::String(s) => pairs.push((
                        Loc {
                            value: k.get_ref().to_string(),
                            span: k.span(),
                        },
                        Loc {
                            value: s.to_string(),
                            span: val.span(),
                        },
                    )),
                    other => self.err(
                        val.span(),
                        format!(
                            "label values in `match` must be strings, found {}",
                            other.type_str()
                        ),
                        Some("quote it: severity = \"critical\""),
                    ),
                }
            }
            Some(Loc {
                value: pairs,
                span: m.span(),
            })
        });
        Some(RawAlert {
            span: v.span(),
            matchers,
            diagnose: self.boolean(t, "diagnose"),
        })
    }
}

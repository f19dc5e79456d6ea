//! `[alert]`: which alerts start the runbook, and the labels its params read.

use super::*;

impl Validator<'_> {
    /// `[alert]` and the params' `from_label`: label names Prometheus could send, and a
    /// `match` that names at least one label (an empty one would match every alert).
    pub(super) fn alert(&mut self, a: &RawAlert, raw: &RawRunbook) -> AlertSpec {
        let mut matchers = Vec::new();
        match &a.matchers {
            None => self.err_help(
                a.span.clone(),
                "[alert] has no `match`",
                "add match = { alertname = \"...\" }: the labels an alert must have to start this runbook",
            ),
            Some(m) if m.value.is_empty() => self.err_help(
                m.span.clone(),
                "`match` is empty, so it would match every alert",
                "name at least one label, such as alertname = \"...\"",
            ),
            Some(m) => {
                for (k, v) in &m.value {
                    self.label_name(k, "`match`");
                    matchers.push((k.value.clone(), v.value.clone()));
                }
            }
        }
        for p in &raw.params {
            if let Some(l) = &p.from_label {
                self.label_name(l, "`from_label`");
            }
        }
        AlertSpec {
            matchers,
            diagnose: a.diagnose.as_ref().is_some_and(|d| d.value),
        }
    }

    fn label_name(&mut self, l: &Loc<String>, what: &str) {
        if !is_var_name(&l.value) {
            self.err_help(
                l.span.clone(),
                format!("{what}: `{}` is not a Prometheus label name", l.value),
                "label names are letters, digits and underscores, not starting with a digit",
            );
        }
    }
}

//! A `[[param]]` and a `[[step]]`: their keys, and a fleet step's `hosts`, `batch` and
//! `max_failed`.

use super::*;

impl Reader<'_> {
    pub(super) fn param(
        &mut self,
        name: &Spanned<std::borrow::Cow<'_, str>>,
        value: &Value<'_>,
    ) -> Option<RawParam> {
        let what = format!("[params.{}]", name.get_ref());
        let t = self.table(value, &what)?;
        self.unknown_keys(t, PARAM_KEYS, &format!("in {what}"), "");
        let default = match t.get("default") {
            None => None,
            Some(v) => match v.get_ref() {
                DeValue::String(s) => {
                    self.printable(s, v.span(), "default");
                    Some(s.to_string())
                }
                DeValue::Integer(i) => Some(i.as_str().to_string()),
                DeValue::Float(f) => Some(f.as_str().to_string()),
                DeValue::Boolean(b) => Some(b.to_string()),
                _ => {
                    self.type_err(v, "default", "a string or a number");
                    None
                }
            }
            .map(|value| Loc {
                value,
                span: v.span(),
            }),
        };
        Some(RawParam {
            name: Loc {
                value: name.get_ref().to_string(),
                span: name.span(),
            },
            description: self.string(t, "description").map(|l| l.value),
            required: self.boolean(t, "required").is_some_and(|l| l.value),
            default,
            pattern: self.string(t, "pattern"),
            env: self.string(t, "env"),
            secret: self.boolean(t, "secret").is_some_and(|l| l.value),
            from_label: self.string(t, "from_label"),
        })
    }

    pub(super) fn step(&mut self, item: &Value<'_>) -> Option<RawStep> {
        let t = self.table(item, "each [[step]]")?;
        // The span of an array-of-tables entry covers its header line.
        let header = item.span();
        let id = match self.string(t, "id") {
            Some(id) => id,
            None => {
                if t.get("id").is_none() {
                    self.err(
                        header.clone(),
                        "this step has no `id`",
                        Some("add id = \"short-name\""),
                    );
                }
                return None;
            }
        };
        let place = format!("in step `{}`", id.value);
        self.unknown_keys(t, STEP_KEYS, &place, "");
        let on_failure_raw = self.string(t, "on_failure");
        let on_failure_span = on_failure_raw.as_ref().map(|s| s.span.clone());
        let on_failure = match on_failure_raw {
            None => OnFailure::Abort,
            Some(s) => match s.value.as_str() {
                "abort" => OnFailure::Abort,
                "continue" => OnFailure::Continue,
                "prompt" => OnFailure::Prompt,
                other => {
                    self.enum_err(
                        s.span,
                        "on_failure",
                        other,
                        &["abort", "continue", "prompt"],
                    );
                    OnFailure::Abort
                }
            },
        };
        let milestone = self
            .string(t, "milestone")
            .and_then(|s| match s.value.as_str() {
                "mitigated" => Some((Milestone::Mitigated, s.span.clone())),
                "resolved" => Some((Milestone::Resolved, s.span.clone())),
                other => {
                    self.enum_err(s.span, "milestone", other, &["mitigated", "resolved"]);
                    None
                }
            });
        let retries = t.get("retries").and_then(|v| match v.get_ref() {
            DeValue::Integer(i) => match i64::from_str_radix(i.as_str(), i.radix()) {
                Ok(n) if (0..=MAX_RETRIES).contains(&n) => Some(Loc {
                    value: n as u32,
                    span: v.span(),
                }),
                _ => {
                    self.err(
                        v.span(),
                        format!("`retries` must be between 0 and {MAX_RETRIES}"),
                        None,
                    );
                    None
                }
            },
            _ => {
                self.type_err(v, "retries", "a whole number");
                None
            }
        });
        let retry_backoff = t.get("retry_backoff").and_then(|v| {
            let n = match v.get_ref() {
                DeValue::Integer(i) => i.as_str().parse::<f64>().ok(),
                DeValue::Float(f) => f.as_str().replace('_', "").parse::<f64>().ok(),
                _ => {
                    self.type_err(v, "retry_backoff", "a number");
                    return None;
                }
            };
            match n {
                Some(n) if (1.0..=10.0).contains(&n) => Some(Loc {
                    value: n,
                    span: v.span(),
                }),
                _ => {
                    self.err(
                        v.span(),
                        "`retry_backoff` must be a number from 1.0 (fixed delay) to 10.0",
                        None,
                    );
                    None
                }
            }
        });
        let mut env = Vec::new();
        if let Some(v) = t.get("env")
            && let Some(et) = self.table(v, "`env`")
        {
            for (k, val) in et {
                match val.get_ref() {
                    DeValue::String(s) => {
                        self.printable(s, val.span(), &format!("env.{}", k.get_ref()));
                        let key = Loc {
                            value: k.get_ref().to_string(),
                            span: k.span(),
                        };
                        let text = Loc {
                            value: s.to_string(),
                            span: val.span(),
                        };
                        let site = self.site(format!("env.{}", k.get_ref()), text);
                        env.push((key, site));
                    }
                    other => self.err(
                        val.span(),
                        format!("env values must be strings, found {}", other.type_str()),
                        Some("quote it: NAME = \"5\""),
                    ),
                }
            }
        }
        let hosts = self.hosts(t);
        let batch = self.share(t, "batch", 1);
        let max_failed = self.share(t, "max_failed", 0);
        Some(RawStep {
            header,
            title: self.string(t, "title").map(|l| l.value),
            run: self.template(t, "run"),
            manual: self.template(t, "manual"),
            needs: self.string_array(t, "needs"),
            when: self.template(t, "when"),
            confirm: self.boolean(t, "confirm"),
            timeout: self.duration(t, "timeout"),
            retries,
            retry_delay: self.duration(t, "retry_delay"),
            retry_backoff,
            on_failure,
            on_failure_span,
            capture: self.string(t, "capture"),
            ask: self.string(t, "ask"),
            env,
            dir: self.template(t, "dir"),
            readonly: self.boolean(t, "readonly"),
            rollback: self.template(t, "rollback"),
            milestone,
            shell: self.shell(t),
            hosts,
            batch,
            max_failed,
            id,
        })
    }

    /// `hosts`: one string (a template) or an array of them.
    fn hosts(&mut self, t: &DeTable<'_>) -> Option<Loc<Vec<TemplateSite>>> {
        let v = t.get("hosts")?;
        let sites = match v.get_ref() {
            DeValue::String(s) => {
                let text = Loc {
                    value: s.to_string(),
                    span: v.span(),
                };
                vec![self.site("hosts".into(), text)]
            }
            DeValue::Array(_) => self
                .string_array(t, "hosts")?
                .into_iter()
                .map(|l| self.site("hosts".into(), l))
                .collect(),
            _ => {
                self.type_err(v, "hosts", "a string or an array of strings");
                return None;
            }
        };
        if sites
            .iter()
            .all(|s| crate::runbook::hosts::words(&s.text).next().is_none())
        {
            self.err(
                v.span(),
                "`hosts` names no host",
                Some("list host names or `@group`s: hosts = [\"web-1\", \"web-2\"] or hosts = \"{{web_hosts}}\""),
            );
            return None;
        }
        Some(Loc {
            value: sites,
            span: v.span(),
        })
    }

    /// `batch` or `max_failed`: a whole number of at least `min`, or a percentage `"25%"`.
    fn share(&mut self, t: &DeTable<'_>, key: &str, min: u32) -> Option<Loc<Share>> {
        let v = t.get(key)?;
        let share = match v.get_ref() {
            DeValue::Integer(i) => i64::from_str_radix(i.as_str(), i.radix())
                .ok()
                .and_then(|n| u32::try_from(n).ok())
                .map(Share::Count),
            DeValue::String(s) => Share::parse(s),
            _ => {
                self.type_err(v, key, "a whole number or a percentage such as \"25%\"");
                return None;
            }
        };
        let ok = match share {
            Some(Share::Count(n)) => n >= min && n as usize <= crate::runbook::hosts::MAX_HOSTS,
            Some(Share::Percent(p)) => p >= min && p <= 100,
            None => false,
        };
        match share {
            Some(value) if ok => Some(Loc {
                value,
                span: v.span(),
            }),
            _ => {
                let what = if min == 0 { "0" } else { "1" };
                self.err(
                    v.span(),
                    format!(
                        "`{key}` must be a whole number from {what} to {} or a percentage from {what}% to 100%",
                        crate::runbook::hosts::MAX_HOSTS
                    ),
                    None,
                );
                None
            }
        }
    }
}

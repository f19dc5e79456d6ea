//! The Alertmanager webhook payload, version 4 (Alertmanager's `notify/webhook` `Message`
//! around `template.Data`), and [`parse`], the one pure function that turns bytes from the
//! network or a file into it, or says clearly why not.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Largest body accepted: a notification of a few thousand alerts. Alertmanager's own
/// `max_alerts` trims bigger groups (`truncatedAlerts` counts what it left out).
pub const MAX_BODY: usize = 4 * 1024 * 1024;
/// Most alerts in one notification.
pub const MAX_ALERTS: usize = 10_000;
/// Longest label or annotation value kept, and most labels per alert: far beyond real
/// ones, and a bound on what one alert costs to store and list.
const MAX_VALUE: usize = 64 * 1024;
const MAX_LABELS: usize = 1_000;

pub type Labels = BTreeMap<String, String>;

/// One webhook notification: a group of alerts, sent when the group changes and again
/// every `repeat_interval`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Notification {
    pub version: String,
    pub group_key: String,
    #[serde(default)]
    pub truncated_alerts: u64,
    pub status: Status,
    #[serde(default)]
    pub receiver: String,
    #[serde(default)]
    pub group_labels: Labels,
    #[serde(default)]
    pub common_labels: Labels,
    #[serde(default)]
    pub common_annotations: Labels,
    #[serde(rename = "externalURL", default)]
    pub external_url: String,
    pub alerts: Vec<Alert>,
}

/// One alert of a notification.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Alert {
    pub status: Status,
    pub labels: Labels,
    #[serde(default)]
    pub annotations: Labels,
    pub starts_at: DateTime<Utc>,
    /// Alertmanager sends `0001-01-01T00:00:00Z` while an alert fires.
    #[serde(default, with = "ends_at")]
    pub ends_at: Option<DateTime<Utc>>,
    #[serde(rename = "generatorURL", default)]
    pub generator_url: String,
    /// A hash of the label set: the same alert in every notification about it.
    pub fingerprint: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Firing,
    Resolved,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Firing => "firing",
            Status::Resolved => "resolved",
        }
    }
}

impl Alert {
    /// The `alertname` label, or `-`.
    pub fn name(&self) -> &str {
        self.labels.get("alertname").map_or("-", String::as_str)
    }
}

/// Why a body is not a notification this receiver takes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PayloadError {
    #[error("the body is {size} bytes; at most {MAX_BODY} are accepted")]
    TooLarge { size: usize },
    #[error("the body is not an Alertmanager notification: {0}")]
    Json(String),
    #[error(
        "payload version {0} is not supported: this receiver reads Alertmanager's webhook version \"4\""
    )]
    Version(String),
    #[error("the notification is not valid: {0}")]
    Invalid(String),
}

/// Parses a webhook body. Pure: the same bytes give the same answer, and no input panics.
pub fn parse(body: &[u8]) -> Result<Notification, PayloadError> {
    if body.len() > MAX_BODY {
        return Err(PayloadError::TooLarge { size: body.len() });
    }
    // The version first, so that a future payload gets "unsupported version", not a
    // confusing complaint about some field that changed.
    #[derive(Deserialize)]
    struct Versioned {
        version: Option<serde_json::Value>,
    }
    let v: Versioned =
        serde_json::from_slice(body).map_err(|e| PayloadError::Json(e.to_string()))?;
    match v.version {
        Some(serde_json::Value::String(s)) if s == "4" => {}
        Some(serde_json::Value::String(s)) => return Err(PayloadError::Version(format!("{s:?}"))),
        Some(other) => return Err(PayloadError::Version(other.to_string())),
        None => return Err(PayloadError::Json("it has no `version` field".into())),
    }
    let n: Notification =
        serde_json::from_slice(body).map_err(|e| PayloadError::Json(e.to_string()))?;
    check(&n)?;
    Ok(n)
}

fn check(n: &Notification) -> Result<(), PayloadError> {
    let bad = |m: String| Err(PayloadError::Invalid(m));
    if n.alerts.is_empty() {
        return bad("it holds no alerts".into());
    }
    if n.alerts.len() > MAX_ALERTS {
        return bad(format!(
            "it holds {} alerts; at most {MAX_ALERTS} are accepted",
            n.alerts.len()
        ));
    }
    for (i, a) in n.alerts.iter().enumerate() {
        if !is_fingerprint(&a.fingerprint) {
            return bad(format!(
                "alert {i}: fingerprint {:?} is not 1 to 64 hexadecimal digits",
                a.fingerprint
            ));
        }
        if a.labels.len() + a.annotations.len() > MAX_LABELS {
            return bad(format!(
                "alert {i}: more than {MAX_LABELS} labels and annotations"
            ));
        }
        let long = a
            .labels
            .iter()
            .chain(&a.annotations)
            .find(|(k, v)| k.len() + v.len() > MAX_VALUE);
        if let Some((k, _)) = long {
            return bad(format!("alert {i}: `{k}` is longer than {MAX_VALUE} bytes"));
        }
    }
    Ok(())
}

/// Alertmanager's fingerprints are 16 hex digits; anything hexadecimal up to 64 is taken,
/// and nothing else, since the fingerprint becomes part of an id people type.
pub fn is_fingerprint(s: &str) -> bool {
    (1..=64).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_hexdigit())
}

mod ends_at {
    use chrono::{DateTime, Datelike, Utc};
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(t: &Option<DateTime<Utc>>, s: S) -> Result<S::Ok, S::Error> {
        match t {
            Some(t) => s.serialize_str(&t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)),
            None => s.serialize_str("0001-01-01T00:00:00Z"),
        }
    }

    /// The zero time (year 1) means "not ended".
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<DateTime<Utc>>, D::Error> {
        let t: Option<DateTime<Utc>> = Option::deserialize(d)?;
        Ok(t.filter(|t| t.year() > 1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIRING: &[u8] = include_bytes!("../../tests/fixtures/alertmanager/firing.json");

    #[test]
    fn a_real_payload_parses() {
        let n = parse(FIRING).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(n.status, Status::Firing);
        let a = &n.alerts[0];
        assert_eq!(a.name(), "PostgresPrimaryDown");
        assert_eq!(a.ends_at, None);
        assert_eq!(a.fingerprint, "b7f0de69e0b04897");
        assert!(a.generator_url.contains("g0.expr"));
    }

    #[test]
    fn bad_bodies_are_errors_with_reasons() {
        let cases: &[(&[u8], &str)] = &[
            (b"", "not an Alertmanager notification"),
            (b"{", "not an Alertmanager notification"),
            (b"[]", "not an Alertmanager notification"),
            (br#"{"version":"3"}"#, "version \"3\" is not supported"),
            (br#"{"version":4}"#, "version 4 is not supported"),
            (br#"{"version":"4"}"#, "not an Alertmanager notification"),
        ];
        for (body, want) in cases {
            let e = parse(body).err().map(|e| e.to_string()).unwrap_or_default();
            assert!(e.contains(want), "{:?}: {e}", String::from_utf8_lossy(body));
        }
        let text = String::from_utf8_lossy(FIRING).replace("b7f0de69e0b04897", "../../x");
        let e = parse(text.as_bytes())
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.contains("fingerprint"), "{e}");
    }
}

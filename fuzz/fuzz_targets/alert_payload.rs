//! Fuzzes the Alertmanager webhook payload parser, the first thing `runbook serve` does
//! with bytes from the network, and the re-serialisation the journal writes.
//!
//! Contract under test: `parse` never panics or hangs, whatever the bytes; what it accepts
//! serialises and parses back to the same notification.
#![no_main]

use libfuzzer_sys::fuzz_target;
use runbook::alert_payload::{Notification, parse};

fuzz_target!(|data: &[u8]| {
    match parse(data) {
        Ok(n) => {
            let text = serde_json::to_vec(&n).unwrap_or_default();
            let back: Option<Notification> = parse(&text).ok();
            assert_eq!(back.as_ref(), Some(&n), "a stored notification reads back the same");
        }
        Err(e) => {
            std::hint::black_box(e.to_string());
        }
    }
});

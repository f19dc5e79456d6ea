//! Fuzzes the runbook loader end to end: TOML parsing with spans, shape checks,
//! validation (references, graph, Handlebars template analysis) and the rendering of
//! diagnostics (caret and long-line window code that slices by byte offsets).
//!
//! Contract under test: `parse` never panics or hangs, whatever the bytes; errors are values.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use runbook::runbook::{LoadError, parse};

fuzz_target!(|data: &[u8]| {
    match parse(Path::new("fuzz.toml"), "fuzz", data.to_vec()) {
        Ok(rb) => {
            // Touch the result so nothing is optimised away.
            std::hint::black_box((rb.steps.len(), rb.order.len(), rb.manual_steps()));
        }
        Err(LoadError::Invalid(report)) => {
            std::hint::black_box(report.render(false));
            std::hint::black_box(report.render(true));
        }
        Err(e) => {
            std::hint::black_box(e.to_string());
        }
    }
});

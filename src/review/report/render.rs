//! Rendering the context with Handlebars: shipped templates, strict lookups, escaping.
//!
//! HTML is escaped by Handlebars itself; Markdown by [`markdown_escape`] and two helpers.

use handlebars::{
    Context, Handlebars, Helper, HelperResult, Output, RenderContext, RenderError,
    RenderErrorReason,
};

use super::Report;
use crate::cli::ReportFormat;

pub(super) const MARKDOWN: &str = include_str!("../../../templates/report.md.hbs");
pub(super) const HTML: &str = include_str!("../../../templates/report.html.hbs");

/// Renders `source` with the context: HTML-escaped for html, Markdown-escaped otherwise.
/// Strict: a misspelt name in a template is an error, never an empty cell.
pub(super) fn render(
    format: ReportFormat,
    name: &str,
    source: &str,
    context: &Report,
) -> Result<String, String> {
    let mut hb = Handlebars::new();
    hb.set_strict_mode(true);
    if format != ReportFormat::Html {
        hb.register_escape_fn(markdown_escape);
        hb.register_helper("code", Box::new(code_helper));
        hb.register_helper("fence", Box::new(fence_helper));
    }
    hb.register_template_string(name, source).map_err(|e| {
        let at = e
            .pos()
            .map(|(l, c)| format!("line {l}, column {c}: "))
            .unwrap_or_default();
        format!("{at}{}", crate::runbook::template::reason_text(&e))
    })?;
    hb.render(name, context).map_err(|e| {
        let at = match (e.line_no, e.column_no) {
            (Some(l), Some(c)) => format!("line {l}, column {c}: "),
            _ => String::new(),
        };
        let why = match e.reason() {
            RenderErrorReason::MissingVariable(Some(p)) => {
                format!("`{p}` is not in the report context (see --format json)")
            }
            _ => crate::runbook::helpers::reason(&e),
        };
        format!("{at}{why}")
    })
}

/// `{{x}}` in Markdown: text that cannot open a link, an HTML tag, emphasis, code or a table
/// cell, on one line.
fn markdown_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' | '`' | '*' | '[' | ']' | '<' | '>' | '|' => {
                out.push('\\');
                out.push(c);
            }
            '\r' | '\n' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

fn param_text(h: &Helper, helper: &'static str) -> Result<String, RenderError> {
    let v = h
        .param(0)
        .ok_or(RenderErrorReason::ParamNotFoundForIndex(helper, 0))?;
    Ok(match v.value() {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Null => String::new(),
        other => other.to_string(),
    })
}

/// The longest run of backticks in `s`, so a fence can be one longer.
fn longest_backticks(s: &str) -> usize {
    s.split(|c| c != '`').map(str::len).max().unwrap_or(0)
}

/// `{{code x}}`: an inline code span that holds any text (also inside a table cell).
fn code_helper(
    h: &Helper,
    _: &Handlebars,
    _: &Context,
    _: &mut RenderContext,
    out: &mut dyn Output,
) -> HelperResult {
    let text = param_text(h, "code")?
        .replace(['\r', '\n'], " ")
        .replace('|', "\\|");
    let ticks = "`".repeat(longest_backticks(&text) + 1);
    let pad = if text.starts_with('`') || text.ends_with('`') {
        " "
    } else {
        ""
    };
    out.write(&format!("{ticks}{pad}{text}{pad}{ticks}"))?;
    Ok(())
}

/// `{{fence x}}`: a fenced code block that holds any text.
fn fence_helper(
    h: &Helper,
    _: &Handlebars,
    _: &Context,
    _: &mut RenderContext,
    out: &mut dyn Output,
) -> HelperResult {
    let text = param_text(h, "fence")?;
    let ticks = "`".repeat(longest_backticks(&text).max(2) + 1);
    let nl = if text.ends_with('\n') { "" } else { "\n" };
    out.write(&format!("{ticks}text\n{text}{nl}{ticks}"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_escape_keeps_log_text_inert() {
        assert_eq!(
            markdown_escape("a|b <script> [x](y) *z*\nnext"),
            "a\\|b \\<script\\> \\[x\\](y) \\*z\\* next"
        );
    }

    #[test]
    fn backtick_runs() {
        assert_eq!(longest_backticks("a ``` b ` c"), 3);
        assert_eq!(longest_backticks("none"), 0);
    }
}

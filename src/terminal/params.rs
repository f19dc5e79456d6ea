//! Asking for the required params a run was started without, on a terminal: each with its
//! description, pattern and default, checked as it is typed, so the run starts at the first
//! try instead of failing once per missing param.

use std::io;

use crate::runbook::Param;

/// Asks for each param in turn; returns them as `--var` values (`NAME=VALUE`). Secret params
/// are read without echo.
pub(crate) fn ask(runbook: &str, missing: &[Param]) -> io::Result<Vec<String>> {
    use dialoguer::theme::ColorfulTheme;
    let term = console::Term::stderr();
    let theme = ColorfulTheme::default();
    let n = missing.len();
    term.write_line(&format!(
        "{runbook} needs {} that {} not given (Ctrl-C to stop):",
        if n == 1 {
            "a param".into()
        } else {
            format!("{n} params")
        },
        if n == 1 { "was" } else { "were" }
    ))?;
    let mut given = Vec::with_capacity(n);
    for p in missing {
        let mut about = p.description.clone().unwrap_or_default();
        if let Some(pat) = &p.pattern {
            about.push_str(&format!("{}must match {pat}", sep(&about)));
        }
        if let Some(env) = &p.env {
            about.push_str(&format!("{}or set ${env}", sep(&about)));
        }
        if !about.is_empty() {
            term.write_line(&format!("  {}: {about}", p.name))?;
        }
        let pattern = p
            .pattern
            .as_deref()
            .and_then(|pat| regex::Regex::new(pat).ok());
        let check = |v: &String| -> Result<(), String> {
            if v.trim().is_empty() {
                return Err("a value is required".into());
            }
            match &pattern {
                Some(re) if !re.is_match(v.trim()) => {
                    Err(format!("does not match {}", re.as_str()))
                }
                _ => Ok(()),
            }
        };
        let value = if p.secret {
            dialoguer::Password::with_theme(&theme)
                .with_prompt(p.name.as_str())
                .validate_with(|v: &String| check(v))
                .interact_on(&term)
        } else {
            let mut input = dialoguer::Input::<String>::with_theme(&theme);
            input = input.with_prompt(p.name.as_str()).validate_with(check);
            if let Some(d) = &p.default {
                input = input.default(d.clone());
            }
            input.interact_text_on(&term)
        }
        .map_err(|dialoguer::Error::IO(e)| e)?;
        given.push(format!("{}={}", p.name, value.trim()));
    }
    Ok(given)
}

fn sep(text: &str) -> &'static str {
    if text.is_empty() { "" } else { "; " }
}

//! Asking the operator: dialoguer menus on a terminal, one line per prompt otherwise
//! (spec §3). Prompts block, so the executor calls them from a blocking thread, one at a
//! time, while automated steps keep running.

use std::io::{self, BufRead, IsTerminal, Write};

use crate::event::{Answer, PromptKind};
use crate::exec::ask::{PromptError, Prompter, Question, Reply};
use crate::format::{Shown, visible};

/// The text shown before the choice.
fn header(q: &Question) -> String {
    let v = |s: &str| visible(s, Shown::Text).into_owned();
    let (step, title, body) = (v(&q.step), v(&q.title), v(&q.body));
    match q.kind {
        PromptKind::Manual => {
            let body: String = body.trim().lines().map(|l| format!("    {l}\n")).collect();
            format!("manual step {step}: {title}\n{body}")
        }
        PromptKind::Confirm => {
            format!(
                "confirm step {step}: {title}\n    will run: {}\n",
                body.trim()
            )
        }
        PromptKind::Failure => format!("step {step} ({title}) {body}\n"),
        PromptKind::Rollback => {
            format!(
                "roll back step {step}: {title}\n    will run: {}\n",
                body.trim()
            )
        }
        PromptKind::InDoubt => format!(
            "step {step} ({title}) started at {} and has no recorded end: it may or may not have run.\n    {body}\n    retry runs it again; done records that it completed; skip goes on without it\n",
            v(q.started.as_deref().unwrap_or("an unknown time"))
        ),
    }
}

/// A prompter for this process: dialoguer when stdin and stderr are terminals, else lines.
pub(crate) fn for_this_process() -> Box<dyn Prompter> {
    if io::stdin().is_terminal() && io::stderr().is_terminal() {
        Box::new(TermPrompter)
    } else {
        Box::new(LinePrompter)
    }
}

/// Reads the first word of a line as an answer, for the choices on offer; `positive` is
/// what done / yes / y mean for this question.
fn parse_answer(first: &str, choices: &[Answer], positive: Answer) -> Option<Answer> {
    let a = match first.to_ascii_lowercase().as_str() {
        "done" | "d" | "yes" | "y" => positive,
        "run" => Answer::Run,
        "skip" | "s" => Answer::Skip,
        "retry" | "r" => Answer::Retry,
        "abort" | "a" if choices.contains(&Answer::Stop) => Answer::Stop,
        "abort" | "a" => Answer::Abort,
        "stop" => Answer::Stop,
        _ => return None,
    };
    choices.contains(&a).then_some(a)
}

/// The line protocol of spec §3: one line per prompt, its first word the answer and the
/// rest the note; for `ask`, the line is the value.
pub(crate) struct LinePrompter;

impl Prompter for LinePrompter {
    fn ask(&mut self, q: &Question) -> Result<Reply, PromptError> {
        let mut err = io::stderr().lock();
        let _ = write!(err, "{}", header(q));
        let choices = q.choices();
        let words: Vec<&str> = choices.iter().map(|&a| a.as_str()).collect();
        if let (PromptKind::Manual, Some(var)) = (q.kind, &q.ask) {
            let _ = write!(err, "  {var} (one line; marks the step done): ");
            let _ = err.flush();
            let line = read_line()?;
            let _ = writeln!(err);
            return Ok(Reply {
                answer: Answer::Done,
                note: None,
                value: Some(line.trim().to_string()),
            });
        }
        loop {
            let _ = write!(
                err,
                "  answer [{}] and an optional note: ",
                words.join(" | ")
            );
            let _ = err.flush();
            let line = read_line()?;
            let _ = writeln!(err);
            let trimmed = line.trim();
            let (first, rest) = trimmed
                .split_once(char::is_whitespace)
                .unwrap_or((trimmed, ""));
            match parse_answer(first, choices, q.positive()) {
                Some(answer) => {
                    let note = rest.trim();
                    return Ok(Reply {
                        answer,
                        note: (!note.is_empty()).then(|| note.to_string()),
                        value: None,
                    });
                }
                None => {
                    let _ = writeln!(
                        err,
                        "  `{}` is not an answer here; expected one of: {}",
                        visible(first, Shown::Line),
                        words.join(", ")
                    );
                }
            }
        }
    }
}

fn read_line() -> Result<String, PromptError> {
    let mut line = String::new();
    match io::stdin().lock().read_line(&mut line) {
        Ok(0) => Err(PromptError::EndOfInput),
        Ok(_) => Ok(line.trim_end_matches(['\n', '\r']).to_string()),
        Err(e) if e.kind() == io::ErrorKind::Interrupted => Err(PromptError::Interrupted),
        Err(e) => Err(e.into()),
    }
}

/// Interactive prompts on the terminal (dialoguer, drawn on stderr).
pub(crate) struct TermPrompter;

fn dialoguer_err(e: dialoguer::Error) -> PromptError {
    let dialoguer::Error::IO(e) = e;
    let _ = console::Term::stderr().show_cursor();
    if e.kind() == io::ErrorKind::Interrupted {
        PromptError::Interrupted
    } else if e.kind() == io::ErrorKind::UnexpectedEof {
        PromptError::EndOfInput
    } else {
        PromptError::Io(e)
    }
}

impl Prompter for TermPrompter {
    fn ask(&mut self, q: &Question) -> Result<Reply, PromptError> {
        use dialoguer::theme::ColorfulTheme;
        let term = console::Term::stderr();
        let theme = ColorfulTheme::default();
        let _ = term.write_str(&format!("\n{}", header(q)));
        let choices = q.choices();
        let items: Vec<&str> = choices.iter().map(|&a| a.as_str()).collect();
        let pick = dialoguer::Select::with_theme(&theme)
            .with_prompt("answer")
            .items(&items)
            .default(0)
            .interact_on(&term)
            .map_err(dialoguer_err)?;
        let mut answer = choices[pick];
        let mut value = None;
        // Skipping an `ask` leaves its value unset for the steps that use it: say so, and
        // offer to type it instead, which records the step as done.
        if let (PromptKind::Manual, Some(var), Answer::Skip) = (q.kind, &q.ask, answer)
            && !q.needed_by.is_empty()
        {
            let _ = term.write_line(&format!(
                "  skipping leaves `{var}` unset, and {} will fail without it",
                visible(&q.needed_by.join(", "), Shown::Line)
            ));
            let v: String = dialoguer::Input::with_theme(&theme)
                .with_prompt(format!(
                    "{var} (type it to record the step done; empty skips)"
                ))
                .allow_empty(true)
                .interact_text_on(&term)
                .map_err(dialoguer_err)?;
            if !v.trim().is_empty() {
                answer = Answer::Done;
                value = Some(v.trim().to_string());
            }
        }
        if let (PromptKind::Manual, Some(var), Answer::Done, None) =
            (q.kind, &q.ask, answer, &value)
        {
            let v: String = dialoguer::Input::with_theme(&theme)
                .with_prompt(var.as_str())
                .allow_empty(true)
                .interact_text_on(&term)
                .map_err(dialoguer_err)?;
            value = Some(v.trim().to_string());
        }
        let note: String = dialoguer::Input::with_theme(&theme)
            .with_prompt("note (optional)")
            .allow_empty(true)
            .interact_text_on(&term)
            .map_err(dialoguer_err)?;
        let note = note.trim();
        Ok(Reply {
            answer,
            note: (!note.is_empty()).then(|| note.to_string()),
            value,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_read_for_the_choices_on_offer() {
        let manual = [Answer::Done, Answer::Skip, Answer::Abort];
        let failure = [Answer::Retry, Answer::Skip, Answer::Abort];
        let rollback = [Answer::Run, Answer::Skip, Answer::Stop];
        let doubt = [Answer::Retry, Answer::Done, Answer::Skip, Answer::Abort];
        assert_eq!(parse_answer("y", &manual, Answer::Done), Some(Answer::Done));
        assert_eq!(parse_answer("S", &manual, Answer::Done), Some(Answer::Skip));
        assert_eq!(parse_answer("retry", &manual, Answer::Done), None);
        assert_eq!(
            parse_answer("r", &failure, Answer::Retry),
            Some(Answer::Retry)
        );
        assert_eq!(
            parse_answer("abort", &rollback, Answer::Run),
            Some(Answer::Stop)
        );
        assert_eq!(
            parse_answer("yes", &rollback, Answer::Run),
            Some(Answer::Run)
        );
        assert_eq!(
            parse_answer("done", &doubt, Answer::Done),
            Some(Answer::Done)
        );
        assert_eq!(
            parse_answer("retry", &doubt, Answer::Done),
            Some(Answer::Retry)
        );
        assert_eq!(parse_answer("maybe", &manual, Answer::Done), None);
    }
}

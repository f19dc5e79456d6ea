//! Asking the operator: one key per answer on a terminal ([`super::keys`]), one line per
//! prompt otherwise (spec §3). Prompts block, so the executor calls them from a blocking
//! thread, one at a time, while automated steps keep running.

use std::io::{self, BufRead, IsTerminal, Write};

use crate::event::{Answer, PromptKind};
use crate::exec::ask::{PromptError, Prompter, Question, Reply};
use crate::format::{Shown, visible};

/// The text shown before the choice.
pub(crate) fn header(q: &Question) -> String {
    // The question's words come from the runbook, the log and the steps' output: shown,
    // never obeyed by the terminal.
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
            q.started.as_deref().unwrap_or("an unknown time")
        ),
        PromptKind::Stopped => format!(
            "step {step} ({title}) {body}\n    retry runs it again; done records that it completed (by hand); skip goes on without it\n"
        ),
        PromptKind::Running => format!(
            "step {step} ({title}) is still running: {body}\n    wait for it to end (then say whether it completed), or stop it\n"
        ),
        PromptKind::Interrupt => {
            let body: String = body.trim().lines().map(|l| format!("    {l}\n")).collect();
            format!(
                "Ctrl-C: stop here (resume later), roll back the completed steps, or carry on? (Ctrl-C again stops at once)\n{body}"
            )
        }
    }
}

/// A prompter for this process: keys when stdin and stderr are terminals, else lines.
pub(crate) fn for_this_process(board: super::board::Shared, colour: bool) -> Box<dyn Prompter> {
    if io::stdin().is_terminal() && io::stderr().is_terminal() {
        Box::new(super::keys::KeyPrompter::new(board, colour))
    } else {
        Box::new(LinePrompter)
    }
}

/// A line split into its answer and its note: `done rebooted it`, `done: rebooted it`,
/// `done:rebooted it`.
fn answer_and_note(line: &str) -> (&str, &str) {
    let line = line.trim();
    let end = line
        .find(|c: char| c.is_whitespace() || c == ':')
        .unwrap_or(line.len());
    let (first, rest) = line.split_at(end);
    let rest = rest.trim_start();
    (first, rest.strip_prefix(':').unwrap_or(rest).trim())
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
        "wait" | "w" => Answer::Wait,
        _ => return None,
    };
    choices.contains(&a).then_some(a)
}

/// The line protocol of spec §3: one line per prompt, its first word the answer and the
/// rest the note; for `ask`, the line is the value.
pub(crate) struct LinePrompter;

impl Prompter for LinePrompter {
    fn ask(&mut self, q: &Question) -> Result<Reply, PromptError> {
        say(&header(q));
        let choices = q.choices();
        let words: Vec<&str> = choices.iter().map(|&a| a.as_str()).collect();
        if let (PromptKind::Manual, Some(_)) = (q.kind, &q.ask) {
            let words = super::keys::value_words(q);
            say(&format!("  {words} (one line; marks the step done): "));
            let line = read_line()?;
            say("\n");
            return Ok(Reply {
                answer: Answer::Done,
                note: None,
                value: Some(line.trim().to_string()),
            });
        }
        loop {
            say(&format!(
                "  answer [{}] and an optional note: ",
                words.join(" | ")
            ));
            let line = read_line()?;
            say("\n");
            let (first, note) = answer_and_note(&line);
            match parse_answer(first, choices, q.positive()) {
                Some(answer) => {
                    return Ok(Reply {
                        answer,
                        note: (!note.is_empty()).then(|| note.to_string()),
                        value: None,
                    });
                }
                None => say(&format!(
                    "  `{first}` is not an answer here; expected one of: {}\n",
                    words.join(", ")
                )),
            }
        }
    }
}

/// Writes prompt text to stderr. The lock is held only while writing: never while
/// waiting for the answer, so the display can show a failure elsewhere at once.
fn say(text: &str) {
    let mut err = io::stderr().lock();
    let _ = err.write_all(text.as_bytes());
    let _ = err.flush();
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

/// Whether this process lost its controlling terminal (a hang-up): it can no longer open
/// `/dev/tty`.
pub(crate) fn terminal_gone() -> bool {
    std::fs::File::open("/dev/tty").is_err()
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

    #[test]
    fn a_note_follows_the_answer_after_a_space_or_a_colon() {
        assert_eq!(
            answer_and_note("done: rebooted it"),
            ("done", "rebooted it")
        );
        assert_eq!(answer_and_note("done:rebooted it"), ("done", "rebooted it"));
        assert_eq!(
            answer_and_note("  skip not needed "),
            ("skip", "not needed")
        );
        assert_eq!(answer_and_note("d"), ("d", ""));
        assert_eq!(answer_and_note("done: "), ("done", ""));
    }
}

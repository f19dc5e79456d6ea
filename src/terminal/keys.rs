//! Prompts on a terminal that take one key per answer (`d` done, `s` skip, `a` abort, `r`
//! retry, ...), with the arrows and Enter as well; `n` adds a note first, so a note costs
//! nothing when there is none. A manual step with `ask` takes two interactions: the key,
//! then the value, asked in the step's own words.
//!
//! The prompt holds the bottom of the terminal in raw mode (Ctrl-C is a key here, not a
//! signal) and wakes four times a second: to give up a question the executor took back,
//! to print what the display has for the operator (a failure elsewhere) above itself, and
//! to redraw its footer: the status line, with how much output waits.

use std::io::{self, IsTerminal};
use std::os::fd::AsFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use console::{Key, Term};

use super::board::{self, Shared};
use super::prompt::{header, terminal_gone};
use super::wrap::{width, wrap};
use crate::event::{Answer, PromptKind};
use crate::exec::ask::{PromptError, Prompter, Question, Reply, Withdrawn};

/// How often a waiting prompt looks around.
const TICK: Duration = Duration::from_millis(250);

/// The key for `answer` to a question of `kind`.
pub(crate) fn key(kind: PromptKind, answer: Answer) -> char {
    match (kind, answer) {
        (PromptKind::Interrupt, Answer::Stop) => 's',
        (_, Answer::Done) => 'd',
        (_, Answer::Yes) => 'y',
        (_, Answer::Skip) => 's',
        (_, Answer::Retry | Answer::Run | Answer::RollBack) => 'r',
        (_, Answer::Abort | Answer::Stop) => 'a',
        (_, Answer::Wait) => 'w',
        (_, Answer::CarryOn) => 'c',
    }
}

/// The words for `answer` to a question of `kind`.
pub(crate) fn label(kind: PromptKind, answer: Answer) -> &'static str {
    match (kind, answer) {
        (PromptKind::Interrupt, Answer::Stop) => "stop here",
        (PromptKind::Rollback, Answer::Stop) => "stop rolling back",
        (PromptKind::Running, Answer::Stop) => "stop it",
        (_, Answer::RollBack) => "roll back",
        (_, Answer::CarryOn) => "carry on",
        (_, a) => a.as_str(),
    }
}

/// The answer a key gives: its own key, or `y` for the question's yes.
fn answer_for(q: &Question, c: char) -> Option<Answer> {
    let c = c.to_ascii_lowercase();
    if let Some(&a) = q.choices().iter().find(|&&a| key(q.kind, a) == c) {
        return Some(a);
    }
    (c == 'y' && q.kind != PromptKind::Interrupt).then(|| q.positive())
}

/// Whether an answer to a question of `kind` may carry a note (the log keeps it with the
/// step); a question about the whole run, or about processes still running, takes none.
fn takes_note(kind: PromptKind) -> bool {
    !matches!(kind, PromptKind::Interrupt | PromptKind::Running)
}

/// The words a value is asked for with: the step's title, else its variable's name
/// made readable (`fenced_by` reads "fenced by").
pub(crate) fn value_words(q: &Question) -> String {
    match &q.ask {
        _ if q.title != q.step => q.title.clone(),
        Some(var) => var.replace(['_', '-'], " "),
        None => q.title.clone(),
    }
}

/// Raw mode on stdin for as long as it lives: keys one at a time, no echo, Ctrl-C a key.
struct Raw(nix::sys::termios::Termios);

impl Raw {
    fn enter() -> io::Result<Raw> {
        use nix::sys::termios::{
            InputFlags, LocalFlags, SetArg, SpecialCharacterIndices, tcgetattr, tcsetattr,
        };
        let stdin = io::stdin();
        let saved = tcgetattr(stdin.as_fd()).map_err(io::Error::from)?;
        let mut raw = saved.clone();
        raw.local_flags &=
            !(LocalFlags::ICANON | LocalFlags::ECHO | LocalFlags::ISIG | LocalFlags::IEXTEN);
        raw.input_flags &= !(InputFlags::IXON | InputFlags::ICRNL);
        raw.control_chars[SpecialCharacterIndices::VMIN as usize] = 1;
        raw.control_chars[SpecialCharacterIndices::VTIME as usize] = 0;
        tcsetattr(stdin.as_fd(), SetArg::TCSANOW, &raw).map_err(io::Error::from)?;
        Ok(Raw(saved))
    }
}

impl Drop for Raw {
    fn drop(&mut self) {
        let _ = nix::sys::termios::tcsetattr(
            io::stdin().as_fd(),
            nix::sys::termios::SetArg::TCSANOW,
            &self.0,
        );
    }
}

/// Whether a key waits on stdin, looking for at most `wait`.
fn key_waiting(wait: Duration) -> io::Result<bool> {
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    let stdin = io::stdin();
    let mut fds = [PollFd::new(stdin.as_fd(), PollFlags::POLLIN)];
    let ms = u16::try_from(wait.as_millis()).unwrap_or(u16::MAX);
    match poll(&mut fds, PollTimeout::from(ms)) {
        Ok(n) => Ok(n > 0),
        Err(nix::errno::Errno::EINTR) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// What the bottom line is for.
enum Mode {
    Menu,
    Note(String),
    Value(String),
    /// Skipping an `ask` that later steps need: the value may be typed instead (the step
    /// is then done); an empty line skips after all.
    Offer(String),
}

/// The prompter of a terminal.
pub(crate) struct KeyPrompter {
    board: Shared,
    withdrawn: Withdrawn,
    colour: bool,
}

impl KeyPrompter {
    pub(crate) fn new(board: Shared, colour: bool) -> Self {
        KeyPrompter {
            board,
            withdrawn: Arc::new(AtomicU64::new(0)),
            colour,
        }
    }

    fn taken_back(&self, q: &Question) -> bool {
        q.seq > 0 && self.withdrawn.load(Ordering::SeqCst) >= q.seq
    }
}

impl Prompter for KeyPrompter {
    fn ask(&mut self, q: &Question) -> Result<Reply, PromptError> {
        if !io::stdin().is_terminal() {
            return Err(PromptError::EndOfInput);
        }
        let term = Term::stderr();
        let cols = width();
        let _ = term.write_str(&format!("\n{}", wrap(&header(q), cols)));
        let raw = Raw::enter().map_err(|e| {
            if terminal_gone() {
                PromptError::HangUp
            } else {
                PromptError::Io(e)
            }
        })?;
        board::lock(&self.board).prompt_on_screen = true;
        let mut screen = Screen {
            term: &term,
            drawn: 0,
            colour: self.colour,
        };
        let result = self.converse(q, &mut screen);
        screen.clear();
        let urgent = {
            let mut b = board::lock(&self.board);
            b.prompt_on_screen = false;
            std::mem::take(&mut b.urgent)
        };
        drop(raw);
        for line in urgent {
            let _ = term.write_line(&line);
        }
        let shown = match &result {
            Ok(r) => {
                let mut s = format!("  ✔ {}", label(q.kind, r.answer));
                if let Some(v) = &r.value {
                    s.push_str(&format!(": {v}"));
                }
                if let Some(n) = &r.note {
                    s.push_str(&format!(" (note: {n})"));
                }
                s
            }
            Err(PromptError::Withdrawn) => "  (question taken back)".into(),
            Err(PromptError::Interrupted) => "  ^C".into(),
            Err(e) => format!("  ({e})"),
        };
        let _ = term.write_line(&shown);
        result
    }

    fn withdrawn(&self) -> Option<Withdrawn> {
        Some(Arc::clone(&self.withdrawn))
    }
}

/// The lines the prompt has drawn at the bottom of the terminal.
struct Screen<'a> {
    term: &'a Term,
    drawn: usize,
    colour: bool,
}

impl Screen<'_> {
    fn clear(&mut self) {
        if self.drawn == 0 {
            return;
        }
        let _ = self.term.clear_line();
        for _ in 1..self.drawn {
            let _ = self.term.move_cursor_up(1);
            let _ = self.term.clear_line();
        }
        self.drawn = 0;
    }

    fn draw(&mut self, lines: &[String]) {
        self.clear();
        let cols = width();
        let text: Vec<String> = lines
            .iter()
            .map(|l| console::truncate_str(l, cols.saturating_sub(1), "…").into_owned())
            .collect();
        let _ = self.term.write_str(&text.join("\n"));
        let _ = self.term.flush();
        self.drawn = text.len();
    }

    /// Lines printed above the prompt, which is then drawn again below them.
    fn print_above(&mut self, lines: &[String], again: &[String]) {
        self.clear();
        let cols = width();
        for l in lines {
            let _ = self.term.write_line(&wrap(l, cols));
        }
        self.draw(again);
    }

    fn paint(&self, text: &str) -> String {
        crate::format::paint(text, crate::format::Tone::Strong, self.colour)
    }
}

impl KeyPrompter {
    /// The conversation: keys until an answer (and, for `ask`, a value) is given.
    fn converse(&self, q: &Question, screen: &mut Screen) -> Result<Reply, PromptError> {
        let choices = q.choices();
        let notes = takes_note(q.kind);
        let mut selected = 0usize;
        let mut note: Option<String> = None;
        let mut mode = Mode::Menu;
        let mut picked: Option<Answer> = None;
        let mut last_footer = String::new();
        let mut dirty = true;
        let mut next_tick = Instant::now();
        loop {
            if self.taken_back(q) {
                return Err(PromptError::Withdrawn);
            }
            let footer = self.footer();
            let urgent = std::mem::take(&mut board::lock(&self.board).urgent);
            let lines = self.lines(q, choices, selected, &note, &mode, &footer, screen);
            if !urgent.is_empty() {
                screen.print_above(&urgent, &lines);
                dirty = false;
            } else if dirty || footer != last_footer {
                screen.draw(&lines);
                dirty = false;
            }
            last_footer = footer;
            let wait = next_tick
                .saturating_duration_since(Instant::now())
                .max(Duration::from_millis(10));
            if !key_waiting(wait)? {
                next_tick = Instant::now() + TICK;
                continue;
            }
            let k = screen.term.read_key_raw().map_err(|e| {
                if terminal_gone() {
                    PromptError::HangUp
                } else if e.kind() == io::ErrorKind::UnexpectedEof {
                    PromptError::EndOfInput
                } else {
                    PromptError::Io(e)
                }
            })?;
            dirty = true;
            if k == Key::CtrlC {
                return Err(PromptError::Interrupted);
            }
            match &mut mode {
                Mode::Menu => match k {
                    Key::ArrowLeft | Key::ArrowUp | Key::BackTab => {
                        selected = (selected + choices.len() - 1) % choices.len();
                    }
                    Key::ArrowRight | Key::ArrowDown | Key::Tab => {
                        selected = (selected + 1) % choices.len();
                    }
                    Key::Enter => picked = Some(choices[selected]),
                    Key::Char('n' | 'N') if notes => {
                        mode = Mode::Note(note.take().unwrap_or_default());
                    }
                    Key::Char(c) => picked = answer_for(q, c),
                    _ => {}
                },
                Mode::Note(text) | Mode::Value(text) | Mode::Offer(text) => match k {
                    Key::Char('\u{15}') => text.clear(),
                    Key::Char(c) if !c.is_control() => text.push(c),
                    Key::Backspace => {
                        text.pop();
                    }
                    Key::Escape => {
                        if let Mode::Note(_) = mode {
                            note = None;
                        }
                        mode = Mode::Menu;
                        picked = None;
                    }
                    Key::Enter => {
                        let text = std::mem::take(text).trim().to_string();
                        match mode {
                            Mode::Note(_) => {
                                note = (!text.is_empty()).then_some(text);
                                mode = Mode::Menu;
                            }
                            Mode::Offer(_) if text.is_empty() => {
                                return Ok(Reply {
                                    answer: Answer::Skip,
                                    note,
                                    value: None,
                                });
                            }
                            Mode::Offer(_) => {
                                return Ok(Reply {
                                    answer: Answer::Done,
                                    note,
                                    value: Some(text),
                                });
                            }
                            _ => {
                                return Ok(Reply {
                                    answer: picked.unwrap_or(Answer::Done),
                                    note,
                                    value: Some(text),
                                });
                            }
                        }
                    }
                    _ => {}
                },
            }
            let (Some(answer), Mode::Menu) = (picked, &mode) else {
                continue;
            };
            let asks_value =
                q.kind == PromptKind::Manual && q.ask.is_some() && answer == Answer::Done;
            if asks_value {
                mode = Mode::Value(String::new());
                continue;
            }
            let skips_a_needed_value = q.kind == PromptKind::Manual
                && q.ask.is_some()
                && answer == Answer::Skip
                && !q.needed_by.is_empty();
            if skips_a_needed_value {
                mode = Mode::Offer(String::new());
                continue;
            }
            return Ok(Reply {
                answer,
                note,
                value: None,
            });
        }
    }

    /// The status line, for the footer.
    fn footer(&self) -> String {
        let b = board::lock(&self.board);
        b.status.line(Instant::now(), chrono::Utc::now(), width())
    }

    #[allow(clippy::too_many_arguments)]
    fn lines(
        &self,
        q: &Question,
        choices: &[Answer],
        selected: usize,
        note: &Option<String>,
        mode: &Mode,
        footer: &str,
        screen: &Screen,
    ) -> Vec<String> {
        let mut lines = Vec::new();
        match mode {
            Mode::Menu => {
                if let Some(n) = note {
                    lines.push(format!("  note: {n}  (n changes it)"));
                }
                let mut menu = String::from(" ");
                for (i, &a) in choices.iter().enumerate() {
                    let item = format!("{} {}", key(q.kind, a), label(q.kind, a));
                    if i == selected {
                        menu.push_str(&format!(" ❯ {}  ", screen.paint(&item)));
                    } else {
                        menu.push_str(&format!("   {item}  "));
                    }
                }
                if takes_note(q.kind) && note.is_none() {
                    menu.push_str(" · n adds a note");
                }
                lines.push(menu.trim_end().to_string());
            }
            Mode::Note(text) => {
                lines.push(format!("  note: {text}▏  (Enter keeps it, Esc drops it)"));
            }
            Mode::Value(text) => {
                lines.push(format!(
                    "  {}: {text}▏  (Enter when done, Esc goes back)",
                    value_words(q)
                ));
            }
            Mode::Offer(text) => {
                let var = q.ask.as_deref().unwrap_or_default();
                lines.push(format!(
                    "  skipping leaves `{var}` unset, and {} will fail without it",
                    crate::format::visible(&q.needed_by.join(", "), crate::format::Shown::Line)
                ));
                lines.push(format!(
                    "  {}: {text}▏  (type it to record the step done; Enter on nothing skips)",
                    value_words(q)
                ));
            }
        }
        if !footer.is_empty() {
            lines.push(format!("  {footer}"));
        }
        lines
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exec::ask::choices;

    #[test]
    fn every_answer_on_offer_has_its_own_key() {
        for kind in [
            PromptKind::Manual,
            PromptKind::Confirm,
            PromptKind::Failure,
            PromptKind::Rollback,
            PromptKind::InDoubt,
            PromptKind::Stopped,
            PromptKind::Running,
            PromptKind::Interrupt,
        ] {
            let keys: Vec<char> = choices(kind).iter().map(|&a| key(kind, a)).collect();
            let mut unique = keys.clone();
            unique.sort_unstable();
            unique.dedup();
            assert_eq!(unique.len(), keys.len(), "{kind:?}: {keys:?}");
            assert!(!keys.contains(&'n'), "n is for notes");
        }
        assert_eq!(key(PromptKind::Manual, Answer::Done), 'd');
        assert_eq!(key(PromptKind::Failure, Answer::Retry), 'r');
        assert_eq!(key(PromptKind::Interrupt, Answer::CarryOn), 'c');
    }

    #[test]
    fn y_is_the_yes_of_each_question_and_values_are_asked_in_the_steps_words() {
        let q = |kind, title: &str, ask: Option<&str>| Question {
            kind,
            step: "fence".into(),
            title: title.into(),
            body: String::new(),
            ask: ask.map(str::to_string),
            needed_by: Vec::new(),
            started: None,
            seq: 1,
            can_roll_back: false,
        };
        assert_eq!(
            answer_for(&q(PromptKind::Manual, "fence", None), 'y'),
            Some(Answer::Done)
        );
        assert_eq!(
            answer_for(&q(PromptKind::Confirm, "fence", None), 'Y'),
            Some(Answer::Yes)
        );
        assert_eq!(
            answer_for(&q(PromptKind::InDoubt, "fence", None), 'y'),
            Some(Answer::Done)
        );
        assert_eq!(answer_for(&q(PromptKind::Manual, "fence", None), 'r'), None);
        assert_eq!(answer_for(&q(PromptKind::Interrupt, "", None), 'y'), None);
        assert_eq!(
            value_words(&q(
                PromptKind::Manual,
                "Who fenced the primary?",
                Some("fenced_by")
            )),
            "Who fenced the primary?"
        );
        assert_eq!(
            value_words(&q(PromptKind::Manual, "fence", Some("fenced_by"))),
            "fenced by"
        );
    }
}

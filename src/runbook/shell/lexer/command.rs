//! Command lists: words, operators and redirections, and what each word is (a command
//! name, an argument, an assignment, a here-document delimiter).

use super::*;

impl Lexer {
    /// Input in a command list.
    pub(super) fn cmd(&mut self, input: Input) {
        let Some(Frame::Cmd(c)) = self.frames.last_mut() else {
            return;
        };
        if c.escaped {
            c.escaped = false;
            match input {
                // A line continuation: nothing, not even a word break.
                Input::Char('\n') => {}
                Input::Char(ch) => c.word().push(ch, true),
                Input::Hole { raw } => c.word().hole(raw),
            }
            return;
        }
        if c.dollar > 0 {
            let d = c.dollar;
            c.dollar = 0;
            if self.dollar(d, input, false) {
                return;
            }
        }
        let Some(Frame::Cmd(c)) = self.frames.last_mut() else {
            return;
        };
        // An operator goes on while it can (`>>`, `<<-`, `&&`, `;;`), and is acted on at
        // the first character that cannot extend it.
        if !c.op.is_empty() {
            if let Input::Char(ch) = input
                && extends(&c.op, ch)
            {
                c.op.push(ch);
                return;
            }
            if let Input::Char('(') = input
                && (c.op == "<" || c.op == ">")
            {
                c.op.clear();
                self.push(Frame::Cmd(Cmd::new(CmdKind::Subst)));
                return;
            }
            let start = c.simple == Simple::Start && c.op == "(";
            if start && input == Input::Char('(') {
                c.op.clear();
                self.push(Frame::Arith {
                    depth: 0,
                    closing: false,
                    command: true,
                });
                return;
            }
            self.operator();
        }
        let Some(Frame::Cmd(c)) = self.frames.last_mut() else {
            return;
        };
        let ch = match input {
            Input::Hole { raw } => {
                c.word().hole(raw);
                return;
            }
            Input::Char(ch) => ch,
        };
        match ch {
            '\n' => {
                finish_word(c);
                self.end_command(false);
                if let Some(Frame::Cmd(c)) = self.frames.last_mut() {
                    let code = std::mem::take(&mut c.line_reads_code);
                    for h in &mut c.heredocs {
                        h.code |= code;
                    }
                    c.next = NextWord::Normal;
                    if c.kind == CmdKind::Top {
                        self.line_holes.clear();
                    }
                }
                self.start_heredoc();
            }
            ' ' | '\t' => finish_word(c),
            '#' if c.word.is_none() => self.push(Frame::Comment),
            ')' if c.cases > 0 && c.parens == 0 => {
                finish_word(c);
                c.simple = Simple::Start;
            }
            ')' if c.parens > 0 => {
                finish_word(c);
                c.parens -= 1;
            }
            ')' => {
                finish_word(c);
                match c.kind {
                    CmdKind::Subst => {
                        self.confused |= !c.heredocs.is_empty();
                        self.frames.pop();
                        self.mark_dynamic();
                    }
                    CmdKind::Subshell => {
                        self.confused |= !c.heredocs.is_empty();
                        self.frames.pop();
                        if let Some(Frame::Cmd(parent)) = self.frames.last_mut() {
                            parent.simple = Simple::Start;
                        }
                    }
                    _ => self.confused = true,
                }
            }
            '(' if c.cases > 0 && c.simple == Simple::Start && c.word.is_none() => c.parens += 1,
            // bash's array assignment, `hosts=(a b)`: its words are data.
            '(' if c
                .word
                .as_ref()
                .is_some_and(|w| w.assignment && w.text.text.ends_with('=')) =>
            {
                finish_word(c);
                let mut array = Cmd::new(CmdKind::Subshell);
                array.simple = Simple::Args(Prog::Plain);
                self.push(Frame::Cmd(array));
            }
            '(' => {
                finish_word(c);
                c.op.push('(');
            }
            ch if UNQUOTED_OPERATORS.contains(ch) => {
                // `2>`: the digits are the fd, not a word.
                if matches!(ch, '<' | '>')
                    && let Some(w) = &c.word
                    && w.digits
                    && !w.text.text.is_empty()
                {
                    c.word = None;
                } else {
                    finish_word(c);
                }
                c.op.push(ch);
            }
            '\\' => c.escaped = true,
            '$' => c.dollar = 1,
            '\'' => {
                c.word();
                self.push(Frame::Single);
            }
            '"' => {
                c.word();
                self.push(Frame::Double {
                    dollar: 0,
                    escaped: false,
                    translated: false,
                });
            }
            '`' => {
                c.word();
                self.backquote(false);
            }
            ch => c.word().push(ch, false),
        }
    }

    /// Acts on the operator read so far.
    fn operator(&mut self) {
        let Some(Frame::Cmd(c)) = self.frames.last_mut() else {
            return;
        };
        let op = std::mem::take(&mut c.op);
        if op == "(" {
            // A subshell, or the `()` of a function definition.
            self.push(Frame::Cmd(Cmd::new(CmdKind::Subshell)));
            return;
        }
        if op == ";;" || op == ";&" || op == ";;&" {
            c.simple = Simple::Start;
            return;
        }
        c.next = next_after(&op);
        if separates(&op) {
            self.end_command(op == "|" || op == "|&");
        }
    }

    /// The simple command being read in the top frame ends (at a separator, or a newline);
    /// `pipe` when its output goes to the next one. A command that runs its standard
    /// input as code makes the line's here-documents code, and, fed by a pipe, refuses
    /// every value before it on the line.
    fn end_command(&mut self, pipe: bool) {
        let holes_now = self.line_holes.len();
        let Some(Frame::Cmd(c)) = self.frames.last_mut() else {
            return;
        };
        let reads = c.simple.reads_code();
        let piped = std::mem::replace(&mut c.piped, pipe);
        let fed = std::mem::replace(&mut c.fed, holes_now);
        c.line_reads_code |= reads;
        c.simple = Simple::Start;
        if reads && piped {
            let upstream = &self.line_holes[..fed.min(holes_now)];
            let refused = upstream
                .iter()
                .map(|&id| (id, Refusal::Place(PIPED_INTO_CODE)));
            self.late.extend(refused);
        }
    }
}

/// Whether `op` followed by `c` is still one operator.
fn extends(op: &str, c: char) -> bool {
    matches!(
        (op, c),
        ("<", '<' | '&' | '>')
            | ("<<", '-' | '<')
            | (">", '>' | '&' | '|')
            | ("&", '&' | '>')
            | ("&>", '>')
            | ("|", '|' | '&')
            | (";", ';' | '&')
            | (";;", '&')
    )
}

/// What the word after operator `op` is.
pub(super) fn next_after(op: &str) -> NextWord {
    match op {
        "<<" => NextWord::HereDelim { strip_tabs: false },
        "<<-" => NextWord::HereDelim { strip_tabs: true },
        o if o.starts_with('<') || o.starts_with('>') || o.starts_with("&>") => NextWord::Redirect,
        _ => NextWord::Normal,
    }
}

/// Whether `op` ends a simple command (so the next word is a command name).
pub(super) fn separates(op: &str) -> bool {
    matches!(
        op,
        ";" | "&" | "|" | "&&" | "||" | "|&" | ";;" | ";&" | ";;&"
    )
}

/// Acts on a pending operator at the end of a backquoted command.
pub(super) fn end_op(c: &mut Cmd) {
    if !c.op.is_empty() {
        let op = std::mem::take(&mut c.op);
        c.next = next_after(&op);
    }
}

/// The word being read is finished.
pub(super) fn finish_word(c: &mut Cmd) {
    let Some(w) = c.word.take() else {
        return;
    };
    match std::mem::replace(&mut c.next, NextWord::Normal) {
        NextWord::Redirect => {}
        NextWord::HereDelim { strip_tabs } => c.heredocs.push(HereSpec {
            delimiter: w.text.text.clone(),
            quoted: w.text.quoted,
            strip_tabs,
            code: c.simple.reads_code(),
        }),
        NextWord::Normal => {
            let start = c.simple == Simple::Start;
            if start && !w.text.quoted && !w.text.dynamic {
                match w.text.text.as_str() {
                    "case" => c.cases += 1,
                    "esac" => c.cases = c.cases.saturating_sub(1),
                    _ => {}
                }
            }
            let mut text = w.text;
            if w.has_hole && !w.raw_hole && start {
                // Already refused as a command name; read the rest as arguments.
                text = WordText::default();
            }
            let simple = std::mem::replace(&mut c.simple, Simple::Start);
            c.simple = simple.next(&text, w.assignment);
        }
    }
}

//! Here-documents: the body after the line that declares it, read line by line until
//! its delimiter, with expansions followed unless the delimiter was quoted.

use super::*;

impl Lexer {
    pub(super) fn here(&mut self, input: Input) {
        let Some(Frame::Here(h)) = self.frames.last_mut() else {
            return;
        };
        let c = match input {
            Input::Hole { .. } => {
                h.line_has_hole = true;
                h.line_len += 1;
                h.escaped = false;
                h.dollar = 0;
                return;
            }
            Input::Char(c) => c,
        };
        if watch_line(h, c) {
            // The delimiter line: the document ends; the next declared one starts, or the
            // next line of commands.
            self.frames.pop();
            if self.frames.len() == 1 {
                self.line_holes.clear();
            }
            self.start_heredoc();
            return;
        }
        if h.spec.quoted || c == '\n' {
            h.escaped = false;
            h.dollar = 0;
            return;
        }
        if h.escaped {
            h.escaped = false;
            return;
        }
        if h.dollar > 0 {
            let d = h.dollar;
            h.dollar = 0;
            // A `$` in a body is not part of a word; what it opens is.
            if self.dollar_in_here(d, c) {
                return;
            }
        }
        let Some(Frame::Here(h)) = self.frames.last_mut() else {
            return;
        };
        match c {
            '\\' => h.escaped = true,
            '$' => h.dollar = 1,
            '`' => {
                self.push(Frame::Backquote {
                    escaped: false,
                    in_double: false,
                });
                self.push(Frame::Cmd(Cmd::new(CmdKind::Backquoted)));
            }
            _ => {}
        }
    }

    fn dollar_in_here(&mut self, state: u8, c: char) -> bool {
        match (state, c) {
            (2, '(') => self.push(Frame::Arith {
                depth: 0,
                closing: false,
                command: false,
            }),
            (2, c) => {
                self.push(Frame::Cmd(Cmd::new(CmdKind::Subst)));
                self.handle(Input::Char(c));
            }
            (_, '(') => self.set_dollar(2),
            (_, '{') => self.push(Frame::Param {
                depth: 0,
                dollar: 0,
                escaped: false,
            }),
            _ => return false,
        }
        true
    }

    /// After a command line's newline: the first here-document declared on it begins.
    pub(super) fn start_heredoc(&mut self) {
        let Some(Frame::Cmd(c)) = self.frames.last_mut() else {
            return;
        };
        if c.heredocs.is_empty() {
            return;
        }
        let spec = c.heredocs.remove(0);
        self.push(Frame::Here(Here {
            spec,
            line: String::new(),
            line_len: 0,
            line_has_hole: false,
            dollar: 0,
            escaped: false,
        }));
    }
}

/// Follows a here-document's raw line; `true` when a newline ends the delimiter line.
pub(super) fn watch_line(h: &mut Here, c: char) -> bool {
    if c != '\n' {
        let stripped = h.spec.strip_tabs && c == '\t' && h.line_len == 0 && !h.line_has_hole;
        if !stripped {
            if h.line_len <= h.spec.delimiter.chars().count() {
                h.line.push(c);
            }
            h.line_len += 1;
        }
        return false;
    }
    let end =
        !h.line_has_hole && h.line == h.spec.delimiter && h.line_len == h.line.chars().count();
    h.line.clear();
    h.line_len = 0;
    h.line_has_hole = false;
    end
}

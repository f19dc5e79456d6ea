//! Quotes and expansions inside a command: `"..."`, `$...` in all its forms, backquotes
//! and `${...}`, each a frame the lexer pushes and pops.

use super::*;

impl Lexer {
    pub(super) fn double(&mut self, input: Input) {
        let Some(Frame::Double {
            dollar, escaped, ..
        }) = self.frames.last_mut()
        else {
            return;
        };
        if *escaped {
            *escaped = false;
            if input != Input::Char('\n') {
                self.word_char_below(input);
            }
            return;
        }
        if *dollar > 0 {
            let d = *dollar;
            *dollar = 0;
            if self.dollar(d, input, true) {
                return;
            }
        }
        let Some(Frame::Double {
            dollar, escaped, ..
        }) = self.frames.last_mut()
        else {
            return;
        };
        match input {
            Input::Char('"') => {
                self.frames.pop();
            }
            Input::Char('\\') => *escaped = true,
            Input::Char('$') => *dollar = 1,
            Input::Char('`') => self.backquote(true),
            _ => self.word_char_below(input),
        }
    }

    /// After `$` (`state` 1) or `$(` (2): what the next input opens. `true` when it was
    /// used up; otherwise the `$` was a plain character and the input is handled as usual.
    pub(super) fn dollar(&mut self, state: u8, input: Input, in_double: bool) -> bool {
        match (state, input) {
            (2, Input::Char('(')) => {
                self.push(Frame::Arith {
                    depth: 0,
                    closing: false,
                    command: false,
                });
                true
            }
            (2, _) => {
                self.push(Frame::Cmd(Cmd::new(CmdKind::Subst)));
                self.handle(input);
                true
            }
            (_, Input::Char('(')) => {
                self.set_dollar(2);
                true
            }
            (_, Input::Char('{')) => {
                self.push(Frame::Param {
                    depth: 0,
                    dollar: 0,
                    escaped: false,
                });
                true
            }
            (_, Input::Char('\'')) if !in_double => {
                self.push(Frame::AnsiC { escaped: false });
                true
            }
            (_, Input::Char('"')) if !in_double => {
                self.push(Frame::Double {
                    dollar: 0,
                    escaped: false,
                    translated: true,
                });
                true
            }
            (_, Input::Char(c))
                if is_name_start(c) || c.is_ascii_digit() || "@*#?$!-".contains(c) =>
            {
                self.word_char_below(Input::Char('$'));
                self.word_char_below(Input::Char(c));
                self.mark_dynamic();
                true
            }
            (_, Input::Char(_)) => {
                self.word_char_below(Input::Char('$'));
                false
            }
            (_, Input::Hole { .. }) => {
                self.word_char_below(Input::Char('$'));
                false
            }
        }
    }

    pub(super) fn backquote(&mut self, in_double: bool) {
        self.mark_dynamic();
        self.push(Frame::Backquote {
            escaped: false,
            in_double,
        });
        self.push(Frame::Cmd(Cmd::new(CmdKind::Backquoted)));
    }

    pub(super) fn param(&mut self, input: Input) {
        let Some(Frame::Param {
            dollar, escaped, ..
        }) = self.frames.last_mut()
        else {
            return;
        };
        if *escaped {
            *escaped = false;
            return;
        }
        if *dollar > 0 {
            let d = *dollar;
            *dollar = 0;
            if self.dollar(d, input, false) {
                return;
            }
        }
        let Some(Frame::Param {
            depth,
            dollar,
            escaped,
        }) = self.frames.last_mut()
        else {
            return;
        };
        match input {
            Input::Char('}') if *depth == 0 => {
                self.frames.pop();
                self.mark_dynamic();
            }
            Input::Char('}') => *depth -= 1,
            Input::Char('{') => *depth += 1,
            Input::Char('\\') => *escaped = true,
            Input::Char('$') => *dollar = 1,
            Input::Char('\'') => self.push(Frame::Single),
            Input::Char('"') => self.push(Frame::Double {
                dollar: 0,
                escaped: false,
                translated: false,
            }),
            Input::Char('`') => self.backquote(false),
            _ => {}
        }
    }
}

//! A small lexer for POSIX shell command text that follows quoting, not meaning: fed the
//! text of a command with holes where values go, it says in which context each hole
//! stands (an unquoted word, '...', "...", a here-document line, a comment, and how many
//! backquotes deep), or why no quoting can keep a value there as data.
//!
//! It knows words, the three quotes, `\`, `$(...)`, backquotes, `${...}`, `$((...))`,
//! `$'...'`, comments, operators and redirections, here-documents (`<<`, `<<-`, quoted
//! or not) and `case` patterns; bash's `[[ ]]`, `(( ))` and `<(...)` are followed far
//! enough to refuse values in them. Whatever it cannot follow makes it *confused*, and a
//! confused lexer refuses every later hole: it never guesses a context.

mod command;
mod heredoc;
mod quoted;

use super::programs::{Danger, Prog, Simple, WordText};
use command::{end_op, finish_word, next_after, separates};
use heredoc::watch_line;

/// Where a value stands in a command.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Context {
    /// An unquoted word; `quote_always` inside an open tilde prefix (`~{{user}}`), where
    /// even a plain value must be quoted to stay data.
    Word { quote_always: bool },
    /// Inside '...'.
    Single,
    /// Inside "...".
    Double,
    /// A line of an unquoted here-document; `line_open` while the line so far (its
    /// leading tabs stripped, for `<<-`) could still turn out to be the delimiter.
    HereDoc {
        delimiter: String,
        strip_tabs: bool,
        line_open: bool,
    },
    /// A comment: only a newline would end it.
    Comment,
}

/// A hole's context, and how many backquote substitutions it is inside (0 or 1).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Slot {
    pub context: Context,
    pub backquotes: u8,
}

/// Why a hole cannot hold a value as data.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Refusal {
    /// The command's words say so (a command name, a nested shell's script, ...).
    Program(Danger),
    /// A place in the syntax that has no safe quoting, or that the analysis does not know.
    Place(&'static str),
    /// The lexer lost track of the quoting earlier (an unterminated construct, a stray
    /// `)`), so it cannot tell.
    Confused,
}

impl Refusal {
    /// The safe ways to give such a value instead.
    pub fn help(&self) -> &'static str {
        match self {
            Refusal::Program(d) => d.help(),
            _ => super::programs::SAFE_WAYS,
        }
    }

    pub fn explain(&self) -> String {
        match self {
            Refusal::Program(d) => d.explain(),
            Refusal::Place(p) => format!("it stands {p}"),
            Refusal::Confused => {
                "the analysis lost track of the command's quoting before it".into()
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum CmdKind {
    Top,
    /// `$(...)`, `<(...)`, `>(...)`.
    Subst,
    /// `( ... )`: a subshell, or the `()` of a function definition.
    Subshell,
    /// The command between backquotes.
    Backquoted,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum NextWord {
    Normal,
    /// A redirection's target (a file name, an fd).
    Redirect,
    /// A here-document's delimiter.
    HereDelim {
        strip_tabs: bool,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct HereSpec {
    delimiter: String,
    quoted: bool,
    strip_tabs: bool,
    /// Its line hands standard input to a shell, ssh or an interpreter (`bash <<EOF`,
    /// `cat <<EOF | sh`): the body is code.
    code: bool,
}

/// The word being read.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Word {
    text: WordText,
    /// Only unquoted name characters so far (then `=` makes an assignment).
    name_so_far: bool,
    assignment: bool,
    /// Only unquoted digits so far (an fd number before `<` or `>`).
    digits: bool,
    tilde_open: bool,
    /// The last character was an unquoted `=` or `:` of an assignment.
    after_assign_sep: bool,
    has_hole: bool,
    /// A value inserted raw (`{{{x}}}`): unknown text, as an expansion is.
    raw_hole: bool,
}

impl Default for Word {
    fn default() -> Self {
        Word {
            text: WordText::default(),
            name_so_far: true,
            assignment: false,
            digits: true,
            tilde_open: false,
            after_assign_sep: false,
            has_hole: false,
            raw_hole: false,
        }
    }
}

impl Word {
    fn push(&mut self, c: char, quoted: bool) {
        if self.text.text.chars().count() < 64 {
            self.text.text.push(c);
        }
        self.text.quoted |= quoted;
        let name_char = c.is_ascii_alphanumeric() || c == '_';
        let first = self.text.text.chars().count() == 1;
        if !quoted && c == '=' && self.name_so_far && !first {
            self.assignment = true;
        }
        self.name_so_far &= !quoted && name_char && !(first && c.is_ascii_digit());
        self.digits &= !quoted && c.is_ascii_digit();
        if !quoted && c == '~' && (first || self.after_assign_sep) {
            self.tilde_open = true;
        } else if !quoted && c == '/' {
            self.tilde_open = false;
        }
        self.after_assign_sep = self.assignment && !quoted && (c == '=' || c == ':');
    }

    fn dynamic(&mut self) {
        self.text.dynamic = true;
        self.name_so_far = false;
        self.digits = false;
    }

    fn hole(&mut self, raw: bool) {
        self.has_hole = true;
        self.raw_hole |= raw;
        self.dynamic();
    }
}

/// A command list: the top level, or inside `$(...)`, `( )` or backquotes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Cmd {
    kind: CmdKind,
    simple: Simple,
    word: Option<Word>,
    /// 1 after an unquoted `$`, 2 after `$(`.
    dollar: u8,
    escaped: bool,
    /// Operator characters read and not yet acted on (`<`, `>>`, `&`, ...).
    op: String,
    next: NextWord,
    /// Here-documents declared on this line, whose bodies start after its newline.
    heredocs: Vec<HereSpec>,
    /// Open `case` statements, whose patterns end in `)`.
    cases: u32,
    /// Open `(` that are not frames (a `case` pattern's optional one).
    parens: u32,
    /// The command being read gets its standard input from a pipe (`... | here`), fed by
    /// the line's first `fed` holes.
    piped: bool,
    fed: usize,
    /// A command on this line runs its standard input as code.
    line_reads_code: bool,
}

impl Cmd {
    fn new(kind: CmdKind) -> Self {
        Cmd {
            kind,
            simple: Simple::Start,
            word: None,
            dollar: 0,
            escaped: false,
            op: String::new(),
            next: NextWord::Normal,
            heredocs: Vec::new(),
            cases: 0,
            parens: 0,
            piped: false,
            fed: 0,
            line_reads_code: false,
        }
    }

    fn word(&mut self) -> &mut Word {
        self.word.get_or_insert_with(Word::default)
    }
}

/// The body of a here-document, read line by line.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Here {
    spec: HereSpec,
    /// The current line (leading tabs stripped for `<<-`), as far as it could still be
    /// the delimiter, and its length in characters.
    line: String,
    line_len: usize,
    line_has_hole: bool,
    dollar: u8,
    escaped: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Frame {
    Cmd(Cmd),
    Single,
    /// `"..."`; `translated` for bash's `$"..."`.
    Double {
        dollar: u8,
        escaped: bool,
        translated: bool,
    },
    /// `$'...'`.
    AnsiC {
        escaped: bool,
    },
    /// `${...}`.
    Param {
        depth: u32,
        dollar: u8,
        escaped: bool,
    },
    /// `$((...))`, or the command `((...))`; `closing` after a `)` at depth 0.
    Arith {
        depth: u32,
        closing: bool,
        command: bool,
    },
    /// Backquotes: what is between them, with `\$`, `` \` ``, `\\` (and `\"` inside
    /// double quotes) unescaped, is a command.
    Backquote {
        escaped: bool,
        in_double: bool,
    },
    Here(Here),
    Comment,
}

const AFTER_BACKSLASH: &str = "right after a `\\`, which would escape its first character";
const AFTER_DOLLAR: &str = "right after a `$`, which would read it as a variable name";

/// Refuses a slot right after a `\`, a `$` (`dollar` 1) or a `$(` (2): a value there would
/// be escaped, read as a variable name, or run as a command.
fn after_open(escaped: bool, dollar: u8) -> Result<(), Refusal> {
    if escaped {
        return Err(Refusal::Place(AFTER_BACKSLASH));
    }
    match dollar {
        1 => Err(Refusal::Place(AFTER_DOLLAR)),
        2 => Err(Refusal::Program(Danger::CommandName)),
        _ => Ok(()),
    }
}

/// What the word being read in `c` is for: an error when a value cannot stand in it.
fn word_role(c: &Cmd) -> Result<(), Refusal> {
    if c.op == "(" {
        return Err(Refusal::Program(Danger::CommandName));
    }
    let op_pending = !c.op.is_empty();
    let next = if op_pending {
        next_after(&c.op)
    } else {
        c.next
    };
    match next {
        NextWord::HereDelim { .. } => Err(Refusal::Place("in a here-document's delimiter")),
        NextWord::Redirect => Ok(()),
        NextWord::Normal => {
            let simple = if op_pending && separates(&c.op) {
                Simple::Start
            } else {
                c.simple.clone()
            };
            let word = c.word.clone().unwrap_or_default();
            match simple.danger(&word.text, word.assignment) {
                Some(d) => Err(Refusal::Program(d)),
                None => Ok(()),
            }
        }
    }
}

/// What goes in: a character of the command's text, or a hole for a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Input {
    Char(char),
    /// `raw`: inserted as is by `{{{x}}}`, on purpose; it is read as unknown word text.
    Hole {
        raw: bool,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Lexer {
    frames: Vec<Frame>,
    confused: bool,
    /// The holes of the current line of the top level, by id: a later `| sh` on the line
    /// makes them code.
    line_holes: Vec<usize>,
    /// Holes refused by what came after them.
    late: Vec<(usize, Refusal)>,
}

impl Default for Lexer {
    fn default() -> Self {
        Lexer {
            frames: vec![Frame::Cmd(Cmd::new(CmdKind::Top))],
            confused: false,
            line_holes: Vec::new(),
            late: Vec::new(),
        }
    }
}

/// Why a value in a pipeline into a shell cannot stay data.
const PIPED_INTO_CODE: &str = "in a pipeline that hands its output to a shell, ssh or an interpreter as code (`echo ... | sh`)";

const UNQUOTED_OPERATORS: &str = "|&;<>()";

fn is_name_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_'
}

impl Lexer {
    pub fn text(&mut self, text: &str) {
        for c in text.chars() {
            self.feed(0, Input::Char(c));
        }
    }

    /// A hole for a value, known by `id`: where it stands, or why a value cannot stand
    /// there. A `raw` hole (`{{{x}}}`) is the author's choice and never refused. What comes
    /// later on the line can still refuse it: see [`Lexer::late`].
    pub fn hole(&mut self, raw: bool, id: usize) -> Result<Slot, Refusal> {
        let result = self.place();
        if !raw {
            self.line_holes.push(id);
        }
        self.feed(0, Input::Hole { raw });
        if raw {
            // Never refused, and never escaped: the author chose to insert it as it is.
            return Ok(Slot {
                context: Context::Word {
                    quote_always: false,
                },
                backquotes: 0,
            });
        }
        result
    }

    /// The holes (by id) that what came after them refused.
    pub fn late(&self) -> &[(usize, Refusal)] {
        &self.late
    }

    /// The end of the command: `Err` with what is left open, if anything.
    pub fn finish(&mut self) -> Result<(), &'static str> {
        self.feed(0, Input::Char('\n'));
        if self.confused {
            return Err("its quoting could not be followed");
        }
        while let Some(Frame::Here(_)) = self.frames.last() {
            self.frames.pop();
        }
        match self.frames.last() {
            Some(Frame::Cmd(c)) if self.frames.len() == 1 && c.kind == CmdKind::Top => Ok(()),
            Some(Frame::Single) => Err("a '...' is not closed"),
            Some(Frame::Double { .. }) => Err("a \"...\" is not closed"),
            Some(Frame::Backquote { .. })
            | Some(Frame::Cmd(Cmd {
                kind: CmdKind::Backquoted,
                ..
            })) => Err("a backquote is not closed"),
            Some(Frame::Param { .. }) => Err("a ${...} is not closed"),
            Some(Frame::Arith { .. }) => Err("a $((...)) is not closed"),
            Some(Frame::AnsiC { .. }) => Err("a $'...' is not closed"),
            _ => Err("a $(...) or ( ) is not closed"),
        }
    }

    /// Where a hole would stand now.
    fn place(&self) -> Result<Slot, Refusal> {
        if self.confused {
            return Err(Refusal::Confused);
        }
        let top = self.frames.len() - 1;
        let mut backquotes = 0u8;
        for (i, f) in self.frames.iter().enumerate() {
            match f {
                Frame::Backquote {
                    in_double: true, ..
                } => {
                    return Err(Refusal::Place(
                        "in backquotes inside double quotes, which shells read differently; use \"$(...)\"",
                    ));
                }
                Frame::Backquote { escaped: true, .. } => {
                    return Err(Refusal::Place(AFTER_BACKSLASH));
                }
                Frame::Backquote { .. } => backquotes += 1,
                Frame::Here(_) if i != top => {
                    return Err(Refusal::Place(
                        "in an expansion inside a here-document, where a newline in it could end the document",
                    ));
                }
                _ => {}
            }
        }
        if backquotes > 1 {
            return Err(Refusal::Place(
                "in backquotes nested in backquotes; use $(...)",
            ));
        }
        // Between the innermost command list and the top: the quoting the value is in.
        for f in self.frames.iter().rev() {
            match f {
                Frame::Cmd(_) => break,
                Frame::Param { .. } => return Err(Refusal::Place("inside ${...}")),
                Frame::Arith { .. } => {
                    return Err(Refusal::Place("inside arithmetic, which can run commands"));
                }
                Frame::AnsiC { .. } => return Err(Refusal::Place("inside $'...'")),
                Frame::Double {
                    translated: true, ..
                } => return Err(Refusal::Place("inside $\"...\"")),
                _ => {}
            }
        }
        // The role of the word the value is part of, in the nearest command list (none in
        // a here-document's body, which is not a word).
        let word_of = self.frames.iter().rev().find_map(|f| match f {
            Frame::Cmd(c) => Some(Some(c)),
            Frame::Here(_) => Some(None),
            _ => None,
        });
        if let Some(Some(c)) = word_of {
            word_role(c)?;
        }
        let context = match &self.frames[top] {
            Frame::Cmd(c) => {
                after_open(c.escaped, c.dollar)?;
                Context::Word {
                    quote_always: c.word.as_ref().is_some_and(|w| w.tilde_open),
                }
            }
            Frame::Single => Context::Single,
            Frame::Double {
                dollar, escaped, ..
            } => {
                after_open(*escaped, *dollar)?;
                Context::Double
            }
            Frame::Here(h) => {
                if h.spec.code {
                    return Err(Refusal::Place(
                        "in a here-document that a shell, ssh or an interpreter reads as code (`bash <<EOF`, `cat <<EOF | sh`)",
                    ));
                }
                if h.spec.quoted {
                    return Err(Refusal::Place(
                        "in a quoted here-document (<<'EOF'), where nothing can keep a line of it from ending the document; use an unquoted one (<<EOF)",
                    ));
                }
                after_open(h.escaped, h.dollar)?;
                Context::HereDoc {
                    delimiter: h.spec.delimiter.clone(),
                    strip_tabs: h.spec.strip_tabs,
                    line_open: !h.line_has_hole
                        && h.line_len == h.line.chars().count()
                        && h.spec.delimiter.starts_with(h.line.as_str()),
                }
            }
            Frame::Comment => Context::Comment,
            // Refused above, or not a top frame.
            _ => return Err(Refusal::Confused),
        };
        Ok(Slot {
            context,
            backquotes,
        })
    }

    /// Gives `input` to the frames from `level` up: a backquote frame unescapes what goes
    /// through it, a here-document below an open expansion watches its raw lines.
    fn feed(&mut self, level: usize, input: Input) {
        let top = self.frames.len() - 1;
        let filter = (level..top)
            .find(|&i| matches!(self.frames[i], Frame::Backquote { .. } | Frame::Here(_)));
        let Some(i) = filter else {
            return self.handle(input);
        };
        if let Frame::Here(h) = &mut self.frames[i] {
            if let Input::Char(c) = input
                && watch_line(h, c)
            {
                // The document ends while an expansion inside it is still open.
                self.confused = true;
            }
            if let Input::Hole { .. } = input {
                h.line_has_hole = true;
                h.line_len += 1;
            }
            return self.feed(i + 1, input);
        }
        let Frame::Backquote { escaped, in_double } = &mut self.frames[i] else {
            return;
        };
        let in_double = *in_double;
        match input {
            Input::Hole { .. } => {
                if std::mem::replace(escaped, false) {
                    self.feed(i + 1, Input::Char('\\'));
                }
                self.feed(i + 1, input)
            }
            Input::Char(c) if *escaped => {
                *escaped = false;
                let special = matches!(c, '$' | '`' | '\\') || (in_double && c == '"');
                if !special {
                    self.feed(i + 1, Input::Char('\\'));
                }
                self.feed(i + 1, Input::Char(c))
            }
            Input::Char('\\') => *escaped = true,
            Input::Char('`') => {
                // The end: what was opened inside must be closed by now.
                let inner_done = matches!(&self.frames[i + 1..], [Frame::Cmd(_)]);
                if inner_done && let Some(Frame::Cmd(inner)) = self.frames.last_mut() {
                    let mut inner = std::mem::replace(inner, Cmd::new(CmdKind::Backquoted));
                    end_op(&mut inner);
                    finish_word(&mut inner);
                    self.confused |= !inner.heredocs.is_empty();
                } else {
                    self.confused = true;
                }
                self.frames.truncate(i);
                self.mark_dynamic();
            }
            Input::Char(c) => self.feed(i + 1, Input::Char(c)),
        }
    }

    fn push(&mut self, f: Frame) {
        self.frames.push(f);
    }

    /// Input at the top frame.
    fn handle(&mut self, input: Input) {
        let Some(frame) = self.frames.last_mut() else {
            self.confused = true;
            return;
        };
        match frame {
            Frame::Cmd(_) => self.cmd(input),
            Frame::Single => match input {
                Input::Char('\'') => {
                    self.frames.pop();
                }
                _ => self.word_char_below(input),
            },
            Frame::Double { .. } => self.double(input),
            Frame::AnsiC { escaped } => match input {
                Input::Char(_) if *escaped => *escaped = false,
                Input::Char('\\') => *escaped = true,
                Input::Char('\'') => {
                    self.frames.pop();
                }
                _ => {}
            },
            Frame::Param { .. } => self.param(input),
            Frame::Arith {
                depth,
                closing,
                command,
            } => match input {
                Input::Char(')') if *closing => {
                    let command = *command;
                    self.frames.pop();
                    if !command {
                        self.mark_dynamic();
                    }
                }
                Input::Char(_) if *closing => self.confused = true,
                Input::Char('(') => *depth += 1,
                Input::Char(')') if *depth == 0 => *closing = true,
                Input::Char(')') => *depth -= 1,
                _ => {}
            },
            Frame::Backquote { .. } => self.confused = true,
            Frame::Here(_) => self.here(input),
            Frame::Comment => {
                if input == Input::Char('\n') {
                    self.frames.pop();
                    self.handle(input);
                }
            }
        }
    }

    /// A quoted character (or value) belongs to the word of the command list below.
    fn word_char_below(&mut self, input: Input) {
        if let Some(c) = self.word_cmd() {
            let w = c.word();
            match input {
                Input::Char(ch) => w.push(ch, true),
                Input::Hole { raw } => w.hole(raw),
            }
        }
    }

    /// The command list whose word the top frame is part of: none inside a here-document's
    /// body, which is not a word.
    fn word_cmd(&mut self) -> Option<&mut Cmd> {
        for f in self.frames.iter_mut().rev() {
            match f {
                Frame::Cmd(c) => return Some(c),
                Frame::Here(_) => return None,
                _ => {}
            }
        }
        None
    }

    fn set_dollar(&mut self, v: u8) {
        match self.frames.last_mut() {
            Some(Frame::Cmd(c)) => c.dollar = v,
            Some(Frame::Double { dollar, .. }) => *dollar = v,
            Some(Frame::Here(h)) => h.dollar = v,
            Some(Frame::Param { dollar, .. }) => *dollar = v,
            _ => self.confused = true,
        }
    }

    fn mark_dynamic(&mut self) {
        if let Some(c) = self.word_cmd() {
            c.word().dynamic();
        }
    }
}

//! What the words of one simple command mean for a value placed in them: most programs
//! take their arguments as data, but some parse an argument again as code (`sh -c`,
//! `eval`, the command `ssh` sends to a remote shell, an `awk` program, a `sed` script),
//! and the first word chooses the program to run. Shell quoting cannot keep a value data
//! in those places, so they are refused.
//!
//! A program is recognised wherever its name stands as a word of the command, not only as
//! the command name, so that wrappers (`sudo sh -c`, `timeout 5 ssh`, `kubectl exec p --
//! bash -c`) are seen through. That also flags a harmless `grep ssh FILE {{x}}`: a refusal
//! the author can answer with `env`, where the other mistake would run a value as code.

/// Shells that take a script with `-c` and run it: the script is code, the words after it
/// are `$0`, `$1`... (data).
const SHELLS: &[&str] = &[
    "sh", "bash", "dash", "zsh", "ksh", "mksh", "ash", "busybox", "fish", "csh", "tcsh", "yash",
];
/// Shell options that take the next word as their argument.
const SHELL_ARG_OPTIONS: &[&str] = &["-o", "+o", "-O", "+O", "--rcfile", "--init-file"];
/// Interpreters whose inline-code option (`-c`, `-e`, `-r`, `--eval`) takes code.
const INTERPRETERS: &[&str] = &[
    "python",
    "python2",
    "python3",
    "perl",
    "ruby",
    "node",
    "nodejs",
    "php",
    "lua",
    "tclsh",
    "osascript",
    "pwsh",
    "powershell",
];
/// `ssh` options that take an argument (`-o X`, `-p 22`); the first other word is the
/// destination, and every word after it goes to the remote shell.
const SSH_ARG_LETTERS: &str = "BbcDEeFIiJLlmOoPpQRSWw";
/// Programs whose every following word is code.
const ALL_CODE: &[(&str, &str)] = &[
    ("eval", "`eval` parses its arguments again as shell code"),
    (
        "watch",
        "`watch` joins its arguments and runs them with `sh -c`",
    ),
    (
        "let",
        "`let` evaluates its arguments as arithmetic, which can run commands",
    ),
];

/// Why a value cannot be placed where it stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Danger {
    /// The value would be the name of the program to run.
    CommandName,
    /// The command's name comes from an expansion, so what it does with a value is unknown.
    UnknownCommand,
    /// The value is in an argument that a program parses again as code.
    Code(&'static str),
    /// The value is in the command `ssh` sends to a remote shell.
    Remote,
}

impl Danger {
    pub fn explain(self) -> String {
        match self {
            Danger::CommandName => "it would be the name of the command to run".into(),
            Danger::UnknownCommand => {
                "the command's name comes from an expansion here, so what it does with its arguments is not known".into()
            }
            Danger::Code(why) => format!("{why}, so quoting cannot keep the value data there"),
            Danger::Remote => "`ssh` sends the words after the host to a remote shell, which parses them again, so quoting cannot keep the value data there".into(),
        }
    }

    /// The safe ways, for this kind of place.
    pub fn help(self) -> &'static str {
        match self {
            Danger::CommandName | Danger::UnknownCommand => {
                "name the command in the runbook itself (a value can choose between commands with {{#if (eq x \"a\")}}...{{/if}}), or, on purpose, insert it raw with {{{x}}} and guard it with a strict `pattern` on the param"
            }
            Danger::Code(_) => SAFE_WAYS,
            Danger::Remote => {
                "the remote shell parses whatever it is sent, \"$NAME\" included: send the value on stdin (env = { NAME = \"{{x}}\" } and printf '%s\\n' \"$NAME\" | ssh host 'read -r v; ...'), or, on purpose, insert it raw with {{{x}}} and guard it with a strict `pattern` on the param"
            }
        }
    }
}

/// The safe ways for a value that a local program would parse again, and for places the
/// analysis refuses.
pub const SAFE_WAYS: &str = "move the value into the step's `env` (env = { NAME = \"{{x}}\" }) and read \"$NAME\" where it is needed (a nested shell reads it inside its script: sh -c 'echo \"$NAME\"'; or give it as an argument after the script: sh -c 'echo \"$1\"' sh {{x}}); or, on purpose, insert it raw with {{{x}}} (then a strict `pattern` on the param is what keeps it safe)";

/// The state of one simple command, word by word.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Simple {
    /// No command name yet: assignments and redirections may come first.
    Start,
    /// The command name came from an expansion.
    Unknown,
    /// Inside `[[ ... ]]` (bash): operands of `-eq` and friends are evaluated as arithmetic.
    Test,
    /// Arguments of a program, read as `Prog` says.
    Args(Prog),
}

/// A word of the command, as far as its text is known.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct WordText {
    /// The word with its quotes removed (the first 64 characters).
    pub text: String,
    /// Part of it comes from an expansion or a value.
    pub dynamic: bool,
    /// Part of it was quoted.
    pub quoted: bool,
}

impl WordText {
    /// The program this word names, when it is a plain word: `/usr/bin/ssh` -> `ssh`.
    fn program(&self) -> Option<&str> {
        if self.dynamic {
            return None;
        }
        Some(self.text.rsplit('/').next().unwrap_or(&self.text))
    }

    fn is_option(&self) -> bool {
        !self.dynamic && (self.text.starts_with('-') || self.text.starts_with('+'))
    }
}

/// Words after which the next word is still a command name.
const KEYWORDS_BEFORE_COMMAND: &[&str] = &[
    "if", "then", "else", "elif", "fi", "do", "done", "while", "until", "{", "}", "!", "time",
    "exec", "command", "builtin", "nohup",
];

impl Simple {
    /// Where a value placed in the next (unfinished) word would stand; `assignment` for a
    /// `NAME=...` word.
    pub fn danger(&self, word: &WordText, assignment: bool) -> Option<Danger> {
        match self {
            Simple::Start if assignment => None,
            Simple::Start => Some(Danger::CommandName),
            Simple::Unknown => Some(Danger::UnknownCommand),
            Simple::Test => Some(Danger::Code(
                "inside `[[ ... ]]` bash evaluates the operands of `-eq` and the like as arithmetic, which can run commands (use `[ ... ]`)",
            )),
            Simple::Args(p) => p.danger(word),
        }
    }

    /// Whether the command, as far as it has been read, runs what comes on its standard
    /// input as code: a shell given no script (`bash`, `sh -s`), `ssh` (the remote shell
    /// reads it, or the remote command may), an interpreter given no program (`python3`).
    pub fn reads_code(&self) -> bool {
        matches!(
            self,
            Simple::Args(
                Prog::Shell { seen_c: false, .. }
                    | Prog::ShellStdin
                    | Prog::Ssh { .. }
                    | Prog::Remote
                    | Prog::Interpreter
            )
        )
    }

    /// The state after a finished word.
    pub fn next(self, word: &WordText, assignment: bool) -> Simple {
        match self {
            Simple::Start if assignment => Simple::Start,
            Simple::Start if word.dynamic => Simple::Unknown,
            Simple::Start if word.text == "[[" => Simple::Test,
            Simple::Start if KEYWORDS_BEFORE_COMMAND.contains(&word.text.as_str()) => Simple::Start,
            Simple::Start => Simple::Args(Prog::Plain.next(word)),
            Simple::Test if word.text == "]]" && !word.quoted => Simple::Args(Prog::Plain),
            Simple::Args(p) => Simple::Args(p.next(word)),
            other => other,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Prog {
    /// Arguments are data.
    Plain,
    /// A shell before its script: `seen_c` once `-c` is given, `skip` for an option's argument.
    Shell { seen_c: bool, skip: bool },
    /// A shell told to read its script from standard input (`-s`): its arguments are data.
    ShellStdin,
    /// The next word that is not an option is code (an `awk` program, a `sed` script, the
    /// action of `trap`); `skip` for the argument of an option in `arg_letters`.
    CodeNext {
        why: &'static str,
        arg_letters: &'static str,
        skip: bool,
    },
    /// The word after the option `-c` is code (`su -c`, `runuser -c`, `script -c`).
    CodeAfterC { why: &'static str, armed: bool },
    /// Every following word is code.
    Code(&'static str),
    /// `ssh` before its destination; `skip` for an option's argument.
    Ssh { skip: bool },
    /// `ssh` after its destination: the words go to a remote shell.
    Remote,
    /// Interpreters: the word after an inline-code option (`-c`, `-e`) is code.
    Interpreter,
    /// A program that runs another (`sudo`, `env`, `timeout 5`): its first word that is
    /// not an option (after `leading` such words) names the program it runs.
    Wrapper(Wrapper),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Wrapper {
    /// Options that take the next word as their argument.
    arg_letters: &'static str,
    /// Options that make it run the command through a shell (`sudo -s`, `sudo -i`).
    shell_letters: &'static str,
    /// Words before the command that are not options (the duration of `timeout`).
    leading: u8,
    skip: bool,
}

const WRAPPERS: &[(&str, Wrapper)] = &[
    ("sudo", wrapper("ugCDhprtTU", "si", 0)),
    ("doas", wrapper("uC", "s", 0)),
    ("env", wrapper("uCS", "", 0)),
    ("nice", wrapper("n", "", 0)),
    ("ionice", wrapper("cnp", "", 0)),
    ("setsid", wrapper("", "", 0)),
    ("stdbuf", wrapper("ioe", "", 0)),
    ("timeout", wrapper("sk", "", 1)),
    ("chroot", wrapper("", "", 1)),
    ("flock", wrapper("wEc", "", 1)),
    ("xargs", wrapper("aEeIiLlnPsd", "", 0)),
    ("time", wrapper("fo", "", 0)),
];

const fn wrapper(arg_letters: &'static str, shell_letters: &'static str, leading: u8) -> Wrapper {
    Wrapper {
        arg_letters,
        shell_letters,
        leading,
        skip: false,
    }
}

/// Whether an option word takes the next word as its argument: its last letter is one of
/// `letters` (`-o`, `-euo`, `-u`).
fn takes_argument(word: &str, letters: &str) -> bool {
    !word.starts_with("--") && word.len() >= 2 && word.ends_with(|c: char| letters.contains(c))
}

/// Whether a single-dash option cluster holds `letter` (`-c`, `-ec`, `-lc`).
fn has_letter(word: &str, letter: char) -> bool {
    word.starts_with('-') && !word.starts_with("--") && word[1..].contains(letter)
}

impl Prog {
    fn danger(&self, word: &WordText) -> Option<Danger> {
        match self {
            Prog::Plain | Prog::Interpreter | Prog::Ssh { .. } | Prog::ShellStdin => None,
            Prog::Shell {
                seen_c: true,
                skip: false,
            } if !word.is_option() => Some(Danger::Code(
                "a shell's `-c` script is parsed again by that shell",
            )),
            Prog::Shell { .. } => None,
            Prog::CodeNext {
                why, skip: false, ..
            } if !word.is_option() => Some(Danger::Code(why)),
            Prog::CodeNext { .. } => None,
            Prog::CodeAfterC { why, armed: true } => Some(Danger::Code(why)),
            Prog::CodeAfterC { why, .. }
                if word.text.starts_with("--command=")
                    || (word.text.starts_with("-c") && word.text.len() > 2) =>
            {
                Some(Danger::Code(why))
            }
            Prog::CodeAfterC { .. } => None,
            Prog::Code(why) => Some(Danger::Code(why)),
            Prog::Remote => Some(Danger::Remote),
            Prog::Wrapper(w) if w.skip || w.leading > 0 || word.is_option() => None,
            Prog::Wrapper(_) if word.text.contains('=') && !word.dynamic => None,
            Prog::Wrapper(_) => Some(Danger::CommandName),
        }
    }

    /// The state after a finished word.
    fn next(self, word: &WordText) -> Prog {
        let text = word.text.as_str();
        let after = match self {
            Prog::Shell { seen_c, skip: true } => Prog::Shell {
                seen_c,
                skip: false,
            },
            Prog::Shell { seen_c: false, .. } if word.is_option() && has_letter(text, 's') => {
                Prog::ShellStdin
            }
            Prog::Shell { seen_c, .. } if word.is_option() => Prog::Shell {
                seen_c: seen_c || has_letter(text, 'c'),
                skip: SHELL_ARG_OPTIONS.contains(&text) || takes_argument(text, "oO"),
            },
            // The script (after -c) or a script file: what follows is $0, $1... data.
            Prog::Shell { seen_c: true, .. } => Prog::Plain,
            Prog::Shell { .. } if text == "-s" => Prog::ShellStdin,
            Prog::Shell { .. } => Prog::Plain,
            Prog::CodeNext {
                why,
                arg_letters,
                skip: true,
            } => Prog::CodeNext {
                why,
                arg_letters,
                skip: false,
            },
            // A program given with -f is a file; one given with -e is the next word.
            Prog::CodeNext { .. } if text == "-f" || text.starts_with("--file") => Prog::Plain,
            Prog::CodeNext { why, .. } if text == "-e" || text == "--expression" => {
                Prog::CodeNext {
                    why,
                    arg_letters: "",
                    skip: false,
                }
            }
            Prog::CodeNext {
                why, arg_letters, ..
            } if word.is_option() => Prog::CodeNext {
                why,
                arg_letters,
                skip: text.len() == 2 && takes_argument(text, arg_letters),
            },
            Prog::CodeNext { .. } => Prog::Plain,
            Prog::CodeAfterC { armed: true, .. } => Prog::Plain,
            Prog::CodeAfterC { why, .. }
                if text == "-c" || text == "--command" || text == "--session-command" =>
            {
                Prog::CodeAfterC { why, armed: true }
            }
            Prog::Ssh { skip: true } => Prog::Ssh { skip: false },
            Prog::Ssh { .. } if word.is_option() => Prog::Ssh {
                skip: takes_argument(text, SSH_ARG_LETTERS),
            },
            Prog::Ssh { .. } => Prog::Remote,
            Prog::Interpreter if word.is_option() => {
                let inline = text == "--eval"
                    || text == "-Command"
                    || "cerE".chars().any(|l| has_letter(text, l));
                if inline {
                    Prog::CodeNext {
                        why: "an interpreter's inline program is code",
                        arg_letters: "",
                        skip: false,
                    }
                } else {
                    Prog::Interpreter
                }
            }
            // A program file: its arguments are data, and it does not read code from stdin.
            Prog::Interpreter if text != "-" => Prog::Plain,
            Prog::Wrapper(w) if w.skip => Prog::Wrapper(Wrapper { skip: false, ..w }),
            Prog::Wrapper(w) if word.is_option() => {
                if w.shell_letters.chars().any(|l| has_letter(text, l))
                    || text == "--shell"
                    || text == "--login"
                {
                    return Prog::Code(
                        "`sudo -s` and `sudo -i` hand the command to a shell, which parses it again",
                    );
                }
                Prog::Wrapper(Wrapper {
                    skip: text.len() == 2 && takes_argument(text, w.arg_letters),
                    ..w
                })
            }
            Prog::Wrapper(w) if w.leading > 0 => Prog::Wrapper(Wrapper {
                leading: w.leading - 1,
                ..w
            }),
            // `env NAME=value cmd`: assignments before the command.
            Prog::Wrapper(w) if text.contains('=') && !word.dynamic => Prog::Wrapper(w),
            // The wrapped command's name: read its arguments as for any command.
            Prog::Wrapper(_) if word.dynamic => {
                return Prog::Code(
                    "the command's name comes from an expansion here, so what it does with its arguments is not known",
                );
            }
            Prog::Wrapper(_) => Prog::Plain,
            other => other,
        };
        // Any plain word that names one of these programs starts reading its arguments.
        match (&after, word.program()) {
            (Prog::Plain | Prog::Interpreter, Some(name)) => recognise(name).unwrap_or(after),
            _ => after,
        }
    }
}

/// The reading a program's name starts, if it is one of those whose arguments are not
/// all data.
fn recognise(name: &str) -> Option<Prog> {
    if SHELLS.contains(&name) {
        return Some(Prog::Shell {
            seen_c: false,
            skip: false,
        });
    }
    if let Some((_, why)) = ALL_CODE.iter().find(|(n, _)| *n == name) {
        return Some(Prog::Code(why));
    }
    if let Some((_, w)) = WRAPPERS.iter().find(|(n, _)| *n == name) {
        return Some(Prog::Wrapper(*w));
    }
    let base = name.trim_end_matches(|c: char| c.is_ascii_digit() || c == '.');
    if INTERPRETERS.contains(&name) || INTERPRETERS.contains(&base) {
        return Some(Prog::Interpreter);
    }
    Some(match name {
        "ssh" | "autossh" => Prog::Ssh { skip: false },
        "su" | "runuser" | "script" => Prog::CodeAfterC {
            why: "the command of `su -c` (or `runuser -c`, `script -c`) is parsed by a shell",
            armed: false,
        },
        "awk" | "gawk" | "mawk" | "nawk" => Prog::CodeNext {
            why: "an `awk` program is code",
            arg_letters: "Fvf",
            skip: false,
        },
        "sed" | "gsed" => Prog::CodeNext {
            why: "a `sed` script is code (GNU sed's `e` runs commands)",
            arg_letters: "l",
            skip: false,
        },
        "trap" => Prog::CodeNext {
            why: "the action of `trap` is shell code",
            arg_letters: "",
            skip: false,
        },
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn word(t: &str) -> WordText {
        WordText {
            text: t.into(),
            ..WordText::default()
        }
    }

    /// The danger of a value in the word after `words`.
    fn at(words: &[&str]) -> Option<Danger> {
        let mut s = Simple::Start;
        for w in words {
            let assignment = matches!(s, Simple::Start) && w.contains('=') && !w.starts_with('=');
            s = s.next(&word(w), assignment);
        }
        s.danger(&WordText::default(), false)
    }

    #[test]
    fn data_arguments_are_data() {
        for words in [
            &["echo"][..],
            &["A=1", "echo", "x"],
            &["ssh"],
            &["ssh", "-o", "BatchMode=yes", "-p"],
            &["sh", "-c", "echo \"$1\"", "sh"],
            &["bash", "script.sh"],
            &["sudo", "-u", "postgres", "psql", "-c"],
            &["kubectl", "exec", "pod", "--", "sh", "-c", "x", "sh"],
            &["awk", "-F:", "{print $1}"],
            &["sed", "-e", "s/a/b/"],
            &["python3", "script.py"],
            &["python3", "-c", "import sys; print(sys.argv[1])"],
            &["sudo", "-u", "postgres", "pg_ctl"],
            &["env", "A=1", "printf"],
            &["timeout", "5", "curl"],
            &["su", "-", "postgres", "-c", "psql -c 'select 1'"],
            &["then", "echo"],
        ] {
            assert_eq!(at(words), None, "{words:?}");
        }
    }

    #[test]
    fn code_and_command_names_are_refused() {
        for words in [
            &[][..],
            &["A=1"],
            &["if"],
            &["sudo", "sh", "-c"],
            &["bash", "-euo", "pipefail", "-c"],
            &["bash", "-ec"],
            &["eval", "echo"],
            &["ssh", "host"],
            &["ssh", "-tt", "-oBatchMode=yes", "host", "sudo"],
            &["timeout", "5", "ssh", "-p", "22", "h"],
            &["su", "-", "postgres", "-c"],
            &["awk", "-F", ":"],
            &["sed", "-n"],
            &["sed", "-e"],
            &["perl", "-ne"],
            &["python3", "-c"],
            &["trap"],
            &["watch", "-n", "5"],
            &["[["],
            &["sudo"],
            &["sudo", "-u", "postgres"],
            &["timeout", "5"],
            &["env", "A=1"],
            &["sudo", "-s"],
            &["sudo", "-iu", "root", "id"],
        ] {
            assert!(at(words).is_some(), "{words:?}");
        }
    }
}

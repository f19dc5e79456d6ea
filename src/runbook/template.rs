//! Handlebars templates in runbooks: parsed at load time so syntax errors and unknown
//! variables are found before anything runs.

use handlebars::template::{Parameter, Template, TemplateElement};
use handlebars::{Path, PathSeg};

use super::helpers::{self, BLOCK_HELPERS, COMPARISONS};
use super::shell::Command;

/// Blocks that change the context: names inside them are not runbook variables.
const SCOPING_HELPERS: &[&str] = &["each", "with"];

/// Deepest nesting of blocks and sub-expressions accepted: far beyond real use, shallow
/// enough that the recursive parser and renderer never exhaust the stack.
pub const MAX_NESTING: usize = 32;

/// A problem in one template, at a byte offset inside the template text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub offset: usize,
    pub len: usize,
    pub message: String,
    pub help: Option<String>,
}

/// A variable the template reads, and where (byte offset in the template text).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VarRef {
    pub name: String,
    pub offset: usize,
}

/// Whether `text` holds no template syntax at all: handlebars would make it one raw string.
pub fn is_plain(text: &str) -> bool {
    !text.contains("{{")
}

/// Parses `text` and returns the variables it reads, in order of first use.
pub fn analyse(text: &str) -> Result<Vec<VarRef>, Vec<Problem>> {
    analyse_compiled(text).map(|(_, refs)| refs)
}

/// [`analyse`], with the compiled template, for a caller that looks at it again.
pub fn analyse_compiled(text: &str) -> Result<(Template, Vec<VarRef>), Vec<Problem>> {
    if let Some(offset) = too_deep(text) {
        return Err(vec![Problem {
            offset,
            len: 1,
            message: format!("template nests deeper than {MAX_NESTING} levels"),
            help: None,
        }]);
    }
    let tpl = Template::compile(text).map_err(|e| {
        let offset = e.pos().map_or(0, |(line, col)| offset_of(text, line, col));
        vec![Problem {
            offset,
            len: 1,
            message: format!("template syntax: {}", reason_text(&e)),
            help: None,
        }]
    })?;
    let mut names = Vec::new();
    let mut problems = Vec::new();
    walk(&tpl, false, &mut names, &mut problems);
    let mut refs: Vec<VarRef> = Vec::new();
    for name in names {
        if refs.iter().all(|r| r.name != name) {
            let offset = locate(text, &name).unwrap_or(0);
            refs.push(VarRef { name, offset });
        }
    }
    let problems: Vec<Problem> = problems
        .into_iter()
        .map(|(word, message, help)| Problem {
            offset: locate(text, &word).unwrap_or(0),
            len: word.len().max(1),
            message,
            help,
        })
        .collect();
    if problems.is_empty() {
        Ok((tpl, refs))
    } else {
        Err(problems)
    }
}

pub(crate) fn reason_text(e: &handlebars::TemplateError) -> String {
    use handlebars::TemplateErrorReason as R;
    match e.reason() {
        // The parser's own text lists every grammar rule it expected; say what usually causes it.
        R::InvalidSyntax(_) => {
            "this is not valid Handlebars (an unclosed `{{#block}}`, or a stray `{{` or `}}`?)"
                .into()
        }
        R::MismatchingClosedHelper(open, close) => {
            format!("`{{{{#{open}}}}}` is closed by `{{{{/{close}}}}}`")
        }
        other => other
            .to_string()
            .lines()
            .next()
            .unwrap_or("invalid template")
            .trim()
            .to_string(),
    }
}

/// A problem found while walking a template: the word to point at, the message, a help.
type Found = (String, String, Option<String>);

fn walk(tpl: &Template, scoped: bool, names: &mut Vec<String>, problems: &mut Vec<Found>) {
    for el in &tpl.elements {
        match el {
            TemplateElement::RawString(_) | TemplateElement::Comment(_) => {}
            TemplateElement::Expression(ht) | TemplateElement::HtmlExpression(ht) => {
                if ht.params.is_empty() && ht.hash.is_empty() {
                    param(&ht.name, scoped, names, problems);
                } else {
                    helper(&ht.name, false, problems);
                    arity(&ht.name, ht.params.len(), problems);
                    params(
                        ht.params.iter().chain(ht.hash.values()),
                        scoped,
                        names,
                        problems,
                    );
                }
            }
            TemplateElement::HelperBlock(ht) => {
                let name = helper(&ht.name, true, problems);
                params(
                    ht.params.iter().chain(ht.hash.values()),
                    scoped,
                    names,
                    problems,
                );
                let inner = scoped || name.is_some_and(|n| SCOPING_HELPERS.contains(&n));
                if let Some(t) = &ht.template {
                    walk(t, inner, names, problems);
                }
                if let Some(t) = &ht.inverse {
                    walk(t, scoped, names, problems);
                }
            }
            TemplateElement::DecoratorExpression(d)
            | TemplateElement::DecoratorBlock(d)
            | TemplateElement::PartialExpression(d)
            | TemplateElement::PartialBlock(d) => {
                let word = d.name.as_name().unwrap_or(">").to_string();
                problems.push((
                    word,
                    "partials and decorators are not available in runbook templates".into(),
                    None,
                ));
            }
            _ => problems.push((
                String::new(),
                "this template construct is not supported".into(),
                None,
            )),
        }
    }
}

fn helper<'a>(name: &'a Parameter, block: bool, problems: &mut Vec<Found>) -> Option<&'a str> {
    let n = name.as_name()?;
    let all: Vec<&str> = helpers::HELPERS.iter().map(|(n, _)| *n).collect();
    let known: &[&str] = if block { BLOCK_HELPERS } else { &all };
    if !known.contains(&n) {
        let kind = if block { "block helper" } else { "helper" };
        let hint = crate::runbook::diagnostic::did_you_mean(n, known.iter().copied())
            .map(|s| format!(" (did you mean `{s}`?)"))
            .unwrap_or_default();
        let list = if block {
            format!("the block helpers are {}", BLOCK_HELPERS.join(", "))
        } else {
            format!("the helpers are {}", helpers::names())
        };
        problems.push((
            n.to_string(),
            format!("unknown {kind} `{n}`{hint}"),
            Some(list),
        ));
    }
    Some(n)
}

/// Comparisons take exactly two values: `{{lt lag}}` is a mistake to catch before the run.
fn arity(name: &Parameter, given: usize, problems: &mut Vec<Found>) {
    if let Some(n) = name.as_name()
        && COMPARISONS.contains(&n)
        && given != 2
    {
        problems.push((
            n.to_string(),
            format!("`{n}` compares two values; it is given {given}"),
            Some(format!(
                "write {{{{{n} a b}}}}, for example {{{{{n} lag 30}}}}"
            )),
        ));
    }
}

fn params<'a>(
    ps: impl Iterator<Item = &'a Parameter>,
    scoped: bool,
    names: &mut Vec<String>,
    problems: &mut Vec<Found>,
) {
    for p in ps {
        param(p, scoped, names, problems);
    }
}

fn param(p: &Parameter, scoped: bool, names: &mut Vec<String>, problems: &mut Vec<Found>) {
    match p {
        Parameter::Literal(_) => {}
        Parameter::Name(n) if !scoped && n != "this" => names.push(n.clone()),
        Parameter::Name(_) => {}
        Parameter::Path(path) => {
            if scoped {
                return;
            }
            if let Path::Relative((segs, _)) = path
                && let Some(PathSeg::Named(first)) = segs.first()
                && first != "this"
            {
                names.push(first.clone());
            }
        }
        Parameter::Subexpression(sub) => {
            let el = sub.as_element();
            if let TemplateElement::Expression(ht) = el {
                if ht.params.is_empty() && ht.hash.is_empty() {
                    param(&ht.name, scoped, names, problems);
                } else {
                    helper(&ht.name, false, problems);
                    arity(&ht.name, ht.params.len(), problems);
                    params(
                        ht.params.iter().chain(ht.hash.values()),
                        scoped,
                        names,
                        problems,
                    );
                }
            }
        }
        _ => {}
    }
}

/// The first nesting level beyond [`MAX_NESTING`], as a byte offset, if any.
fn too_deep(text: &str) -> Option<usize> {
    let bytes = text.as_bytes();
    let (mut blocks, mut parens, mut inside) = (0usize, 0usize, false);
    let mut i = 0;
    while i < bytes.len() {
        if !inside && bytes[i..].starts_with(b"{{") {
            inside = true;
            match bytes.get(i + 2) {
                Some(b'#') => blocks += 1,
                Some(b'/') => blocks = blocks.saturating_sub(1),
                _ => {}
            }
            i += 2;
            continue;
        }
        if inside {
            match bytes[i] {
                b'(' => parens += 1,
                b')' => parens = parens.saturating_sub(1),
                b'}' if bytes[i..].starts_with(b"}}") => {
                    inside = false;
                    parens = 0;
                }
                _ => {}
            }
        }
        if blocks + parens > MAX_NESTING {
            return Some(i);
        }
        i += 1;
    }
    None
}

/// Byte offset of a 1-based line and column (handlebars counts columns in characters).
pub(crate) fn offset_of(text: &str, line: usize, col: usize) -> usize {
    let mut start = 0;
    for _ in 1..line {
        match text[start..].find('\n') {
            Some(i) => start += i + 1,
            None => return text.len(),
        }
    }
    text[start..]
        .char_indices()
        .nth(col.saturating_sub(1))
        .map_or(text.len(), |(i, _)| start + i)
}

/// Where `word` first appears as a whole word inside a `{{ }}` tag.
fn locate(text: &str, word: &str) -> Option<usize> {
    let is_word = |c: char| c.is_alphanumeric() || c == '_' || c == '-';
    let mut from = 0;
    while let Some(open) = text[from..].find("{{") {
        let start = from + open;
        let end = text[start..].find("}}").map_or(text.len(), |i| start + i);
        let tag = &text[start..end];
        let mut search = 0;
        while let Some(i) = tag[search..].find(word) {
            let at = search + i;
            let before = tag[..at].chars().next_back();
            let after = tag[at + word.len()..].chars().next();
            if !before.is_some_and(is_word) && !after.is_some_and(is_word) {
                return Some(start + at);
            }
            search = at + word.len();
        }
        from = end.max(start + 2);
    }
    None
}

/// Renders templates at run time: strict (an unset variable is an error, never ""), with
/// each value in a shell command written for the shell context it lands in
/// ([`super::shell`]).
pub struct Renderer {
    shell: handlebars::Handlebars<'static>,
    raw: handlebars::Handlebars<'static>,
    /// Secret params, by name, and their values.
    secrets: Vec<(String, String)>,
}

impl Default for Renderer {
    fn default() -> Self {
        Self::new()
    }
}

impl Renderer {
    pub fn new() -> Self {
        let mut shell = handlebars::Handlebars::new();
        shell.set_strict_mode(true);
        // Values are marked, and quoted once the command around them is known.
        shell.register_escape_fn(super::shell::mark);
        helpers::register(&mut shell);
        let mut raw = handlebars::Handlebars::new();
        raw.set_strict_mode(true);
        raw.register_escape_fn(handlebars::no_escape);
        helpers::register(&mut raw);
        Renderer {
            shell,
            raw,
            secrets: Vec::new(),
        }
    }

    /// A renderer that keeps the values of these secret params (name, value) out of
    /// command lines and out of what it renders to be shown.
    pub fn with_secrets(secrets: Vec<(String, String)>) -> Self {
        Renderer {
            secrets,
            ..Renderer::new()
        }
    }

    /// The environment variable a command reads instead of holding `value`: a secret's own
    /// (`RUNBOOK_SECRET_TOKEN`), or one for a value a secret is part of.
    fn reference(&self, value: &str) -> Option<String> {
        if let Some((name, _)) = self
            .secrets
            .iter()
            .find(|(_, v)| !v.is_empty() && v == value)
        {
            return Some(super::shell::secret_variable(name));
        }
        self.secrets
            .iter()
            .any(|(_, v)| v.len() >= super::shell::SECRET_SEARCH_MIN && value.contains(v.as_str()))
            .then(|| "RUNBOOK_SECRET_VALUE".to_string())
    }

    /// For `run` and `rollback`: each `{{x}}` is written as data for the shell context it
    /// lands in, `{{{x}}}` is inserted as it is.
    pub fn shell(&self, text: &str, data: &serde_json::Value) -> Result<Command, String> {
        // A command with no placeholder is itself (most steps of most runbooks).
        if is_plain(text) {
            return Ok(Command {
                text: text.to_string(),
                env: Vec::new(),
            });
        }
        no_nul(text, data)?;
        let marked = self
            .shell
            .render_template(text, data)
            .map_err(|e| render_error(&e))?;
        super::shell::finish(&marked, &|v| self.reference(v))
    }

    /// For text shown to a person (a manual step's instructions): as [`raw`], with every
    /// secret param shown as `***`, however short it is.
    ///
    /// [`raw`]: Renderer::raw
    pub fn shown(&self, text: &str, data: &serde_json::Value) -> Result<String, String> {
        let mut data = data.clone();
        if let Some(map) = data.as_object_mut() {
            for (name, _) in &self.secrets {
                if let Some(v) = map.get_mut(name) {
                    *v = serde_json::Value::String("***".into());
                }
            }
        }
        self.raw(text, &data)
    }

    /// For what reaches a process but is not a command (`env` values, `dir`): as [`raw`],
    /// and a NUL, which no process can be given, is an error.
    ///
    /// [`raw`]: Renderer::raw
    pub fn process_text(&self, text: &str, data: &serde_json::Value) -> Result<String, String> {
        no_nul(text, data)?;
        self.raw(text, data)
    }

    /// For everything that is not a shell command: `manual`, `when`, `env`, `dir`.
    pub fn raw(&self, text: &str, data: &serde_json::Value) -> Result<String, String> {
        if is_plain(text) {
            return Ok(text.to_string());
        }
        self.raw
            .render_template(text, data)
            .map_err(|e| render_error(&e))
    }
}

/// A NUL cannot be passed to a process (not in an argument, not in its environment): a
/// value holding one is an error that names it, never a byte silently dropped.
fn no_nul(text: &str, data: &serde_json::Value) -> Result<(), String> {
    // Nearly always no value holds one: then the template need not be parsed again.
    let any = data.as_object().is_some_and(|m| {
        m.values()
            .any(|v| v.as_str().is_some_and(|s| s.contains('\0')))
    });
    if !any {
        return Ok(());
    }
    let Ok(refs) = analyse(text) else {
        return Ok(());
    };
    for r in refs {
        if data
            .get(&r.name)
            .and_then(serde_json::Value::as_str)
            .is_some_and(|v| v.contains('\0'))
        {
            return Err(format!(
                "variable `{}` holds a NUL byte, which cannot be passed to a command",
                r.name
            ));
        }
    }
    Ok(())
}

fn render_error(e: &handlebars::RenderError) -> String {
    helpers::explain(e)
}

/// `when` is truthy unless it renders to "", "false", "0" or "no" (spec §1).
pub fn truthy(rendered: &str) -> bool {
    helpers::truthy_text(rendered)
}

/// What is wrong with `text` as a `when` condition, beyond its syntax: a condition is an
/// expression, so one with no `{{...}}` at all (`answer > 100`), or with words outside its
/// expression (`{{answer}} > 100`), renders to fixed, non-empty text and is always true.
pub fn condition_problems(text: &str) -> Vec<Problem> {
    let Ok(tpl) = Template::compile(text) else {
        return Vec::new();
    };
    let example = "write the test as a helper, for example when = \"{{gt answer 100}}\"; the helpers are listed in docs/spec.md";
    let has_expression = tpl.elements.iter().any(|e| {
        !matches!(
            e,
            TemplateElement::RawString(_) | TemplateElement::Comment(_)
        )
    });
    if !has_expression {
        return vec![Problem {
            offset: 0,
            len: text.len().max(1),
            message: format!(
                "`when` has no {{{{...}}}} expression: \"{}\" is fixed text, which is always true",
                text.trim()
            ),
            help: Some(example.into()),
        }];
    }
    let mut out = Vec::new();
    for (el, at) in tpl.elements.iter().zip(&tpl.mapping) {
        if let TemplateElement::RawString(raw) = el
            && !raw.trim().is_empty()
        {
            let offset = offset_of(text, at.0, at.1);
            let offset = text[offset..]
                .find(raw.trim())
                .map_or(offset, |i| offset + i);
            out.push(Problem {
                offset,
                len: raw.trim().len(),
                message: format!(
                    "`when` has text outside its expression (`{}`): the condition is the whole rendered text, so it is always true",
                    raw.trim()
                ),
                help: Some(example.into()),
            });
        }
    }
    out
}

/// A variable's value for templates: text that reads as a number (and prints back the
/// same) becomes a JSON number, so `{{lt lag 30}}` compares numbers.
pub fn value_of(text: &str) -> serde_json::Value {
    if let Ok(n) = text.parse::<serde_json::Number>()
        && n.to_string() == text
    {
        return serde_json::Value::Number(n);
    }
    serde_json::Value::String(text.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(t: &str) -> Vec<String> {
        analyse(t)
            .map(|v| v.into_iter().map(|r| r.name).collect())
            .unwrap_or_default()
    }

    #[test]
    fn finds_variables_in_expressions_helpers_and_blocks() {
        assert_eq!(names("ssh {{host}} {{{raw}}}"), ["host", "raw"]);
        assert_eq!(names("{{lt lag 30}}"), ["lag"]);
        assert_eq!(
            names("{{#if (eq a \"x\")}}{{b}}{{else}}{{c}}{{/if}}"),
            ["a", "b", "c"]
        );
        assert_eq!(
            names("{{#each hosts}}{{this}} {{name}}{{/each}}"),
            ["hosts"]
        );
    }

    #[test]
    fn rejects_unknown_helpers_and_deep_nesting() {
        assert!(analyse("{{frobnicate x}}").is_err());
        let deep = format!("{}x{}", "{{#if a}}".repeat(40), "{{/if}}".repeat(40));
        let err = analyse(&deep).unwrap_err();
        assert!(err[0].message.contains("nests deeper"));
    }

    #[test]
    fn renders_with_quoting_and_numbers() {
        let r = Renderer::new();
        let data =
            serde_json::json!({ "host": "db-2", "evil": "a b; rm -rf /", "lag": value_of("12") });
        assert_eq!(r.shell("ssh {{host}}", &data).unwrap().text, "ssh db-2");
        assert_eq!(
            r.shell("echo {{evil}}", &data).unwrap().text,
            "echo 'a b; rm -rf /'"
        );
        assert_eq!(
            r.shell("echo {{{evil}}}", &data).unwrap().text,
            "echo a b; rm -rf /"
        );
        assert_eq!(r.raw("{{lt lag 30}}", &data).unwrap(), "true");
        assert_eq!(
            r.raw("{{nope}}", &data).unwrap_err(),
            "variable `nope` is not set"
        );
        assert_eq!(value_of("007"), serde_json::json!("007"));
        assert!(!truthy(" false ") && !truthy("0") && !truthy("") && truthy("yes"));
    }

    #[test]
    fn locates_words_inside_tags_only() {
        assert_eq!(locate("lag is {{lag}}", "lag"), Some(9));
    }
}

//! The helpers a runbook template may call, and the one rule each kind follows: what is
//! true (for `when`, `if`, `unless`, `and`, `or`, `not`) and how two values compare (for
//! `eq`, `ne`, `lt`, `lte`, `gt`, `gte`). Errors from the template library are said in
//! the runbook's words here, so no Handlebars message reaches the operator unexplained.

use std::cmp::Ordering;

use handlebars::{
    Context, Handlebars, Helper, HelperDef, HelperResult, Output, RenderContext, RenderError,
    RenderErrorReason, Renderable, ScopedJson,
};
use serde_json::Value;

/// Every helper a runbook template may call, with what it does: the list `check` gives
/// for an unknown helper and the docs repeat.
pub const HELPERS: &[(&str, &str)] = &[
    ("eq", "{{eq a b}}: a equals b"),
    ("ne", "{{ne a b}}: a differs from b"),
    ("lt", "{{lt a b}}: a is less than b"),
    ("lte", "{{lte a b}}: a is less than or equal to b"),
    ("gt", "{{gt a b}}: a is greater than b"),
    ("gte", "{{gte a b}}: a is greater than or equal to b"),
    ("and", "{{and a b ...}}: every value is true"),
    ("or", "{{or a b ...}}: some value is true"),
    ("not", "{{not a}}: a is not true"),
    ("len", "{{len a}}: the number of characters of a"),
    (
        "if",
        "{{#if a}}...{{else}}...{{/if}}: the first part when a is true",
    ),
    (
        "unless",
        "{{#unless a}}...{{/unless}}: the part when a is not true",
    ),
    (
        "each",
        "{{#each list}}{{this}}{{/each}}: the part once per item",
    ),
    ("with", "{{#with a}}...{{/with}}: the part with a as `this`"),
    ("lookup", "{{lookup a key}}: the field `key` of a"),
];

/// The helpers that take a block (`{{#name}}...{{/name}}`).
pub const BLOCK_HELPERS: &[&str] = &["if", "unless", "each", "with"];

/// The comparisons, which take exactly two values.
pub const COMPARISONS: &[&str] = &["eq", "ne", "lt", "lte", "gt", "gte"];

/// The helper names, for messages: `eq, ne, lt, ...`.
pub fn names() -> String {
    HELPERS
        .iter()
        .map(|(n, _)| *n)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Registers the runbook's own helpers over Handlebars' built-ins of the same names.
pub(crate) fn register(hb: &mut Handlebars<'static>) {
    for &name in COMPARISONS {
        hb.register_helper(name, Box::new(Compare(name)));
    }
    for name in ["and", "or", "not"] {
        hb.register_helper(name, Box::new(Logic(name)));
    }
    hb.register_helper("if", Box::new(Branch { positive: true }));
    hb.register_helper("unless", Box::new(Branch { positive: false }));
    hb.register_helper("len", Box::new(Length));
}

/// Whether rendered text counts as true: anything but "", "false", "0" and "no" (ignoring
/// case and surrounding blanks). `when` and every helper that tests a value use it.
pub fn truthy_text(rendered: &str) -> bool {
    let t = rendered.trim();
    !(t.is_empty() || t.eq_ignore_ascii_case("false") || t == "0" || t.eq_ignore_ascii_case("no"))
}

/// [`truthy_text`] for a value: false, null, zero and empty lists are not true either.
pub fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => truthy_text(s),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
    }
}

/// A value that reads as a number: a JSON number, or text that is a plain decimal number
/// (`12`, `-3.5`, `1e3`, with blanks around allowed); not `0x10`, `inf` or `1_000`.
pub fn number(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => {
            let t = s.trim();
            let plain = !t.is_empty()
                && t.bytes()
                    .all(|b| b.is_ascii_digit() || matches!(b, b'+' | b'-' | b'.' | b'e' | b'E'))
                && t.bytes().any(|b| b.is_ascii_digit());
            plain
                .then(|| t.parse::<f64>().ok())
                .flatten()
                .filter(|f| f.is_finite())
        }
        _ => None,
    }
}

/// A value as text, for comparing as text: `true`, `12`, `` (null).
pub fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// The one rule of comparison: numbers compare as numbers when both sides read as
/// numbers; otherwise both compare as text, character by character.
pub fn compare(a: &Value, b: &Value) -> Ordering {
    match (number(a), number(b)) {
        (Some(x), Some(y)) => x.partial_cmp(&y).unwrap_or(Ordering::Equal),
        _ => text(a).cmp(&text(b)),
    }
}

fn fail(message: String) -> RenderError {
    RenderErrorReason::Other(message).into()
}

struct Compare(&'static str);

impl HelperDef for Compare {
    fn call_inner<'reg: 'rc, 'rc>(
        &self,
        h: &Helper<'rc>,
        _: &'reg Handlebars<'reg>,
        _: &'rc Context,
        _: &mut RenderContext<'reg, 'rc>,
    ) -> Result<ScopedJson<'rc>, RenderError> {
        let name = self.0;
        let [a, b] = h.params().as_slice() else {
            return Err(fail(format!(
                "`{name}` compares two values, as in {{{{{name} lag 30}}}}; it was given {}",
                h.params().len()
            )));
        };
        let order = compare(a.value(), b.value());
        let result = match name {
            "eq" => order == Ordering::Equal,
            "ne" => order != Ordering::Equal,
            "lt" => order == Ordering::Less,
            "lte" => order != Ordering::Greater,
            "gt" => order == Ordering::Greater,
            _ => order != Ordering::Less,
        };
        Ok(ScopedJson::Derived(Value::Bool(result)))
    }
}

struct Logic(&'static str);

impl HelperDef for Logic {
    fn call_inner<'reg: 'rc, 'rc>(
        &self,
        h: &Helper<'rc>,
        _: &'reg Handlebars<'reg>,
        _: &'rc Context,
        _: &mut RenderContext<'reg, 'rc>,
    ) -> Result<ScopedJson<'rc>, RenderError> {
        let values: Vec<bool> = h.params().iter().map(|p| truthy(p.value())).collect();
        let result = match (self.0, values.as_slice()) {
            ("not", [v]) => !v,
            ("not", _) => {
                return Err(fail(format!(
                    "`not` takes one value; it was given {}",
                    values.len()
                )));
            }
            (name, []) => return Err(fail(format!("`{name}` needs at least one value"))),
            ("and", _) => values.iter().all(|v| *v),
            _ => values.iter().any(|v| *v),
        };
        Ok(ScopedJson::Derived(Value::Bool(result)))
    }
}

struct Length;

impl HelperDef for Length {
    fn call_inner<'reg: 'rc, 'rc>(
        &self,
        h: &Helper<'rc>,
        _: &'reg Handlebars<'reg>,
        _: &'rc Context,
        _: &mut RenderContext<'reg, 'rc>,
    ) -> Result<ScopedJson<'rc>, RenderError> {
        let [v] = h.params().as_slice() else {
            return Err(fail("`len` takes one value".into()));
        };
        let n = match v.value() {
            Value::Array(a) => a.len(),
            Value::Object(o) => o.len(),
            other => text(other).chars().count(),
        };
        Ok(ScopedJson::Derived(Value::from(n)))
    }
}

/// `if` and `unless`, with the runbook's rule of what is true.
struct Branch {
    positive: bool,
}

impl HelperDef for Branch {
    fn call<'reg: 'rc, 'rc>(
        &self,
        h: &Helper<'rc>,
        r: &'reg Handlebars<'reg>,
        ctx: &'rc Context,
        rc: &mut RenderContext<'reg, 'rc>,
        out: &mut dyn Output,
    ) -> HelperResult {
        let name = if self.positive { "if" } else { "unless" };
        let [v] = h.params().as_slice() else {
            return Err(fail(format!("`{name}` tests one value")));
        };
        let part = if truthy(v.value()) == self.positive {
            h.template()
        } else {
            h.inverse()
        };
        match part {
            Some(t) => t.render(r, ctx, rc, out),
            None => Ok(()),
        }
    }
}

/// A render error in the runbook's words: what is wrong, and where in the template.
pub(crate) fn explain(e: &RenderError) -> String {
    let what = reason(e);
    match (e.line_no, e.column_no) {
        (Some(l), Some(c)) if l > 1 => format!("{what} (template line {l}, column {c})"),
        _ => what,
    }
}

/// What is wrong, in the runbook's words, without where.
pub(crate) fn reason(e: &RenderError) -> String {
    use RenderErrorReason as R;
    match e.reason() {
        R::MissingVariable(Some(path)) => format!("variable `{path}` is not set"),
        R::MissingVariable(None) => "a variable is not set".to_string(),
        R::HelperNotFound(name) => {
            format!("there is no helper `{name}`; the helpers are {}", names())
        }
        R::ParamNotFoundForIndex(helper, i) => {
            format!("`{helper}` needs a value in position {}", i + 1)
        }
        R::InvalidParamType(kind) => format!("a helper was given a value that is not {kind}"),
        R::InvalidJsonPath(path) => format!("`{path}` is not a variable name"),
        R::BlockContentRequired => "a block helper is used without a block".into(),
        R::Other(message) => message.clone(),
        other => format!("the template cannot be rendered (the template library says: {other})"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn numbers_compare_as_numbers_only_when_both_sides_are_numbers() {
        let table = [
            (json!(5), json!("5"), Ordering::Equal),
            (json!("5"), json!("5.0"), Ordering::Equal),
            (json!("12"), json!(30), Ordering::Less),
            (json!("9"), json!("10"), Ordering::Less),
            (json!("007"), json!(7), Ordering::Equal),
            (json!(" 42 "), json!(42), Ordering::Equal),
            (json!("1e3"), json!(999), Ordering::Greater),
            (json!("-1"), json!("0"), Ordering::Less),
            (json!("abc"), json!("abd"), Ordering::Less),
            (json!("9"), json!("10a"), Ordering::Greater),
            (json!("0x10"), json!(16), Ordering::Less),
            (json!("inf"), json!(1), Ordering::Greater),
            (json!(true), json!("true"), Ordering::Equal),
            (json!(null), json!(""), Ordering::Equal),
        ];
        for (a, b, want) in table {
            assert_eq!(compare(&a, &b), want, "{a} vs {b}");
        }
    }

    #[test]
    fn truth_is_one_rule() {
        for v in [
            json!(""),
            json!("0"),
            json!("no"),
            json!(" False "),
            json!(0),
            json!(false),
        ] {
            assert!(!truthy(&v), "{v}");
        }
        for v in [json!("yes"), json!("00"), json!(1), json!(true), json!("n")] {
            assert!(truthy(&v), "{v}");
        }
    }
}

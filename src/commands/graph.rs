//! `runbook graph NAME`: the step graph as Mermaid (for Markdown docs) or Graphviz dot.

use super::{load, print};
use crate::cli::GraphFormat;
use crate::config::Config;
use crate::error::{Error, exit};
use crate::runbook::Runbook;

pub(crate) fn graph(config: &Config, name: &str, format: GraphFormat) -> Result<u8, Error> {
    let rb = load(config, name)?;
    print(&match format {
        GraphFormat::Mermaid => mermaid(&rb),
        GraphFormat::Dot => dot(&rb),
    })?;
    Ok(exit::OK)
}

fn label(rb: &Runbook, i: usize) -> String {
    let s = &rb.steps[i];
    let mut l = if s.title == s.id {
        s.id.clone()
    } else {
        format!("{}: {}", s.id, s.title)
    };
    if let Some(w) = &s.when {
        l.push_str(&format!(" (when {})", w.trim()));
    }
    l
}

fn mermaid(rb: &Runbook) -> String {
    // Node ids are positional: step ids may contain `-`, which Mermaid reads as an edge.
    let mut out = format!(
        "---\ntitle: {}\n---\nflowchart TD\n",
        yaml_string(&rb.title)
    );
    for &i in &rb.order {
        let text = mermaid_label(&label(rb, i));
        if rb.steps[i].is_manual() {
            out.push_str(&format!("    s{i}[/\"{text}\"/]:::manual\n"));
        } else {
            out.push_str(&format!("    s{i}[\"{text}\"]\n"));
        }
    }
    for &i in &rb.order {
        for &d in &rb.steps[i].need_indices {
            out.push_str(&format!("    s{d} --> s{i}\n"));
        }
    }
    out.push_str("    classDef manual fill:#fde68a,stroke:#b45309\n");
    out
}

/// The title in Mermaid's front matter, which is YAML: a double-quoted scalar, so that
/// `Demo: a tour` is not read as a mapping (Mermaid 11 refuses the whole diagram then).
fn yaml_string(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' | '\r' | '\t' => out.push(' '),
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A node label inside `["..."]`: Mermaid ends it at `"`, reads `#name;` as an entity, a
/// leading backtick as Markdown and `<...>` as HTML, so those become entity codes.
fn mermaid_label(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '"' => out.push_str("#quot;"),
            '#' => out.push_str("#35;"),
            '`' => out.push_str("#96;"),
            '<' => out.push_str("#lt;"),
            '>' => out.push_str("#gt;"),
            '&' => out.push_str("#amp;"),
            '\n' | '\r' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

fn dot(rb: &Runbook) -> String {
    let q = |s: &str| {
        format!(
            "\"{}\"",
            s.replace('\\', "\\\\")
                .replace('"', "\\\"")
                .replace('\n', "\\n")
        )
    };
    let mut out = format!(
        "digraph {} {{\n    label={};\n    labelloc=t;\n    rankdir=TB;\n    node [shape=box, style=rounded, fontname=\"Helvetica\"];\n",
        q(&rb.name),
        q(&rb.title)
    );
    for &i in &rb.order {
        let s = &rb.steps[i];
        let extra = if s.is_manual() {
            ", shape=parallelogram, style=filled, fillcolor=\"#fde68a\""
        } else {
            ""
        };
        out.push_str(&format!(
            "    {} [label={}{extra}];\n",
            q(&s.id),
            q(&label(rb, i))
        ));
    }
    for &i in &rb.order {
        for &d in &rb.steps[i].need_indices {
            out.push_str(&format!(
                "    {} -> {};\n",
                q(&rb.steps[d].id),
                q(&rb.steps[i].id)
            ));
        }
    }
    out.push_str("}\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn titles_are_yaml_strings() {
        assert_eq!(yaml_string("Demo: a tour"), r#""Demo: a tour""#);
        assert_eq!(yaml_string(r#"a "b" \ c"#), r#""a \"b\" \\ c""#);
        assert_eq!(yaml_string("two\nlines"), r#""two lines""#);
        assert_eq!(yaml_string("bell\u{7}"), r#""bell\u0007""#);
    }

    #[test]
    fn labels_keep_mermaid_syntax_out() {
        assert_eq!(
            mermaid_label(r#"say "hi" #1; `x` <b>&"#),
            "say #quot;hi#quot; #35;1; #96;x#96; #lt;b#gt;#amp;"
        );
    }
}

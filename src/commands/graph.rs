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
        rb.title.replace('\n', " ")
    );
    for &i in &rb.order {
        let text = label(rb, i).replace('"', "#quot;");
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

//! The layout is a picture of the architecture (issue 9): data flows one way between the
//! top-level modules, so their imports form no circle; the executor never reaches up into
//! the terminal or the review; and no file grows into a room that does everything.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Top-level module -> the top-level modules it names (`crate::x`), outside tests and
/// comments.
fn imports() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut tops: Vec<String> = std::fs::read_dir(&src)
        .unwrap()
        .map(|e| {
            e.unwrap()
                .file_name()
                .to_string_lossy()
                .trim_end_matches(".rs")
                .to_string()
        })
        .filter(|n| n != "lib" && n != "main")
        .collect();
    tops.sort();
    let mut graph: BTreeMap<String, BTreeSet<String>> =
        tops.iter().map(|t| (t.clone(), BTreeSet::new())).collect();
    for top in &tops {
        for file in rust_files(&src.join(top), &src.join(format!("{top}.rs"))) {
            let text = std::fs::read_to_string(&file).unwrap();
            let code = text.split("#[cfg(test)]").next().unwrap_or_default();
            for line in code.lines().filter(|l| !l.trim_start().starts_with("//")) {
                for other in &tops {
                    let named = line.contains(&format!("crate::{other}::"))
                        || line.contains(&format!("crate::{other};"))
                        || (line.contains("use crate::{") && line.contains(other.as_str()));
                    if other != top && named {
                        graph.get_mut(top).unwrap().insert(other.clone());
                    }
                }
            }
        }
    }
    graph
}

fn rust_files(dir: &Path, file: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    if file.is_file() {
        out.push(file.to_path_buf());
    }
    if dir.is_dir() {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                out.extend(rust_files(&p, Path::new("")));
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(p);
            }
        }
    }
    out
}

#[test]
fn the_module_imports_form_no_circle() {
    let graph = imports();
    // Depth-first search for a back edge, naming the circle if there is one.
    fn visit(
        n: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) {
        if let Some(at) = path.iter().position(|p| p == n) {
            panic!("import circle: {} -> {n}", path[at..].join(" -> "));
        }
        if done.contains(n) {
            return;
        }
        path.push(n.to_string());
        for m in &graph[n] {
            visit(m, graph, path, done);
        }
        path.pop();
        done.insert(n.to_string());
    }
    let mut done = BTreeSet::new();
    for n in graph.keys() {
        visit(n, &graph, &mut Vec::new(), &mut done);
    }
}

#[test]
fn the_executor_reaches_neither_the_terminal_nor_the_review() {
    let graph = imports();
    let exec = &graph["exec"];
    assert!(
        !exec.contains("terminal") && !exec.contains("review"),
        "{exec:?}"
    );
    assert!(
        graph["event"].is_empty(),
        "events depend on nothing: {:?}",
        graph["event"]
    );
}

#[test]
fn no_source_file_holds_more_than_a_tenth_of_the_code() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let files = rust_files(&src, Path::new(""));
    let lines: Vec<(usize, String)> = files
        .iter()
        .map(|f| {
            (
                std::fs::read_to_string(f).unwrap().lines().count(),
                f.display().to_string(),
            )
        })
        .collect();
    let total: usize = lines.iter().map(|(n, _)| n).sum();
    for (n, f) in &lines {
        assert!(*n * 10 <= total, "{f} has {n} of {total} lines");
    }
}

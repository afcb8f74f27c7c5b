//! No loops between files: within a crate, no module imports one that
//! (directly or through others) imports it back, so each crate reads
//! top-down. `cargo xtask imports`, and the same check as a `#[test]`.
//!
//! A module's imports are the `crate::` and `super::` paths in its
//! non-test code (everything before its first `#[cfg(test)]` or
//! `#[cfg(all(test` item); a path names the longest module prefix it has.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use anyhow::Context;

/// Module path (`a::b`) -> the modules of the same crate it imports.
type Graph = BTreeMap<String, BTreeSet<String>>;

pub(crate) fn run() -> anyhow::Result<()> {
    let root = crate::project_root();
    let mut loops = Vec::new();
    let mut crates = 0;
    for entry in std::fs::read_dir(root.join("crates"))? {
        let src = entry?.path().join("src");
        if src.is_dir() {
            crates += 1;
            for l in cycles(&graph(&src)?) {
                loops.push(format!(
                    "{}: these modules import one another: {}",
                    src.display(),
                    l.join(", ")
                ));
            }
        }
    }
    if loops.is_empty() {
        println!("imports: {crates} crates, no module imports one that imports it back");
        return Ok(());
    }
    for l in &loops {
        println!("{l}");
    }
    anyhow::bail!(
        "{} import loop(s) between files: give the shared state a module of its own that the others import",
        loops.len()
    )
}

/// The import graph of the crate whose sources are in `src`.
fn graph(src: &Path) -> anyhow::Result<Graph> {
    let mut files = Vec::new();
    collect(src, &mut files)?;
    let modules: BTreeMap<String, &Path> = files
        .iter()
        .filter_map(|f| Some((module_of(src, f)?, f.as_path())))
        .collect();
    let mut graph = Graph::new();
    for (module, file) in &modules {
        let text =
            std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
        let imports = graph.entry(module.clone()).or_default();
        for path in paths(non_test(&text)) {
            if let Some(target) = resolve(module, &path, &modules) {
                if target != *module {
                    imports.insert(target);
                }
            }
        }
    }
    Ok(graph)
}

fn collect(dir: &Path, out: &mut Vec<std::path::PathBuf>) -> anyhow::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            collect(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
    Ok(())
}

/// `src/a/b.rs` and `src/a/b/mod.rs` are `a::b`; the crate root is left out.
fn module_of(src: &Path, file: &Path) -> Option<String> {
    let rel = file.strip_prefix(src).ok()?.with_extension("");
    let mut parts: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if parts.last().is_some_and(|p| p == "mod") {
        parts.pop();
    }
    if parts == ["lib"] || parts == ["main"] || parts.is_empty() {
        return None;
    }
    Some(parts.join("::"))
}

/// The text before the first test-only item.
fn non_test(text: &str) -> &str {
    ["#[cfg(test)]", "#[cfg(all(test"]
        .iter()
        .filter_map(|m| text.find(m))
        .min()
        .map_or(text, |i| text.get(..i).unwrap_or(text))
}

/// Every `crate::a::b` and `super::a` path in `text`, as written.
fn paths(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for start in ["crate::", "super::"] {
        let mut rest = text;
        while let Some(i) = rest.find(start) {
            let boundary = rest
                .get(..i)
                .and_then(|b| b.chars().next_back())
                .is_none_or(|c| !(c.is_alphanumeric() || c == '_'));
            let tail = rest.get(i..).unwrap_or("");
            let len = tail
                .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
                .unwrap_or(tail.len());
            if boundary {
                out.push(tail.get(..len).unwrap_or("").to_string());
            }
            rest = tail.get(start.len()..).unwrap_or("");
        }
    }
    out
}

/// The module of this crate that `path`, written in `module`, names.
fn resolve(module: &str, path: &str, modules: &BTreeMap<String, &Path>) -> Option<String> {
    let mut parts: Vec<&str> = path.split("::").filter(|p| !p.is_empty()).collect();
    let base: Vec<&str> = match parts.first() {
        Some(&"crate") => {
            parts.remove(0);
            Vec::new()
        }
        Some(&"super") => {
            parts.remove(0);
            let mut own: Vec<&str> = module.split("::").collect();
            own.pop();
            own
        }
        _ => return None,
    };
    let full: Vec<&str> = base.into_iter().chain(parts).collect();
    (1..=full.len())
        .rev()
        .map(|k| full.get(..k).unwrap_or(&[]).join("::"))
        .find(|candidate| modules.contains_key(candidate))
}

/// Each group of modules that import one another, as a loop to print.
fn cycles(graph: &Graph) -> Vec<Vec<String>> {
    let reach = |from: &str| -> BTreeSet<String> {
        let mut seen = BTreeSet::new();
        let mut stack = vec![from.to_string()];
        while let Some(m) = stack.pop() {
            for next in graph.get(&m).into_iter().flatten() {
                if seen.insert(next.clone()) {
                    stack.push(next.clone());
                }
            }
        }
        seen
    };
    let mut reported = BTreeSet::new();
    let mut out = Vec::new();
    for module in graph.keys() {
        if reported.contains(module) {
            continue;
        }
        let from = reach(module);
        if !from.contains(module) {
            continue;
        }
        let group: Vec<String> = graph
            .keys()
            .filter(|other| {
                *other == module || (from.contains(*other) && reach(other).contains(module))
            })
            .cloned()
            .collect();
        reported.extend(group.iter().cloned());
        out.push(group);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn graph_of(edges: &[(&str, &[&str])]) -> Graph {
        edges
            .iter()
            .map(|(m, to)| (m.to_string(), to.iter().map(|t| t.to_string()).collect()))
            .collect()
    }

    #[test]
    fn a_loop_is_found_and_a_chain_is_not() {
        let chain = graph_of(&[("a", &["b"]), ("b", &["c"]), ("c", &[])]);
        assert!(cycles(&chain).is_empty());
        let looped = graph_of(&[("a", &["b"]), ("b", &["c"]), ("c", &["a"]), ("d", &["a"])]);
        assert_eq!(cycles(&looped), vec![vec!["a", "b", "c"]]);
    }

    #[test]
    fn paths_resolve_to_the_longest_module_and_tests_do_not_count() {
        let modules: BTreeMap<String, &Path> = ["tcp", "tcp::link", "shared"]
            .iter()
            .map(|m| (m.to_string(), Path::new("")))
            .collect();
        let text = "use crate::shared::Shared;\nuse super::link::LinkState;\nlet x = my_crate::shared;\n#[cfg(test)]\nuse crate::tcp::link;";
        let found: Vec<String> = paths(non_test(text))
            .iter()
            .filter_map(|p| resolve("tcp::reader", p, &modules))
            .collect();
        assert_eq!(found, vec!["shared", "tcp::link"]);
    }

    #[test]
    fn no_crate_has_an_import_loop_between_files() {
        run().unwrap();
    }
}

//! The design rules of ARCHITECTURE.md that a machine can check, so they hold after the next
//! change too: the core imports no I/O crate, no two source files import each other (directly or
//! round a loop), and commands stay step lists (no function in `src/commands` over 80 lines).
//! The checks read the source text (std only): `use`/path references by `crate::`, `super::`,
//! `self::` and the crate's own name, with `#[cfg(test)] mod tests { … }` blocks left out.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).expect("source folder") {
        let p = e.expect("dir entry").path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// `a/b.rs` → [a, b]; `a/mod.rs` → [a]; `lib.rs`/`main.rs` → [].
fn module_of(src: &Path, file: &Path) -> Vec<String> {
    let rel = file.strip_prefix(src).expect("under src").with_extension("");
    let mut parts: Vec<String> = rel.iter().map(|p| p.to_string_lossy().into_owned()).collect();
    if matches!(parts.last().map(String::as_str), Some("mod" | "lib" | "main")) {
        parts.pop();
    }
    parts
}

/// The text without comments and without an inline `#[cfg(test)] mod tests { … }` at the end.
fn code(text: &str) -> String {
    let text = match text.find("#[cfg(test)]\nmod tests {") {
        Some(i) => &text[..i],
        None => text,
    };
    text.lines().map(|l| l.split("//").next().unwrap_or("")).collect::<Vec<_>>().join("\n")
}

fn ident_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// Module → the other modules (files) of the same crate it refers to, ancestors excluded (a
/// parent declares its children; a child using its parent's items is not a cycle).
fn imports(src: &Path, crate_name: &str) -> BTreeMap<Vec<String>, BTreeSet<Vec<String>>> {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    let modules: BTreeSet<Vec<String>> = files.iter().map(|f| module_of(src, f)).collect();
    let mut graph = BTreeMap::new();
    for f in &files {
        let m = module_of(src, f);
        let text = code(&std::fs::read_to_string(f).expect("readable source"));
        let mut deps = BTreeSet::new();
        for head in ["crate", "super", "self", crate_name] {
            let mut from = 0;
            while let Some(i) = text[from..].find(head).map(|i| i + from) {
                from = i + head.len();
                let before = text[..i].chars().next_back();
                if before.is_some_and(ident_char) || !text[from..].starts_with("::") {
                    continue;
                }
                // The path after `head`, braces and globs cut off.
                let rest: String = text[from..].chars().take_while(|&c| ident_char(c) || c == ':').collect();
                let mut path: Vec<String> = rest.split("::").filter(|s| !s.is_empty()).map(str::to_owned).collect();
                let mut cur = match head {
                    "super" => m[..m.len().saturating_sub(1)].to_vec(),
                    "self" => m.clone(),
                    _ => Vec::new(),
                };
                while path.first().is_some_and(|p| p == "super") {
                    cur.pop();
                    path.remove(0);
                }
                let target = (1..=path.len())
                    .rev()
                    .map(|k| cur.iter().cloned().chain(path[..k].iter().cloned()).collect::<Vec<_>>())
                    .find(|cand| modules.contains(cand));
                if let Some(t) = target.filter(|t| *t != m && !m.starts_with(t)) {
                    deps.insert(t);
                }
            }
        }
        graph.insert(m, deps);
    }
    graph
}

/// Every loop of the graph (Tarjan's strongly connected components with more than one member).
fn cycles(graph: &BTreeMap<Vec<String>, BTreeSet<Vec<String>>>) -> Vec<Vec<String>> {
    struct T<'a> {
        g: &'a BTreeMap<Vec<String>, BTreeSet<Vec<String>>>,
        index: BTreeMap<&'a Vec<String>, usize>,
        low: BTreeMap<&'a Vec<String>, usize>,
        stack: Vec<&'a Vec<String>>,
        found: Vec<Vec<String>>,
    }
    fn visit<'a>(t: &mut T<'a>, v: &'a Vec<String>) {
        let n = t.index.len();
        t.index.insert(v, n);
        t.low.insert(v, n);
        t.stack.push(v);
        for w in t.g.get(v).into_iter().flatten() {
            let Some((w, _)) = t.g.get_key_value(w) else { continue };
            if !t.index.contains_key(w) {
                visit(t, w);
                let lw = t.low[w];
                let lv = t.low.get_mut(v).expect("visited");
                *lv = (*lv).min(lw);
            } else if t.stack.contains(&w) {
                let iw = t.index[w];
                let lv = t.low.get_mut(v).expect("visited");
                *lv = (*lv).min(iw);
            }
        }
        if t.low[v] == t.index[v] {
            let mut comp = Vec::new();
            while let Some(w) = t.stack.pop() {
                comp.push(w.join("::"));
                if w == v {
                    break;
                }
            }
            if comp.len() > 1 {
                comp.sort();
                t.found.push(comp);
            }
        }
    }
    let mut t = T { g: graph, index: BTreeMap::new(), low: BTreeMap::new(), stack: Vec::new(), found: Vec::new() };
    for v in graph.keys() {
        if !t.index.contains_key(v) {
            visit(&mut t, v);
        }
    }
    t.found
}

#[test]
fn no_source_file_imports_another_that_imports_it_back() {
    for (dir, name) in [("src", "pano_eks"), ("core/src", "pano_eks_core")] {
        let graph = imports(&root().join(dir), name);
        assert!(graph.len() > 5, "{dir}: found only {} modules", graph.len());
        let found = cycles(&graph);
        assert!(found.is_empty(), "{dir}: import cycles between files (put the shared piece where both can depend on it): {found:?}");
    }
}

#[test]
fn the_cycle_check_finds_a_loop() {
    // Canary: the check above must be able to fail.
    let m = |s: &str| s.split("::").map(str::to_owned).collect::<Vec<_>>();
    let mut g = BTreeMap::new();
    g.insert(m("commands::up"), BTreeSet::from([m("commands::prepare")]));
    g.insert(m("commands::prepare"), BTreeSet::from([m("commands::shared"), m("commands::up")]));
    g.insert(m("commands::shared"), BTreeSet::new());
    assert_eq!(cycles(&g), vec![vec!["commands::prepare".to_owned(), "commands::up".to_owned()]]);
}

#[test]
fn the_core_depends_on_no_io_crate() {
    let manifest = std::fs::read_to_string(root().join("core/Cargo.toml")).expect("core manifest");
    let deps = manifest.split("[dependencies]").nth(1).expect("a [dependencies] table").split("\n[").next().unwrap_or("");
    let names: Vec<&str> = deps
        .lines()
        .filter_map(|l| l.split('=').next())
        .map(|n| n.split('.').next().unwrap_or(n).trim())
        .filter(|n| !n.is_empty() && !n.starts_with('#'))
        .collect();
    let allowed = ["serde", "serde_json", "thiserror", "ipnet", "sha2"];
    let extra: Vec<&&str> = names.iter().filter(|n| !allowed.contains(n)).collect();
    assert!(extra.is_empty(), "core/Cargo.toml depends on {extra:?}: the core is pure (allowed: {allowed:?})");
}

#[test]
fn command_functions_are_step_lists() {
    const MAX: usize = 80;
    let mut files = Vec::new();
    rust_files(&root().join("src/commands"), &mut files);
    let mut long = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(&f).expect("readable source");
        let text = code(&text);
        let lines: Vec<&str> = text.lines().collect();
        for (i, l) in lines.iter().enumerate() {
            let t = l.trim_start();
            let indent = l.len() - t.len();
            let is_fn =
                ["fn ", "pub fn ", "pub(crate) fn ", "async fn ", "pub async fn ", "pub(crate) async fn "].iter().any(|p| t.starts_with(p));
            if !is_fn || t.ends_with(';') {
                continue;
            }
            let close = format!("{}}}", " ".repeat(indent));
            if let Some(end) = lines[i + 1..].iter().position(|x| *x == close) {
                if end + 2 > MAX {
                    long.push(format!("{}:{} ({} lines)", f.display(), i + 1, end + 2));
                }
            }
        }
    }
    assert!(long.is_empty(), "functions in src/commands over {MAX} lines (split them into the steps they print): {long:?}");
}

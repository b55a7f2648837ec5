//! The modules of this crate form a layered graph: no module depends, directly or through
//! others, on a module that depends on it.
//!
//! A module's dependencies are the sibling modules its non-test code names through `crate::`
//! paths (`use crate::space::Space;`, `use crate::{alloc::Run, blob::BlobId};`,
//! `crate::mvcc::scan_at(..)`). Comments and the `#[cfg(test)] mod tests` block at the end of a
//! file are not read: tests may reach anywhere, and doc links are not dependencies. `lib.rs`
//! declares the modules and re-exports; it is the root, not a module of the graph.
// Tests and benches may unwrap, index and cast freely: a panic there is a failed test.
#![allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::cast_possible_truncation,
    clippy::cast_possible_wrap,
    clippy::cast_sign_loss,
    unreachable_pub
)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Module name -> the sibling modules it names.
type Graph = BTreeMap<String, BTreeSet<String>>;

#[test]
fn storage_modules_have_no_cycles() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let graph = module_graph(&src);
    assert!(
        graph.len() > 10,
        "too few modules read from {}",
        src.display()
    );
    if let Some(cycle) = find_cycle(&graph) {
        panic!("modules depend on each other: {}", cycle.join(" -> "));
    }
}

#[test]
fn the_checker_finds_a_cycle() {
    let mut graph = Graph::new();
    let sources = [
        ("a", "use crate::b::B;\n// crate::c is only a comment\n"),
        ("b", "use crate::{c::C, alloc::Run};\n"),
        (
            "c",
            "fn f() { crate::a::g() }\n#[cfg(test)]\nmod tests {\n    use crate::b;\n}\n",
        ),
        ("alloc", "use crate::c::C;\n"),
    ];
    let names: BTreeSet<String> = sources.iter().map(|(n, _)| n.to_string()).collect();
    for (name, text) in sources {
        graph.insert(name.to_string(), dependencies(name, text, &names));
    }
    assert_eq!(graph["b"], BTreeSet::from(["alloc".into(), "c".into()]));
    assert_eq!(graph["c"], BTreeSet::from(["a".into()]));
    let cycle = find_cycle(&graph).expect("a -> b -> c -> a is a cycle");
    assert_eq!(cycle.first(), cycle.last());
    graph.get_mut("c").map(BTreeSet::clear);
    assert_eq!(find_cycle(&graph), None);
}

fn module_graph(src: &Path) -> Graph {
    let mut sources = BTreeMap::new();
    for entry in std::fs::read_dir(src).expect("reading src/") {
        let path = entry.expect("listing src/").path();
        let (Some(stem), Some("rs")) = (
            path.file_stem().and_then(|s| s.to_str()),
            path.extension().and_then(|e| e.to_str()),
        ) else {
            continue;
        };
        if stem != "lib" {
            let text = std::fs::read_to_string(&path).expect("reading a module");
            sources.insert(stem.to_string(), text);
        }
    }
    let names: BTreeSet<String> = sources.keys().cloned().collect();
    sources
        .iter()
        .map(|(name, text)| (name.clone(), dependencies(name, text, &names)))
        .collect()
}

/// The sibling modules `text` (the module `name`) names through `crate::` paths.
fn dependencies(name: &str, text: &str, modules: &BTreeSet<String>) -> BTreeSet<String> {
    let code: String = text
        .lines()
        .take_while(|line| {
            !line.trim_start().starts_with("#[cfg(test)]") || !is_test_block(text, line)
        })
        .map(|line| line.split("//").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n");
    let mut found = BTreeSet::new();
    let mut rest = code.as_str();
    while let Some(at) = rest.find("crate::") {
        rest = &rest[at + "crate::".len()..];
        let heads: Vec<String> = if let Some(group) = rest.strip_prefix('{') {
            // `crate::{a::X, b::{Y, Z}}`: the first segment of each top-level item.
            let mut depth = 0;
            let mut items = vec![String::new()];
            for c in group.chars() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => items.push(String::new()),
                    _ if depth == 0 => items.last_mut().expect("never empty").push(c),
                    _ => {}
                }
            }
            items.iter().map(|item| identifier(item.trim())).collect()
        } else {
            vec![identifier(rest)]
        };
        found.extend(
            heads
                .into_iter()
                .filter(|head| head != name && modules.contains(head)),
        );
    }
    found
}

/// Whether `line` opens the test module: `#[cfg(test)]` followed by `mod tests`.
fn is_test_block(text: &str, line: &str) -> bool {
    let mut lines = text.lines().skip_while(|l| !std::ptr::eq(*l, line));
    lines.next();
    lines
        .next()
        .is_some_and(|next| next.trim_start().starts_with("mod tests"))
}

fn identifier(text: &str) -> String {
    text.chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect()
}

/// A cycle of `graph` as its path (first module repeated at the end), if there is one.
fn find_cycle(graph: &Graph) -> Option<Vec<String>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        Open,
        Done,
    }
    fn visit(
        node: &str,
        graph: &Graph,
        marks: &mut BTreeMap<String, Mark>,
        path: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        match marks.get(node) {
            Some(Mark::Done) => return None,
            Some(Mark::Open) => {
                let start = path.iter().position(|n| n == node).unwrap_or(0);
                let mut cycle = path[start..].to_vec();
                cycle.push(node.to_string());
                return Some(cycle);
            }
            None => {}
        }
        marks.insert(node.to_string(), Mark::Open);
        path.push(node.to_string());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(cycle) = visit(next, graph, marks, path) {
                return Some(cycle);
            }
        }
        path.pop();
        marks.insert(node.to_string(), Mark::Done);
        None
    }
    let mut marks = BTreeMap::new();
    graph
        .keys()
        .find_map(|node| visit(node, graph, &mut marks, &mut Vec::new()))
}

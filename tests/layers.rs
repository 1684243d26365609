//! The module graph has no circles: no two top-level modules under `src/` (the
//! layers of `src/lib.rs` and DESIGN.md) import each other, directly or round
//! about. (It checks circles, not an order: `job` holds its configured sources,
//! so it sits above `sources` here, and the drivers use the report's types.)
//!
//! It reads the sources as text (no build of its own): comments, string
//! literals and `#[cfg(test)]` modules are blanked out, every `crate::X` path
//! (and `super::` path that climbs to the crate root) gives an edge from the
//! file's top-level module to `X`, and any circle among those edges fails the
//! test, naming each edge's `file:line`s. Names `src/lib.rs` re-exports
//! (`pub use base::error;`) count as the module they come from.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// One use of another top-level module: which, and where (1-based line).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Use {
    target: String,
    line: usize,
}

/// `src` with comments (line, block, doc) and the contents of string and char
/// literals replaced by spaces. Byte offsets and line breaks are kept, so a
/// position in the result is the same position in `src`.
fn blank_comments_and_strings(src: &str) -> String {
    let b = src.as_bytes();
    let mut out = b.to_vec();
    let blank = |out: &mut Vec<u8>, from: usize, to: usize| {
        for c in &mut out[from..to] {
            if *c != b'\n' {
                *c = b' ';
            }
        }
    };
    let ident = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'/' if b.get(i + 1) == Some(&b'/') => {
                let end = src[i..].find('\n').map_or(b.len(), |n| i + n);
                blank(&mut out, i, end);
                i = end;
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                // Block comments nest in Rust.
                let (mut depth, mut j) = (0usize, i);
                while j < b.len() {
                    if b[j..].starts_with(b"/*") {
                        depth += 1;
                        j += 2;
                    } else if b[j..].starts_with(b"*/") {
                        depth -= 1;
                        j += 2;
                        if depth == 0 {
                            break;
                        }
                    } else {
                        j += 1;
                    }
                }
                blank(&mut out, i, j);
                i = j;
            }
            b'r' | b'b' if (i == 0 || !ident(b[i - 1])) && raw_string_at(b, i).is_some() => {
                let (open, hashes) = raw_string_at(b, i).unwrap_or_default();
                let mut close = vec![b'"'];
                close.extend(std::iter::repeat_n(b'#', hashes));
                let body = open + 1;
                let end = (body..b.len())
                    .find(|&j| b[j..].starts_with(&close))
                    .map_or(b.len(), |j| j + close.len());
                blank(&mut out, body, end.saturating_sub(1).max(body));
                i = end;
            }
            b'"' => {
                let mut j = i + 1;
                while j < b.len() && b[j] != b'"' {
                    j += if b[j] == b'\\' { 2 } else { 1 };
                }
                blank(&mut out, i + 1, j.min(b.len()));
                i = j + 1;
            }
            b'\'' => {
                // A char literal (`'x'`, `'\n'`, `'"'`, `'{'`) or a lifetime (`'a`).
                let rest = &src[i + 1..];
                let len = if let Some(escaped) = rest.strip_prefix('\\') {
                    // `\n`, `\'`, `\u{7b}`: the escaped char, then on to the quote.
                    escaped.get(1..).and_then(|e| e.find('\'')).map(|n| n + 2)
                } else {
                    rest.chars()
                        .next()
                        .filter(|c| rest[c.len_utf8()..].starts_with('\''))
                        .map(char::len_utf8)
                };
                match len {
                    Some(n) => {
                        blank(&mut out, i + 1, i + 1 + n);
                        i += n + 2;
                    }
                    None => i += 1,
                }
            }
            _ => i += 1,
        }
    }
    // Only ASCII bytes were replaced, by ASCII, so what was text still is.
    String::from_utf8_lossy(&out).into_owned()
}

/// At `i`, the start of a raw string (`r"`, `r#"`, `br##"`): the position of its
/// opening quote and the number of `#`s.
fn raw_string_at(b: &[u8], i: usize) -> Option<(usize, usize)> {
    let mut j = i;
    if b[j] == b'b' {
        j += 1;
    }
    if b.get(j) != Some(&b'r') {
        return None;
    }
    j += 1;
    let hashes = b[j..].iter().take_while(|c| **c == b'#').count();
    (b.get(j + hashes) == Some(&b'"')).then_some((j + hashes, hashes))
}

/// `code` (comments and strings blanked) with every `#[cfg(test)]` inline module
/// blanked too, and the files of `#[cfg(test)]` out-of-line modules (`mod x;`,
/// with or without `#[path = "…"]`), as paths relative to the file's directory.
fn blank_test_modules(code: &str, original: &str) -> (String, Vec<String>) {
    let mut out = code.as_bytes().to_vec();
    let mut test_files = Vec::new();
    let mut from = 0;
    while let Some(n) = code[from..].find("#[cfg(test)]") {
        let start = from + n;
        let mut i = start + "#[cfg(test)]".len();
        let mut path = None;
        // Further attributes, such as `#[path = "x.rs"]`.
        loop {
            i += code[i..].len() - code[i..].trim_start().len();
            if !code[i..].starts_with("#[") {
                break;
            }
            let Some(end) = matching(code, i + 1, b'[', b']') else {
                break;
            };
            let attr = &code[i + 2..end];
            if attr.trim_start().starts_with("path") {
                // Strings are blanked in `code`; the original has the path.
                let text = &original[i + 2..end];
                path = text.split('"').nth(1).map(str::to_string);
            }
            i = end + 1;
        }
        let item = code[i..].trim_start();
        let item_at = i + (code[i..].len() - item.len());
        let item = item.strip_prefix("pub ").unwrap_or(item);
        if let Some(rest) = item.strip_prefix("mod ") {
            let name: String = rest
                .trim_start()
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            let after = rest.trim_start()[name.len()..].trim_start();
            if after.starts_with(';') {
                test_files.push(path.unwrap_or(format!("{name}.rs")));
            } else if after.starts_with('{') {
                let open = code.len() - after.len();
                let close = matching(code, open, b'{', b'}').unwrap_or(code.len() - 1);
                for c in &mut out[start..=close] {
                    if *c != b'\n' {
                        *c = b' ';
                    }
                }
                from = close + 1;
                continue;
            }
        }
        from = item_at.max(start + 1);
    }
    (String::from_utf8_lossy(&out).into_owned(), test_files)
}

/// The position of the bracket that closes the one at `open`.
fn matching(code: &str, open: usize, left: u8, right: u8) -> Option<usize> {
    let mut depth = 0usize;
    for (j, c) in code.bytes().enumerate().skip(open) {
        if c == left {
            depth += 1;
        } else if c == right {
            depth -= 1;
            if depth == 0 {
                return Some(j);
            }
        }
    }
    None
}

/// The first segment of every `crate::…` path in `code` (comments, strings and
/// test modules blanked), with its line; a grouped import gives one per member
/// (`use crate::{a::b, c}` → `a`, `c`). `module` is the file's module path under
/// the crate root (`["commit", "state"]`), for `super::` paths that climb out of
/// the file's top-level module.
fn crate_paths(code: &str, module: &[String]) -> Vec<Use> {
    let b = code.as_bytes();
    let ident = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
    let line_of = |at: usize| code[..at].matches('\n').count() + 1;
    let mut out = Vec::new();
    let push_members = |rest: &str, at: usize, out: &mut Vec<Use>| {
        let rest = rest.trim_start();
        if let Some(group) = rest.strip_prefix('{') {
            let open = code.len() - rest.len();
            let close = matching(code, open, b'{', b'}').unwrap_or(code.len());
            let inner = &group[..close.saturating_sub(open + 1).min(group.len())];
            let mut depth = 0;
            let mut member = String::new();
            let mut members = Vec::new();
            for c in inner.chars() {
                match c {
                    '{' => depth += 1,
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        members.push(std::mem::take(&mut member));
                        continue;
                    }
                    _ => {}
                }
                member.push(c);
            }
            members.push(member);
            for m in members {
                let first = first_segment(&m);
                if !first.is_empty() && first != "self" {
                    out.push(Use {
                        target: first,
                        line: line_of(at),
                    });
                }
            }
        } else {
            let first = first_segment(rest);
            if !first.is_empty() {
                out.push(Use {
                    target: first,
                    line: line_of(at),
                });
            }
        }
    };
    for (at, _) in code.match_indices("crate") {
        if at > 0 && ident(b[at - 1]) {
            continue;
        }
        let rest = code[at + "crate".len()..].trim_start();
        let Some(rest) = rest.strip_prefix("::") else {
            continue;
        };
        push_members(rest, at, &mut out);
    }
    for (at, _) in code.match_indices("super") {
        if at > 0 && (ident(b[at - 1]) || code[..at].trim_end().ends_with("::")) {
            continue;
        }
        // `super::super::x`: how many levels up, and what follows.
        let mut rest = &code[at..];
        let mut up = 0;
        while let Some(r) = rest.strip_prefix("super") {
            let Some(r) = r.trim_start().strip_prefix("::") else {
                break;
            };
            up += 1;
            rest = r.trim_start();
        }
        if up > 0 && up == module.len() {
            push_members(rest, at, &mut out);
        }
    }
    out
}

/// `a::b as c` → `a`; `{x}` → ``.
fn first_segment(path: &str) -> String {
    path.trim_start()
        .chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect()
}

/// The names `src/lib.rs` re-exports from a module (`pub use base::{error,
/// faults};`, `pub use model::schema;`), as the module they come from.
fn lib_aliases(lib: &str) -> BTreeMap<String, String> {
    let code = blank_comments_and_strings(lib);
    let mut out = BTreeMap::new();
    for stmt in code.split(';') {
        let Some(path) = stmt.trim().strip_prefix("pub use ") else {
            continue;
        };
        let path = path.trim().trim_start_matches("crate::");
        let Some((module, rest)) = path.split_once("::") else {
            continue;
        };
        let rest = rest.trim().trim_start_matches('{').trim_end_matches('}');
        for member in rest.split(',') {
            let member = member.trim();
            let name = match member.split_once(" as ") {
                Some((_, alias)) => alias.trim(),
                None => member.rsplit("::").next().unwrap_or(member).trim(),
            };
            if !name.is_empty() {
                out.insert(name.to_string(), module.trim().to_string());
            }
        }
    }
    out
}

/// Every `.rs` file under `dir`, sorted.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for entry in std::fs::read_dir(&d).expect("read src/") {
            let path = entry.expect("read src/").path();
            if path.is_dir() {
                todo.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

/// The module path of a file under `src/` (`commit/state.rs` → `commit::state`,
/// `commit/mod.rs` → `commit`).
fn module_path(relative: &Path) -> Vec<String> {
    let mut parts: Vec<String> = relative
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    if let Some(last) = parts.pop() {
        let stem = last.trim_end_matches(".rs");
        if stem != "mod" {
            parts.push(stem.to_string());
        }
    }
    parts
}

/// Edges between top-level modules: from → to → where (`file:line`).
type Graph = BTreeMap<String, BTreeMap<String, Vec<String>>>;

fn graph(src: &Path) -> Graph {
    let files = rust_files(src);
    let lib = std::fs::read_to_string(src.join("lib.rs")).expect("read src/lib.rs");
    let aliases = lib_aliases(&lib);
    let modules: BTreeSet<String> = files
        .iter()
        .filter_map(|f| f.strip_prefix(src).ok())
        .filter_map(|r| module_path(r).first().cloned())
        .filter(|m| m != "lib" && m != "main")
        .collect();
    let mut test_only: BTreeSet<PathBuf> = BTreeSet::new();
    let mut texts = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).expect("read a source file");
        let code = blank_comments_and_strings(&text);
        let (code, tests) = blank_test_modules(&code, &text);
        let dir = if file.ends_with("mod.rs") {
            file.parent().map(Path::to_path_buf)
        } else {
            Some(file.with_extension(""))
        };
        for t in tests {
            // `#[path]` is relative to the file's own directory; `mod x;` to the
            // module's.
            if let Some(parent) = file.parent() {
                test_only.insert(parent.join(&t));
            }
            if let Some(d) = &dir {
                test_only.insert(d.join(&t));
            }
        }
        texts.push((file.clone(), code));
    }
    let mut g = Graph::new();
    let mut unknown = Vec::new();
    for (file, code) in texts {
        if test_only.contains(&file) {
            continue;
        }
        let relative = file.strip_prefix(src).expect("under src/");
        let module = module_path(relative);
        let Some(from) = module.first().filter(|m| *m != "lib" && *m != "main") else {
            continue;
        };
        for u in crate_paths(&code, &module) {
            let to = aliases.get(&u.target).unwrap_or(&u.target);
            let at = format!("src/{}:{}", relative.display(), u.line);
            if !modules.contains(to) {
                unknown.push(format!("{at}: crate::{}", u.target));
            } else if to != from {
                g.entry(from.clone())
                    .or_default()
                    .entry(to.clone())
                    .or_default()
                    .push(at);
            }
        }
    }
    assert!(
        unknown.is_empty(),
        "paths to no top-level module or src/lib.rs re-export (the test cannot place them):\n{}",
        unknown.join("\n")
    );
    g
}

/// The circles of `g`: one per strongly connected component of two or more
/// modules, as the modules in order (the first repeated at the end).
fn circles(g: &Graph) -> Vec<Vec<String>> {
    let nodes: BTreeSet<&String> = g.keys().chain(g.values().flat_map(|m| m.keys())).collect();
    let reaches = |from: &String| -> BTreeSet<String> {
        let mut seen = BTreeSet::new();
        let mut todo = vec![from.clone()];
        while let Some(n) = todo.pop() {
            for next in g.get(&n).into_iter().flat_map(|m| m.keys()) {
                if seen.insert(next.clone()) {
                    todo.push(next.clone());
                }
            }
        }
        seen
    };
    let reach: BTreeMap<&String, BTreeSet<String>> =
        nodes.iter().map(|n| (*n, reaches(n))).collect();
    let mut done: BTreeSet<String> = BTreeSet::new();
    let mut out = Vec::new();
    for n in &nodes {
        if done.contains(*n) || !reach[n].contains(*n) {
            continue;
        }
        let component: BTreeSet<String> = reach[n]
            .iter()
            .filter(|m| reach.get(m).is_some_and(|r| r.contains(*n)))
            .cloned()
            .collect();
        done.extend(component.iter().cloned());
        // A shortest way back to `n`, breadth first inside the component.
        let mut back: BTreeMap<String, String> = BTreeMap::new();
        let mut queue = std::collections::VecDeque::from([(*n).clone()]);
        let mut found = None;
        while let Some(m) = queue.pop_front() {
            for next in g.get(&m).into_iter().flat_map(|e| e.keys()) {
                if next == *n {
                    found = Some(m.clone());
                    break;
                }
                if component.contains(next) && !back.contains_key(next) {
                    back.insert(next.clone(), m.clone());
                    queue.push_back(next.clone());
                }
            }
            if found.is_some() {
                break;
            }
        }
        let Some(last) = found else {
            continue;
        };
        // From the module that leads back to `n`, up the search tree to `n`.
        let mut chain = vec![last];
        while let Some(m) = chain.last().filter(|m| *m != *n) {
            let Some(parent) = back.get(m) else {
                break;
            };
            chain.push(parent.clone());
        }
        chain.reverse();
        chain.push((*n).clone());
        out.push(chain);
    }
    out
}

fn describe(g: &Graph, circle: &[String]) -> String {
    let mut s = circle.join(" -> ");
    for pair in circle.windows(2) {
        let at = g
            .get(&pair[0])
            .and_then(|m| m.get(&pair[1]))
            .cloned()
            .unwrap_or_default();
        s.push_str(&format!("\n  {} -> {}:", pair[0], pair[1]));
        for a in at {
            s.push_str(&format!("\n    {a}"));
        }
    }
    s
}

#[test]
fn the_module_graph_has_no_circles() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let g = graph(&src);
    assert!(g.len() > 5, "the graph is suspiciously small: {g:?}");
    let found = circles(&g);
    let text: Vec<String> = found.iter().map(|c| describe(&g, c)).collect();
    assert!(
        found.is_empty(),
        "the modules under src/ import each other in circles; move the type a lower \
         module needs down to it (src/base, src/model):\n{}",
        text.join("\n\n")
    );
}

// The parser, on small sources.

fn targets(src: &str, module: &[&str]) -> Vec<(String, usize)> {
    let code = blank_comments_and_strings(src);
    let (code, _) = blank_test_modules(&code, src);
    let module: Vec<String> = module.iter().map(|s| s.to_string()).collect();
    crate_paths(&code, &module)
        .into_iter()
        .map(|u| (u.target, u.line))
        .collect()
}

#[test]
fn grouped_imports_give_each_member() {
    let src = "use crate::{a::b, c, d::{e, f}, self};\nuse crate::g::{h, i};\n";
    assert_eq!(
        targets(src, &["x"]),
        vec![
            ("a".into(), 1),
            ("c".into(), 1),
            ("d".into(), 1),
            ("g".into(), 2)
        ]
    );
}

#[test]
fn inline_paths_count_and_other_crates_do_not() {
    let src = "fn f() {\n    crate::faults::point(\"x\");\n    let _ = my_crate::y::z;\n    pub(crate) fn g() {}\n    crate :: spaced ::q();\n}\n";
    assert_eq!(
        targets(src, &["x"]),
        vec![("faults".into(), 2), ("spaced".into(), 5)]
    );
}

#[test]
fn comments_and_strings_are_not_paths() {
    let src = "// crate::a\n/// [`crate::b`]\n//! crate::c\n/* crate::d /* nested crate::e */ crate::f */\nlet s = \"crate::g\";\nlet r = r#\"crate::h \"# ;\nlet c = '\"'; let e = ('\\'', '\\n', '\\u{7b}', \"crate::no\"); use crate::i;\nfn l<'a>(x: &'a str) { crate::j::k(x) }\n";
    assert_eq!(targets(src, &["x"]), vec![("i".into(), 7), ("j".into(), 8)]);
}

#[test]
fn test_modules_are_left_out_however_their_strings_look() {
    let src = "use crate::kept;\n#[cfg(test)]\nmod tests {\n    use crate::gone;\n    const S: &str = \"}\";\n    const C: char = '}';\n    fn f() { let _ = crate::also_gone::x; }\n}\nfn after() { crate::after::y(); }\n";
    assert_eq!(
        targets(src, &["x"]),
        vec![("kept".into(), 1), ("after".into(), 9)]
    );
    let (_, files) = blank_test_modules(
        &blank_comments_and_strings(
            "#[cfg(test)]\n#[path = \"walk_tests.rs\"]\nmod tests;\n#[cfg(test)]\nmod more;\n",
        ),
        "#[cfg(test)]\n#[path = \"walk_tests.rs\"]\nmod tests;\n#[cfg(test)]\nmod more;\n",
    );
    assert_eq!(
        files,
        vec!["walk_tests.rs".to_string(), "more.rs".to_string()]
    );
}

#[test]
fn super_paths_that_reach_the_crate_root_count() {
    let src = "use super::sibling;\nuse super::super::other::x;\n";
    // In src/commit/state.rs, `super` is commit and `super::super` the root.
    assert_eq!(
        targets(src, &["commit", "state"]),
        vec![("other".into(), 2)]
    );
    // In src/commit/mod.rs (or src/report.rs), `super` is the root.
    assert_eq!(targets(src, &["commit"]), vec![("sibling".into(), 1)]);
}

#[test]
fn lib_re_exports_name_their_module() {
    let aliases = lib_aliases(
        "pub mod base;\n// pub use nope::x;\npub use base::{error, faults};\npub use model::schema;\npub use transform::files_table as ft;\n",
    );
    let want: BTreeMap<String, String> = [
        ("error", "base"),
        ("faults", "base"),
        ("schema", "model"),
        ("ft", "transform"),
    ]
    .into_iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect();
    assert_eq!(aliases, want);
}

#[test]
fn a_circle_is_found_and_shown_with_its_edges() {
    let mut g = Graph::new();
    let mut edge = |a: &str, b: &str, at: &str| {
        g.entry(a.into())
            .or_default()
            .entry(b.into())
            .or_default()
            .push(at.into());
    };
    edge("write", "transform", "src/write/mod.rs:254");
    edge("transform", "write", "src/transform/mod.rs:86");
    edge("report", "write", "src/report.rs:9");
    edge("commit", "catalog", "src/commit/mod.rs:43");
    let found = circles(&g);
    assert_eq!(
        found,
        vec![vec![
            "transform".to_string(),
            "write".into(),
            "transform".into()
        ]]
    );
    let text = describe(&g, &found[0]);
    assert!(
        text.contains("src/write/mod.rs:254") && text.contains("src/transform/mod.rs:86"),
        "{text}"
    );

    let mut longer = Graph::new();
    for (a, b) in [("a", "b"), ("b", "c"), ("c", "a"), ("c", "d")] {
        longer
            .entry(a.into())
            .or_default()
            .entry(b.into())
            .or_default()
            .push(format!("{a}.rs:1"));
    }
    assert_eq!(
        circles(&longer),
        vec![vec!["a".to_string(), "b".into(), "c".into(), "a".into()]]
    );
    let mut none = Graph::new();
    none.entry("a".into())
        .or_default()
        .entry("b".into())
        .or_default()
        .push("a.rs:1".into());
    assert!(circles(&none).is_empty());
}

//! The host's modules depend on each other in one direction: every top-level module of
//! `mixio-host` (a folder such as `capabilities/` is one module) has its layer in [`LAYERS`] and
//! uses no module of a layer above it, and no two modules import each other, read off their
//! `crate::` and `super::` paths. Items are imported from the module that defines them, not
//! through the crate root's re-exports, so every dependency is seen here.
//! `docs/architecture.md` draws the layers. The layers above the runtime are crates of their own
//! (`mixio-serve`, the HTTP trigger and the command line), so Cargo refuses an import of them.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The files of `dir`, recursively.
fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The code of `source` without comments, string and character literals (which may hold
/// `crate::` in doc links and messages).
fn code(source: &str) -> String {
    let chars: Vec<char> = source.chars().collect();
    let ident = |c: char| c.is_alphanumeric() || c == '_';
    let mut out = String::with_capacity(source.len());
    let mut i = 0;
    while i < chars.len() {
        let (c, next) = (chars[i], chars.get(i + 1).copied());
        let starts_token = i == 0 || !ident(chars[i - 1]);
        match c {
            '/' if next == Some('/') => {
                while i < chars.len() && chars[i] != '\n' {
                    i += 1;
                }
                continue;
            }
            '/' if next == Some('*') => {
                // Block comments nest.
                let mut depth = 0;
                while i < chars.len() {
                    if chars[i] == '/' && chars.get(i + 1) == Some(&'*') {
                        depth += 1;
                        i += 2;
                    } else if chars[i] == '*' && chars.get(i + 1) == Some(&'/') {
                        depth -= 1;
                        i += 2;
                        if depth == 0 {
                            break;
                        }
                    } else {
                        i += 1;
                    }
                }
                continue;
            }
            'r' | 'b'
                if starts_token && matches!(next, Some('#' | '"'))
                    || c == 'b' && starts_token && next == Some('r') =>
            {
                // A raw string `r"..."`, `r#"..."#` (or `br...`), or an identifier `r#type`.
                let mut j = i + 1;
                if chars[j] == 'r' {
                    j += 1;
                }
                let hashes = chars[j..].iter().take_while(|c| **c == '#').count();
                j += hashes;
                if chars.get(j) != Some(&'"') || (c == 'b' && chars[i + 1] != 'r') {
                    out.push(c);
                    i += 1;
                    continue;
                }
                j += 1;
                while j < chars.len()
                    && !(chars[j] == '"'
                        && chars[j + 1..].iter().take(hashes).filter(|c| **c == '#').count() == hashes)
                {
                    j += 1;
                }
                i = j + 1 + hashes;
                out.push_str("\"\"");
                continue;
            }
            '"' => {
                i += 1;
                while i < chars.len() && chars[i] != '"' {
                    i += if chars[i] == '\\' { 2 } else { 1 };
                }
                i += 1;
                out.push_str("\"\"");
                continue;
            }
            '\'' if chars.get(i + 2) == Some(&'\'') || next == Some('\\') => {
                // A character literal ('"', '\'', '\n'); a lifetime has no closing quote.
                let end = chars[i + 1..].iter().position(|c| *c == '\'').map_or(chars.len(), |p| i + 1 + p);
                let end = if next == Some('\\') && chars.get(i + 2) == Some(&'\'') { i + 3 } else { end };
                i = end + 1;
                out.push_str("' '");
                continue;
            }
            _ => out.push(c),
        }
        i += 1;
    }
    out
}

/// The module each path of `code` starts in: the first segment after `crate::`, or after as
/// many `super::` as climb out of `module` (the file's module path, e.g. `["capabilities",
/// "kv", "redis"]`) to the crate root. Braces of a `use` group count (`use crate::{a::X, b}`
/// names `a` and `b`).
fn crate_paths(code: &str, module: &[String]) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let ident = |s: &str| s.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect::<String>();
    let starts =
        |i: usize| !code[..i].ends_with(|c: char| c.is_alphanumeric() || c == '_' || c == '$' || c == ':');
    let mut roots = Vec::new();
    for (i, _) in code.match_indices("crate::") {
        if starts(i) {
            roots.push(&code[i + "crate::".len()..]);
        }
    }
    // Inline modules (`mod tests { .. }`): the spans of their bodies, for `super::` inside them.
    let mut inline = Vec::new();
    for (i, _) in code.match_indices("mod ") {
        let head = &code[i + 4..];
        let name = ident(head.trim_start());
        let after = head.trim_start()[name.len()..].trim_start();
        if !starts(i) || name.is_empty() || !after.starts_with('{') {
            continue;
        }
        let open = code.len() - after.len();
        let mut depth = 0;
        let close = code[open..]
            .char_indices()
            .find(|&(_, c)| {
                depth += match c {
                    '{' => 1,
                    '}' => -1,
                    _ => 0,
                };
                depth == 0
            })
            .map_or(code.len(), |(j, _)| open + j);
        inline.push(open..close);
    }
    for (i, _) in code.match_indices("super::") {
        if !starts(i) {
            continue;
        }
        let depth = module.len() + inline.iter().filter(|span| span.contains(&i)).count();
        let mut rest = &code[i..];
        let mut up = 0;
        while let Some(r) = rest.trim_start().strip_prefix("super::") {
            rest = r;
            up += 1;
        }
        if up >= depth {
            roots.push(rest);
        }
    }
    for rest in roots {
        let rest = rest.trim_start();
        if let Some(group) = rest.strip_prefix('{') {
            let mut depth = 0;
            let mut start = true;
            for (j, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => start = true,
                    c if c.is_whitespace() => {}
                    _ if start => {
                        names.insert(ident(&group[j..]));
                        start = false;
                    }
                    _ => {}
                }
            }
        } else {
            names.insert(ident(rest));
        }
    }
    names.remove("");
    names.remove("self");
    names
}

/// The layers, bottom first: a module may use modules of its own layer and the layers below.
/// `docs/architecture.md` describes them.
const LAYERS: &[&[&str]] = &[
    &["error", "metrics", "deadline", "progress", "stdio", "sqlite", "body", "task", "engine"],
    &["capabilities"],
    &["state"],
    &["blocking", "native"],
    &["runtime", "component", "host", "reuse"],
];

#[test]
fn the_host_modules_have_no_import_cycle() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let lib = std::fs::read_to_string(src.join("lib.rs")).unwrap();
    // The crate's modules, as lib.rs declares them (`mod x;`, `pub(crate) mod x;`, after any
    // attributes on the same line).
    let modules: BTreeSet<String> = code(&lib)
        .lines()
        .filter_map(|line| {
            let words: Vec<&str> = line.split_whitespace().skip_while(|w| w.starts_with("#[")).collect();
            let at = words.iter().position(|w| *w == "mod")?;
            let declared = words[..at].iter().all(|w| w.starts_with("pub"));
            let name = words.get(at + 1)?.strip_suffix(';')?;
            declared.then(|| name.to_string())
        })
        .collect();
    assert!(modules.contains("capabilities") && modules.contains("runtime"), "{modules:?}");

    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut through_root = Vec::new();
    for file in &files {
        let relative = file.strip_prefix(&src).unwrap();
        // The file's module path: `capabilities/kv/mod.rs` is `capabilities::kv`.
        let path: Vec<String> = relative
            .with_extension("")
            .components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .filter(|c| c != "mod")
            .collect();
        let module = path[0].clone();
        if !modules.contains(&module) {
            continue; // lib.rs, the crate's façade
        }
        for name in crate_paths(&code(&std::fs::read_to_string(file).unwrap()), &path) {
            if modules.contains(&name) {
                if name != module {
                    graph.entry(module.clone()).or_default().insert(name);
                }
            } else {
                through_root.push(format!("{}: crate::{name}", relative.display()));
            }
        }
    }
    assert!(
        through_root.is_empty(),
        "import these from the module that defines them, not through the crate root:\n{}",
        through_root.join("\n")
    );

    // Every module has its layer, and uses none above it.
    let layer = |m: &str| LAYERS.iter().position(|l| l.contains(&m));
    let unplaced: Vec<_> = modules.iter().filter(|m| layer(m).is_none()).collect();
    assert!(unplaced.is_empty(), "modules in no layer of LAYERS: {unplaced:?}");
    for (from, tos) in &graph {
        for to in tos {
            assert!(
                layer(to) <= layer(from),
                "`{from}` uses `{to}`, which is in a layer above it (see LAYERS and docs/architecture.md)"
            );
        }
    }

    // Depth-first search; a module met again while still on the path closes a cycle.
    fn visit<'a>(
        module: &'a str,
        graph: &'a BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<&'a str>,
        done: &mut BTreeSet<&'a str>,
    ) -> Option<String> {
        if let Some(start) = path.iter().position(|m| *m == module) {
            return Some(format!("{} -> {module}", path[start..].join(" -> ")));
        }
        if !done.insert(module) {
            return None;
        }
        path.push(module);
        for next in graph.get(module).into_iter().flatten() {
            if let Some(cycle) = visit(next, graph, path, done) {
                return Some(cycle);
            }
        }
        path.pop();
        None
    }
    let mut done = BTreeSet::new();
    for module in graph.keys() {
        if let Some(cycle) = visit(module, &graph, &mut Vec::new(), &mut done) {
            panic!("an import cycle between the host's modules: {cycle}\nthe graph: {graph:#?}");
        }
    }
}

#[test]
fn the_reader_sees_the_paths_of_code_only() {
    let source = r##"
        use crate::{a::X, b::{Y, Z}}; // crate::comment
        /* crate::block /* nested */ crate::still_block */
        let s = "crate::string \" crate::escaped"; let r = r#"crate::raw"#; let q = '"';
        fn f<'a>(x: &'a str) {} let c = crate::c::f();
        use super::super::up::W;
        mod tests { use super::not_up; use crate::in_tests; }
    "##;
    let names = crate_paths(&code(source), &["m".to_string()]);
    let expected: BTreeSet<String> = ["a", "b", "c", "up", "in_tests"].map(String::from).into();
    assert_eq!(names, expected);
}

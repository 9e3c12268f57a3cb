//! Import cycles between the files of a crate, found from their source text.
//!
//! Each `.rs` file under `src/` is one node (`src/a/b.rs` and `src/a/b/mod.rs` are module
//! `a::b`; `lib.rs`, or `main.rs` in a crate without a library, the root; with a library,
//! `main.rs` and `src/bin/` are other crates and left out). An edge goes from a file to the
//! file of every module it names through `crate::…` or `super::…` paths (in `use` items and in code), with
//! the longest module prefix that exists winning. `mod x;` declarations are not edges, and test
//! code is left out: files called `tests.rs` and everything from a `#[cfg(test)]` line on (the
//! house style puts test modules last). A strongly connected group of two or more files is a
//! cycle.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// A crate's module graph: module path → the module paths it names.
#[derive(Debug, Default)]
pub struct Graph {
    /// Edges, by module path (`""` is the crate root).
    pub edges: BTreeMap<String, BTreeSet<String>>,
    /// The file of each module.
    pub files: BTreeMap<String, PathBuf>,
}

/// The module path of `file` under `src`.
fn module_of(src: &Path, file: &Path) -> Option<String> {
    let rel = file.strip_prefix(src).ok()?;
    let mut parts: Vec<String> = rel.iter().map(|p| p.to_string_lossy().into_owned()).collect();
    let last = parts.pop()?;
    let stem = last.strip_suffix(".rs")?;
    if !(stem == "mod" || (parts.is_empty() && (stem == "lib" || stem == "main"))) {
        parts.push(stem.to_owned());
    }
    Some(parts.join("::"))
}

/// The code of a file that counts: without comments, string contents and test code.
fn code(text: &str) -> String {
    let mut out = String::new();
    for line in text.lines() {
        let t = line.trim();
        if t.starts_with("#[cfg(test)]") {
            break;
        }
        if t.starts_with("//") {
            continue;
        }
        // Drop string literals' contents, roughly: paths in messages are not imports.
        let mut in_str = false;
        let mut prev = ' ';
        for c in line.chars() {
            if c == '"' && prev != '\\' {
                in_str = !in_str;
            } else if !in_str {
                out.push(c);
            }
            prev = c;
        }
        out.push('\n');
    }
    out
}

/// Every path in `code` (`crate::…`, `super::…`, `self::…` or relative `child::…`), expanded
/// over `use` groups one level deep (`use crate::a::{b, c::d}` names `a::b` and `a::c::d`),
/// resolved against `module`. Paths into other crates resolve to nothing that exists here.
fn named_paths(module: &str, code: &str) -> Vec<String> {
    let mut out = Vec::new();
    let bytes: Vec<char> = code.chars().collect();
    let mut i = 0;
    while i < bytes.len() {
        let starts_word =
            i == 0 || !(bytes[i - 1].is_alphanumeric() || bytes[i - 1] == '_' || bytes[i - 1] == ':');
        let ident_start = starts_word && (bytes[i].is_alphabetic() || bytes[i] == '_');
        if ident_start && path_follows(&bytes[i..]) {
            let mut j = i;
            let mut path = String::new();
            while j < bytes.len() && (bytes[j].is_alphanumeric() || bytes[j] == '_' || bytes[j] == ':') {
                path.push(bytes[j]);
                j += 1;
            }
            let path = path.trim_end_matches(':').to_owned();
            let mut prefixes = vec![path.clone()];
            if bytes.get(j) == Some(&'{') {
                // A use group: each item is a path below `path`.
                let end = bytes[j..].iter().position(|c| *c == '}').map_or(bytes.len(), |p| j + p);
                let group: String = bytes[j + 1..end].iter().collect();
                prefixes = group
                    .split(',')
                    .map(|s| s.split_whitespace().next().unwrap_or("").trim_end_matches("::{"))
                    .filter(|s| !s.is_empty())
                    .map(|s| if s == "self" { path.clone() } else { format!("{path}::{s}") })
                    .collect();
                j = end;
            }
            for p in prefixes {
                if let Some(abs) = absolute(module, &p) {
                    out.push(abs);
                }
            }
            i = j.max(i + 1);
        } else {
            i += 1;
        }
    }
    out
}

/// True if `chars` start with an identifier followed by `::` (a path).
fn path_follows(chars: &[char]) -> bool {
    let n = chars.iter().take_while(|c| c.is_alphanumeric() || **c == '_').count();
    chars.get(n) == Some(&':') && chars.get(n + 1) == Some(&':')
}

/// `crate::a::b`, `super::super::x`, `self::y` or a relative `child::z` seen from `module`, as
/// a path from the crate root.
fn absolute(module: &str, path: &str) -> Option<String> {
    let mut parts: Vec<&str> = path.split("::").filter(|p| !p.is_empty()).collect();
    let mut base: Vec<&str> = if module.is_empty() { Vec::new() } else { module.split("::").collect() };
    match *parts.first()? {
        "crate" => {
            parts.remove(0);
            base.clear();
        }
        "super" => {
            while parts.first() == Some(&"super") {
                parts.remove(0);
                base.pop()?;
            }
        }
        "self" => {
            parts.remove(0);
        }
        _ => {}
    }
    base.extend(parts);
    Some(base.join("::"))
}

impl Graph {
    /// Reads every `.rs` file under `src`.
    ///
    /// # Errors
    /// If a directory or file cannot be read.
    pub fn read(src: &Path) -> std::io::Result<Graph> {
        let mut files = Vec::new();
        // With a library, `main.rs` and `bin/` are other crates that use it by name.
        let has_lib = src.join("lib.rs").is_file();
        let mut dirs = vec![src.to_owned()];
        while let Some(d) = dirs.pop() {
            for e in std::fs::read_dir(&d)? {
                let p = e?.path();
                if p.is_dir() {
                    if !(has_lib && p == src.join("bin")) {
                        dirs.push(p);
                    }
                } else if p.extension().is_some_and(|x| x == "rs")
                    && p.file_name().is_some_and(|n| n != "tests.rs")
                    && !(has_lib && p == src.join("main.rs"))
                {
                    files.push(p);
                }
            }
        }
        let mut g = Graph::default();
        for f in &files {
            if let Some(m) = module_of(src, f) {
                g.files.insert(m, f.clone());
            }
        }
        let mut texts = BTreeMap::new();
        for (module, file) in &g.files {
            texts.insert(module.clone(), code(&std::fs::read_to_string(file)?));
        }
        // `pub use path::Name;` (and groups): `module::Name` stands for `path::Name`, so a
        // path through a re-export leads to the file that defines the item.
        let mut reexports: BTreeMap<String, String> = BTreeMap::new();
        for (module, text) in &texts {
            for stmt in text.split(';').map(str::trim).filter_map(|s| s.strip_prefix("pub use ")) {
                let stmt = format!("{stmt};");
                for path in named_paths(module, &stmt) {
                    let name = path.rsplit("::").next().unwrap_or("").to_owned();
                    let at = if module.is_empty() { name } else { format!("{module}::{name}") };
                    if at != path {
                        reexports.insert(at, path);
                    }
                }
            }
        }
        for (module, text) in &texts {
            let mut to = BTreeSet::new();
            for path in named_paths(module, text) {
                let target = g.resolve(&path, &reexports);
                if let Some(t) = target.filter(|t| t != module) {
                    to.insert(t);
                }
            }
            g.edges.insert(module.clone(), to);
        }
        Ok(g)
    }

    /// The module that defines what `path` names: the longest existing module prefix, after
    /// following re-exports (a few hops at most).
    fn resolve(&self, path: &str, reexports: &BTreeMap<String, String>) -> Option<String> {
        let mut path = path.to_owned();
        for _ in 0..8 {
            let parts: Vec<&str> = path.split("::").collect();
            let (n, module) = (0..=parts.len())
                .rev()
                .map(|n| (n, parts[..n].join("::")))
                .find(|(_, m)| self.files.contains_key(m))?;
            let Some(next) = parts.get(n) else { return Some(module) };
            let at = if module.is_empty() { (*next).to_owned() } else { format!("{module}::{next}") };
            match reexports.get(&at) {
                Some(target) => {
                    let rest = parts[n + 1..].join("::");
                    path = if rest.is_empty() { target.clone() } else { format!("{target}::{rest}") };
                }
                None => return Some(module),
            }
        }
        None
    }

    /// The groups of two or more modules that import each other, directly or around a loop
    /// (Tarjan's strongly connected components), each sorted.
    #[must_use]
    pub fn cycles(&self) -> Vec<Vec<String>> {
        struct State<'a> {
            g: &'a Graph,
            index: BTreeMap<&'a str, usize>,
            low: BTreeMap<&'a str, usize>,
            stack: Vec<&'a str>,
            on: BTreeSet<&'a str>,
            next: usize,
            out: Vec<Vec<String>>,
        }
        fn visit<'a>(s: &mut State<'a>, v: &'a str) {
            s.index.insert(v, s.next);
            s.low.insert(v, s.next);
            s.next += 1;
            s.stack.push(v);
            s.on.insert(v);
            for w in s.g.edges.get(v).into_iter().flatten() {
                let w = w.as_str();
                if !s.index.contains_key(w) {
                    visit(s, w);
                    let lw = s.low[w];
                    let lv = s.low.get_mut(v).expect("visited");
                    *lv = (*lv).min(lw);
                } else if s.on.contains(w) {
                    let iw = s.index[w];
                    let lv = s.low.get_mut(v).expect("visited");
                    *lv = (*lv).min(iw);
                }
            }
            if s.low[v] == s.index[v] {
                let mut group = Vec::new();
                while let Some(w) = s.stack.pop() {
                    s.on.remove(w);
                    group.push(w.to_owned());
                    if w == v {
                        break;
                    }
                }
                if group.len() > 1 {
                    group.sort();
                    s.out.push(group);
                }
            }
        }
        let mut s = State {
            g: self,
            index: BTreeMap::new(),
            low: BTreeMap::new(),
            stack: Vec::new(),
            on: BTreeSet::new(),
            next: 0,
            out: Vec::new(),
        };
        for v in self.edges.keys() {
            if !s.index.contains_key(v.as_str()) {
                visit(&mut s, v);
            }
        }
        s.out.sort();
        s.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code_of(text: &str) -> String {
        code(text)
    }

    #[test]
    fn paths_resolve_against_the_module_and_groups_expand() {
        let code = code(
            "use crate::a::{b, c::D, self};\nuse super::x::Y;\nfn f() { crate::z::g(); }\n\
             // use crate::commented::Out;\nlet s = \"crate::in_string\";\n#[cfg(test)]\nuse crate::t;\n",
        );
        let mut got = named_paths("m::n", &code);
        got.sort();
        assert_eq!(got, ["a", "a::b", "a::c::D", "m::x::Y", "z::g"]);
        let mut got = named_paths(
            "m",
            &code_of("mod x;\npub use x::X;\nfn f() { self::y::g(); std::mem::drop(1); }\n"),
        );
        got.sort();
        assert_eq!(got, ["m::std::mem::drop", "m::x::X", "m::y::g"]);
        assert_eq!(absolute("", "crate::a"), Some("a".into()));
        assert_eq!(absolute("a::b", "super::super::c"), Some("c".into()));
        assert_eq!(absolute("a", "super::super::c"), None);
    }

    #[test]
    fn a_cycle_of_files_is_found_and_a_tree_is_not() {
        let dir = tempfile_dir();
        let src = dir.join("src");
        std::fs::create_dir_all(src.join("out")).unwrap();
        std::fs::write(src.join("lib.rs"), "mod a; mod b; mod out;\n").unwrap();
        std::fs::write(src.join("a.rs"), "use crate::b::B;\npub struct A;\n").unwrap();
        std::fs::write(src.join("b.rs"), "pub struct B;\n").unwrap();
        std::fs::write(src.join("out/mod.rs"), "mod x;\npub use x::X;\n").unwrap();
        std::fs::write(src.join("out/x.rs"), "pub struct X(crate::a::A);\n").unwrap();
        std::fs::write(src.join("out/tests.rs"), "use super::*; use crate::out::x;\n").unwrap();
        let g = Graph::read(&src).unwrap();
        assert_eq!(g.edges["out"], BTreeSet::from(["out::x".to_owned()]));
        assert!(g.cycles().is_empty(), "{:?}", g.edges);
        std::fs::write(src.join("b.rs"), "pub struct B(crate::out::X);\n").unwrap();
        let g = Graph::read(&src).unwrap();
        assert_eq!(g.cycles(), [["a", "b", "out::x"]], "out only re-exports x");
        // A root that re-exports an item: a module naming `crate::Item` depends on the module
        // that defines it, not on the root.
        std::fs::write(src.join("b.rs"), "pub struct B;\n").unwrap();
        std::fs::write(src.join("lib.rs"), "mod a; mod b; mod out;\npub use b::B as Bee;\npub use b::B;\n")
            .unwrap();
        std::fs::write(src.join("a.rs"), "use crate::B;\npub struct A;\n").unwrap();
        let g = Graph::read(&src).unwrap();
        assert_eq!(g.edges["a"], BTreeSet::from(["b".to_owned()]));
        assert!(g.cycles().is_empty(), "{:?}", g.edges);
        // Beside a library, `main.rs` and `bin/` are crates of their own.
        std::fs::create_dir_all(src.join("bin")).unwrap();
        std::fs::write(src.join("main.rs"), "fn main() { crate::run(); }\n").unwrap();
        std::fs::write(src.join("bin/tool.rs"), "use crate::a::A;\nfn main() {}\n").unwrap();
        let g = Graph::read(&src).unwrap();
        assert_eq!(g.files.keys().collect::<Vec<_>>(), ["", "a", "b", "out", "out::x"]);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    fn tempfile_dir() -> PathBuf {
        let d = std::env::temp_dir().join(format!("cycles-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }
}

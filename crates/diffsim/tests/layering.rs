//! The library's layers, checked from its source: every `use crate::...` and every inline
//! `crate::module::...` path in non-test code must point at the same layer or one below. The
//! table below is the one place that says which module sits where (see DESIGN.md,
//! "Layering").
//!
//! Internal code names the module that defines what it uses (`crate::problem::Model`), never
//! the crate root's re-exports (`crate::Model`), which would hide a dependency's direction:
//! a second test fails on those. Test code
//! (files named `*test*` and everything after a file's first `#[cfg(test)]`) may import
//! anything: tests use the model zoo. This is a separate test binary because it compiles in
//! a second (it uses none of the library's generic code).

use std::collections::BTreeSet;
use std::path::Path;

/// Each top-level module of `src/` and its layer, lowest first. A module may import from
/// modules of its own layer or below.
const LAYERS: &[(&str, u32)] = &[
    // Numbers and plumbing.
    ("error", 0),
    ("scalar", 0),
    ("blocks", 0),
    // The model contract.
    ("problem", 1),
    ("mass", 1),
    ("event", 1),
    ("capabilities", 1),
    // Networks and optimizers need only the numbers (`nn` uses the dual numbers of `ad`).
    ("nn", 2),
    ("optim", 2),
    // Derivatives of a model: duals, the tape, Jacobians, VJPs, sparsity.
    ("ad", 2),
    // The model zoo needs only the contract.
    ("models", 2),
    ("solve", 3),
    ("ensemble", 4),
    ("sensitivity", 4),
    ("fit", 5),
    ("surrogate", 5),
];

/// Modules that may import from layer 0 only, whatever their own layer: the networks and
/// the optimizers are usable without anything about models or solvers.
const GROUND_ONLY: &[&str] = &["nn", "optim"];

/// Names the crate root re-exports, and the module that defines each.
const ROOT_REEXPORTS: &[(&str, &str)] = &[
    ("DiffsimError", "error"),
    ("Result", "error"),
    ("MassMatrix", "mass"),
    ("Crossing", "event"),
    ("Event", "event"),
    ("Model", "problem"),
    ("Problem", "problem"),
    ("Scalar", "scalar"),
    ("solve", "solve"),
    ("solve_explicit", "solve"),
    ("solve_with_callback", "solve"),
    ("Algorithm", "solve"),
    ("ErrorNorm", "solve"),
    ("JacobianMethod", "solve"),
    ("RetCode", "solve"),
    ("SaveAt", "solve"),
    ("Solution", "solve"),
    ("SolveOptions", "solve"),
    ("Stats", "solve"),
    ("Tolerance", "solve"),
];

/// Upward imports that are tolerated for now, each to be removed; the test fails on any
/// other, and on any of these that is gone (so the list shrinks with the code). Empty since
/// the zoo stopped naming a solver for its models (issue 18).
const KNOWN_EXCEPTIONS: &[(&str, &str)] = &[];

fn layer(module: &str) -> Option<u32> {
    LAYERS.iter().find(|(m, _)| *m == module).map(|&(_, l)| l)
}

/// The top-level items of a `use crate::...;` statement, trimmed: `use crate::{a::b, C,
/// d::{e, f}};` has `a::b`, `C` and `d::{e, f}`; `use crate::a::b;` has `a::b`.
fn use_items(statement: &str) -> Vec<&str> {
    let path = statement.trim_start_matches("use crate::").trim_end_matches(';').trim();
    let Some(inner) = path.strip_prefix('{') else { return vec![path] };
    let inner = inner.strip_suffix('}').unwrap_or(inner);
    let (mut depth, mut start, mut items) = (0, 0, Vec::new());
    for (i, c) in inner.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                items.push(inner[start..i].trim());
                start = i + 1;
            }
            _ => {}
        }
    }
    items.push(inner[start..].trim());
    items
}

/// The top-level modules a `use crate::...;` statement names (root re-exports resolved).
fn imported_modules(statement: &str) -> Vec<String> {
    use_items(statement)
        .into_iter()
        .map(|s| s.split("::").next().unwrap_or("").trim())
        .map(|s| s.split(" as ").next().unwrap_or(s).trim())
        .filter(|s| !s.is_empty() && *s != "self")
        .map(|s| ROOT_REEXPORTS.iter().find(|(n, _)| *n == s).map_or(s, |&(_, m)| m).to_string())
        .collect()
}

/// The non-test lines of `source`, trimmed, comments left out: an item under
/// `#[cfg(test)]` is skipped, and a `#[cfg(test)] mod name {` block ends the scan (test
/// modules close their files).
fn code_lines(source: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut skip_next = false;
    for line in source.lines() {
        let line = line.trim();
        if line == "#[cfg(test)]" {
            skip_next = true;
            continue;
        }
        if skip_next && !line.is_empty() {
            skip_next = false;
            if line.starts_with("mod ") && line.ends_with('{') {
                break;
            }
            continue;
        }
        if !line.starts_with("//") {
            out.push(line);
        }
    }
    out
}

/// The first segment after each `crate::` of the lines that are not `use` statements
/// (`crate::ad::Dual::constant(x)` names `ad`).
fn inline_paths(lines: &[&str]) -> Vec<String> {
    let mut out = Vec::new();
    let mut in_use = false;
    for line in lines {
        if line.starts_with("use crate::") || line.starts_with("pub(crate) use crate::") || in_use {
            in_use = !line.ends_with(';');
            continue;
        }
        for (at, _) in line.match_indices("crate::") {
            let rest = &line[at + "crate::".len()..];
            let name: String = rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
            if !name.is_empty() {
                out.push(name);
            }
        }
    }
    out
}

/// Every `use crate::...;` statement (joined across lines) of the non-test part of `source`.
fn use_statements(source: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current: Option<String> = None;
    for line in code_lines(source) {
        if let Some(cur) = current.as_mut() {
            cur.push_str(line);
        } else if line.starts_with("use crate::") || line.starts_with("pub(crate) use crate::") {
            current = Some(line.trim_start_matches("pub(crate) ").to_string());
        }
        if current.as_ref().is_some_and(|c| c.ends_with(';')) {
            out.push(current.take().unwrap_or_default());
        }
    }
    out
}

/// What the scan of `src/` found: the edges between modules `(from, to, file)`, and the
/// places that name a root re-export instead of its module `(file, name)`.
#[derive(Default)]
struct Scan {
    edges: BTreeSet<(String, String, String)>,
    through_root: BTreeSet<(String, String)>,
}

/// The names a `use crate::...;` statement takes from the crate root itself.
fn root_names(statement: &str) -> Vec<String> {
    use_items(statement)
        .into_iter()
        .map(|s| s.split(" as ").next().unwrap_or(s).trim())
        .filter(|s| !s.contains("::") && is_root_reexport(s))
        .map(str::to_string)
        .collect()
}

/// A name the crate root re-exports from a module of another name (`solve` is both a module
/// and the function it re-exports).
fn is_root_reexport(name: &str) -> bool {
    ROOT_REEXPORTS.iter().any(|&(n, m)| n == name && n != m)
}

fn visit(dir: &Path, src: &Path, scan: &mut Scan) {
    let mut entries: Vec<_> = std::fs::read_dir(dir).expect("src is readable").flatten().collect();
    entries.sort_by_key(|e| e.path());
    for entry in entries {
        let path = entry.path();
        if path.is_dir() {
            visit(&path, src, scan);
            continue;
        }
        let rel = path.strip_prefix(src).unwrap_or(&path).to_string_lossy().to_string();
        let name = path.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
        if !rel.ends_with(".rs") || rel == "lib.rs" || name.contains("test") {
            continue;
        }
        let module = rel.split('/').next().unwrap_or("").trim_end_matches(".rs").to_string();
        let source = std::fs::read_to_string(&path).expect("a source file is readable");
        for statement in use_statements(&source) {
            for name in root_names(&statement) {
                scan.through_root.insert((rel.clone(), name));
            }
            for target in imported_modules(&statement) {
                if target != module {
                    scan.edges.insert((module.clone(), target, rel.clone()));
                }
            }
        }
        for name in inline_paths(&code_lines(&source)) {
            if is_root_reexport(&name) {
                scan.through_root.insert((rel.clone(), name.clone()));
            }
            let target = ROOT_REEXPORTS.iter().find(|(n, _)| *n == name).map_or(name.as_str(), |&(_, m)| m);
            if target != module && target != "self" {
                scan.edges.insert((module.clone(), target.to_string(), rel.clone()));
            }
        }
    }
}

fn scan() -> Scan {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut scan = Scan::default();
    visit(&src, &src, &mut scan);
    scan
}

#[test]
fn internal_code_names_the_defining_module() {
    let scan = scan();
    let found: Vec<String> = scan
        .through_root
        .iter()
        .map(|(file, name)| {
            let module = ROOT_REEXPORTS.iter().find(|(n, _)| n == name).map_or("?", |&(_, m)| m);
            format!("{file}: crate::{name} (write crate::{module}::{name})")
        })
        .collect();
    assert!(found.is_empty(), "imports through the crate root's re-exports:\n{}", found.join("\n"));
}

#[test]
fn every_import_points_at_the_same_layer_or_below() {
    let edges = scan().edges;
    assert!(edges.len() > 30, "the scan found too few imports to be reading the source: {edges:?}");
    let mut bad = Vec::new();
    let mut seen_exceptions = BTreeSet::new();
    for (from, to, file) in &edges {
        let (Some(lf), Some(lt)) = (layer(from), layer(to)) else {
            bad.push(format!("{file}: {from} -> {to}: a module missing from LAYERS"));
            continue;
        };
        if GROUND_ONLY.contains(&from.as_str()) && lt > 0 {
            bad.push(format!("{file}: {from} needs only the ground (layer 0) but imports {to} (layer {lt})"));
            continue;
        }
        if lt > lf {
            if KNOWN_EXCEPTIONS.contains(&(from.as_str(), to.as_str())) {
                seen_exceptions.insert((from.clone(), to.clone()));
            } else {
                bad.push(format!("{file}: {from} (layer {lf}) imports {to} (layer {lt})"));
            }
        }
    }
    assert!(bad.is_empty(), "imports against the layering:\n{}", bad.join("\n"));
    for (from, to) in KNOWN_EXCEPTIONS {
        assert!(
            seen_exceptions.contains(&(from.to_string(), to.to_string())),
            "{from} -> {to} no longer happens: remove it from KNOWN_EXCEPTIONS"
        );
    }
}

#[test]
fn the_import_parser_reads_every_form() {
    assert_eq!(imported_modules("use crate::solve::driver;"), ["solve"]);
    assert_eq!(imported_modules("use crate::{Model, ad::Dual, nn::{Mlp, Init}};"), ["problem", "ad", "nn"]);
    assert_eq!(imported_modules("use crate::{self as c, Scalar as S};"), ["scalar"]);
    let src = "use crate::error::Result;\nuse crate::{\n    solve,\n    Model,\n};\n#[cfg(test)]\nuse crate::models::Lorenz;\n\
               use crate::ad::Dual;\n#[cfg(test)]\nmod tests {\n    use crate::fit::Fit;\n}\n";
    assert_eq!(
        use_statements(src),
        ["use crate::error::Result;", "use crate::{solve,Model,};", "use crate::ad::Dual;"]
    );
    assert_eq!(root_names("use crate::{solve, Model, ad::Dual, Scalar as S};"), ["Model", "Scalar"]);
    assert_eq!(root_names("use crate::problem::Model;"), Vec::<String>::new());
    let code = "let x = crate::ad::Dual::constant(1.0);\nuse crate::{\n    crate_like,\n};\nf::<crate::Scalar>();";
    assert_eq!(inline_paths(&code.lines().collect::<Vec<_>>()), ["ad", "Scalar"]);
}

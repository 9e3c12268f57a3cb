//! `import-cycles CRATE_DIR…`: lists the import cycles between the files of each crate's
//! `src/` ([`testkit::cycles`]); exits 1 if there is one, 2 on bad input. `make check` runs it
//! on every crate of the workspace.

use std::path::Path;
use std::process::ExitCode;

fn main() -> ExitCode {
    let dirs: Vec<String> = std::env::args().skip(1).collect();
    if dirs.is_empty() {
        eprintln!("usage: import-cycles CRATE_DIR… (each with a src/ folder)");
        return ExitCode::from(2);
    }
    let mut found = 0;
    for dir in &dirs {
        let src = Path::new(dir).join("src");
        let graph = match testkit::cycles::Graph::read(&src) {
            Ok(g) => g,
            Err(e) => {
                eprintln!("import-cycles: cannot read {}: {e}", src.display());
                return ExitCode::from(2);
            }
        };
        for cycle in graph.cycles() {
            found += 1;
            println!("{dir}: files that import each other: {}", cycle.join(" ⇄ "));
            for m in &cycle {
                let names: Vec<&str> =
                    graph.edges[m].iter().filter(|t| cycle.contains(t)).map(String::as_str).collect();
                println!("  {} → {}", if m.is_empty() { "(root)" } else { m }, names.join(", "));
            }
        }
    }
    if found == 0 {
        println!("no import cycles in {}", dirs.join(", "));
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

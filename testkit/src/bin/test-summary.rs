//! `test-summary LOG`: totals, failures and every test that did not run (with its reason) of a
//! `cargo test --workspace` log. `make test` runs it after the tests; it always exits 0 when
//! the log could be read (the tests' own exit status is what `make test` returns).

fn main() -> std::process::ExitCode {
    let Some(path) = std::env::args_os().nth(1) else {
        eprintln!("usage: test-summary LOG (the output of cargo test, stdout and stderr together)");
        return std::process::ExitCode::from(2);
    };
    match std::fs::read(&path) {
        Ok(bytes) => {
            print!("{}", testkit::summary::parse(&String::from_utf8_lossy(&bytes)).render());
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("test-summary: cannot read {}: {e}", std::path::Path::new(&path).display());
            std::process::ExitCode::from(1)
        }
    }
}

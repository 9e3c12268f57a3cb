//! What shells and `man` know of the command line: completion scripts and man pages generated
//! from [`Cli`]'s own definition, so they name every subcommand and flag the parser accepts and
//! cannot drift from it (`hls-swarm completions SHELL`, `hls-swarm manpage [--out DIR]`).

use std::path::{Path, PathBuf};

use clap::CommandFactory;
use clap_complete::Shell;

use crate::control::cli::Cli;

/// The name the scripts complete and the pages are titled with.
pub const BIN: &str = "hls-swarm";

/// The completion script of `hls-swarm` for `shell`.
#[must_use]
pub fn completions(shell: Shell) -> Vec<u8> {
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), BIN, &mut script);
    if shell == Shell::Bash {
        script = bash_arms_fixed(&script).into_bytes();
    }
    script
}

/// clap_complete's bash script (4.6.12) tracks the words typed as `hls__swarm__subcmd__merge`
/// but spells the `case` arm of that state `hls__subcmd__swarm__subcmd__merge)`, taking the
/// binary's hyphen for a subcommand separator: no arm matches and no flag of a subcommand
/// completes (clap-rs/clap#6421). Spelling the arms as the words are tracked fixes it; once
/// clap_complete does, there is nothing to replace.
fn bash_arms_fixed(script: &[u8]) -> String {
    let script = String::from_utf8_lossy(script);
    let wrong = format!("{}__subcmd__", BIN.replace('-', "__subcmd__"));
    let right = format!("{}__subcmd__", BIN.replace('-', "__"));
    script.replace(&wrong, &right)
}

/// One man page: its file name (`hls-swarm-merge.1`) and its roff source.
#[derive(Debug, Clone)]
pub struct Page {
    /// `hls-swarm.1` for the command, `hls-swarm-SUBCOMMAND.1` for each subcommand.
    pub file_name: String,
    /// The page, roff.
    pub roff: Vec<u8>,
}

/// A man page could not be written.
#[derive(Debug, thiserror::Error)]
#[error("cannot write {path}")]
pub struct WriteError {
    /// The file (or the directory it goes in).
    pub path: PathBuf,
    /// Why.
    #[source]
    pub source: std::io::Error,
}

/// Every man page, section 1: `hls-swarm.1` first (its SUBCOMMANDS section refers to the
/// others), then one per subcommand that is not hidden, sorted by name. No `help` subcommand:
/// `man` is the help there.
///
/// # Errors
/// Only what a renderer writing into memory could report.
pub fn man_pages() -> std::io::Result<Vec<Page>> {
    let mut pages = Vec::new();
    collect(&man_command(), &mut pages)?;
    if let Some(subcommands) = pages.get_mut(1..) {
        subcommands.sort_by(|a, b| a.file_name.cmp(&b.file_name));
    }
    Ok(pages)
}

/// The command's own page, `hls-swarm.1`; its SUBCOMMANDS section refers to the others.
///
/// # Errors
/// Only what a renderer writing into memory could report.
pub fn man_page() -> std::io::Result<Vec<u8>> {
    let mut roff = Vec::new();
    page(man_command()).render(&mut roff)?;
    Ok(roff)
}

/// The command as the pages describe it: built (so subcommands know their full names), without
/// the `help` subcommand.
fn man_command() -> clap::Command {
    let mut cmd = Cli::command().disable_help_subcommand(true);
    cmd.build();
    cmd
}

/// `cmd`'s page, its footer naming the program and version (clap_mangen names a subcommand
/// alone there).
fn page(cmd: clap::Command) -> clap_mangen::Man {
    clap_mangen::Man::new(cmd).source(format!("{BIN} {}", env!("CARGO_PKG_VERSION")))
}

/// Renders `cmd`'s page, then its subcommands' pages, depth first.
fn collect(cmd: &clap::Command, pages: &mut Vec<Page>) -> std::io::Result<()> {
    let man = page(cmd.clone());
    let mut roff = Vec::new();
    man.render(&mut roff)?;
    pages.push(Page { file_name: man.get_filename(), roff });
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        collect(sub, pages)?;
    }
    Ok(())
}

/// Writes every page of [`man_pages`] into `dir` (created if missing, as packagers' `man1`
/// directories may be); the paths written, in that order.
///
/// # Errors
/// [`WriteError`] naming the directory or the file that could not be written.
pub fn write_man_pages(dir: &Path) -> Result<Vec<PathBuf>, WriteError> {
    std::fs::create_dir_all(dir).map_err(|source| WriteError { path: dir.to_owned(), source })?;
    let pages = man_pages().map_err(|source| WriteError { path: dir.to_owned(), source })?;
    pages
        .into_iter()
        .map(|page| {
            let path = dir.join(&page.file_name);
            std::fs::write(&path, &page.roff).map_err(|source| WriteError { path: path.clone(), source })?;
            Ok(path)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_page_comes_first_and_every_subcommand_has_one() {
        let pages = man_pages().unwrap();
        let names: Vec<&str> = pages.iter().map(|p| p.file_name.as_str()).collect();
        assert_eq!(names[0], "hls-swarm.1", "{names:?}");
        for sub in Cli::command().get_subcommands() {
            let file = format!("hls-swarm-{}.1", sub.get_name());
            assert!(names.contains(&file.as_str()), "no {file}: {names:?}");
        }
        assert!(!names.contains(&"hls-swarm-help.1"), "{names:?}");
        assert_eq!(pages[0].roff, man_page().unwrap());
    }

    #[test]
    fn completions_name_the_binary() {
        for shell in [Shell::Bash, Shell::Zsh, Shell::Fish, Shell::Elvish, Shell::PowerShell] {
            let script = String::from_utf8(completions(shell)).unwrap();
            assert!(script.contains("hls-swarm") && script.contains("merge"), "{shell}");
        }
    }

    #[test]
    fn bash_case_arms_are_spelled_as_the_state_is_tracked() {
        let script = String::from_utf8(completions(Shell::Bash)).unwrap();
        assert!(script.contains("cmd=\"hls__swarm__subcmd__merge\""), "{script}");
        assert!(script.contains("\n        hls__swarm__subcmd__merge)\n"), "{script}");
        assert!(!script.contains("hls__subcmd__swarm"), "{script}");
    }

    #[test]
    fn pages_are_written_into_a_new_directory() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("share/man/man1");
        let written = write_man_pages(&out).unwrap();
        assert_eq!(written[0], out.join("hls-swarm.1"));
        for path in &written {
            assert!(std::fs::metadata(path).unwrap().len() > 100, "{}", path.display());
        }
        let blocked = dir.path().join("file");
        std::fs::write(&blocked, "").unwrap();
        let err = write_man_pages(&blocked.join("man1")).unwrap_err();
        assert_eq!(err.path, blocked.join("man1"));
    }
}

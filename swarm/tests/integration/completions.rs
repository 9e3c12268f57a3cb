//! `hls-swarm completions SHELL` and `hls-swarm manpage`, run as the binary: every subcommand
//! and every long flag the parser knows (read from clap's own `Command`, so a new flag is checked
//! without touching this file) is in each shell's script, in the part for its subcommand, and
//! has an entry on its man page; the shells themselves accept the scripts.

use std::path::Path;

use clap::CommandFactory;
use swarm::control::cli::Cli;

use crate::common::*;

/// A subcommand's name (`None`: the command itself) and the long flags of its that are not
/// hidden, `--help` and `--version` included.
type Flags = Vec<(Option<String>, Vec<String>)>;

/// The command as the user meets it (built: with `--help`, `--version`), without clap's `help`
/// subcommand, which is only a word to complete and has no page.
fn flags() -> Flags {
    let mut cmd = Cli::command().disable_help_subcommand(true);
    cmd.build();
    let longs = |c: &clap::Command| -> Vec<String> {
        c.get_arguments()
            .filter(|a| !a.is_hide_set())
            .filter_map(|a| a.get_long())
            .map(str::to_owned)
            .collect()
    };
    let mut all = vec![(None, longs(&cmd))];
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        // The sections below are found one level deep; a nested subcommand needs them extended.
        assert!(
            sub.get_subcommands().next().is_none(),
            "{} has subcommands: extend section()",
            sub.get_name()
        );
        all.push((Some(sub.get_name().to_owned()), longs(sub)));
    }
    assert!(all.len() >= 4 && all[0].1.len() >= 50, "too few subcommands or flags found: {all:?}");
    all
}

/// The part of the zsh script that completes `sub`'s flags (the command's own for `None`), as
/// clap_complete lays it out: the command's `_arguments` before `case $state`, a subcommand's
/// in its `(name)` arm. (zsh cannot complete outside an interactive shell, so the layout is
/// read instead.)
fn zsh_section(script: &str, sub: Option<&str>) -> String {
    match sub {
        None => script.split("case $state in").next().unwrap_or_default().to_owned(),
        Some(s) => {
            let arm = format!("({s})");
            let body: Vec<&str> =
                script.lines().skip_while(|l| l.trim() != arm).take_while(|l| l.trim() != ";;").collect();
            assert!(!body.is_empty(), "zsh: no ({s}) arm");
            body.join("\n")
        }
    }
}

/// Checks that `completes(sub, "--")` offers every long flag of each (sub)command, and that
/// `completes(None, "")` offers every subcommand; the missing ones, named.
fn missing_from(mut completes: impl FnMut(Option<&str>, &str) -> Vec<String>) -> Vec<String> {
    let all = flags();
    let mut missing = Vec::new();
    let top = completes(None, "");
    for (sub, longs) in &all {
        if let Some(s) = sub {
            if !top.contains(s) {
                missing.push(format!("subcommand {s}"));
            }
        }
        let offered = completes(sub.as_deref(), "--");
        for long in longs {
            if !offered.contains(&format!("--{long}")) {
                missing.push(format!("{} --{long}", sub.as_deref().unwrap_or("hls-swarm")));
            }
        }
    }
    missing
}

fn completion_script(shell: &str) -> String {
    // Containers set the URL in the environment: that must not stand in the subcommand's way.
    let out = swarm()
        .args(["completions", shell])
        .env("HLS_SWARM_URL", "http://127.0.0.1:9/unused.m3u8")
        .output()
        .expect("hls-swarm runs");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(out.stderr.is_empty(), "{}", text(&out));
    String::from_utf8(out.stdout).expect("UTF-8 script")
}

/// `shell -n FILE` (parse only) accepts the script.
fn assert_parses(shell: &Path, file: &Path) {
    let out = std::process::Command::new(shell).arg("-n").arg(file).output().expect("the shell runs");
    assert!(out.status.success(), "{} -n rejects the script: {}", shell.display(), text(&out));
}

/// Writes `script` to a file in `dir`.
fn script_file(dir: &tempfile::TempDir, script: &str) -> std::path::PathBuf {
    let file = dir.path().join("hls-swarm.completion");
    std::fs::write(&file, script).expect("write the script");
    file
}

/// The words typed: the command, the subcommand if any, and the word being completed.
fn typed(sub: Option<&str>, cur: &str) -> Vec<String> {
    ["hls-swarm"].into_iter().chain(sub).chain([cur]).map(str::to_owned).collect()
}

#[testkit::test]
fn completions_bash_complete_every_subcommand_and_flag() {
    let script = completion_script("bash");
    let dir = tempfile::tempdir().expect("temp dir");
    let file = script_file(&dir, &script);
    // bash is what the Makefile and scripts/ run: always here.
    assert_parses(Path::new("bash"), &file);
    // What bash's programmable completion does on Tab: the function the script registers for
    // hls-swarm, called with the words typed so far; it leaves the candidates in COMPREPLY.
    let tab = r#"source "$1"; shift
        f=$(complete -p hls-swarm | sed -E 's/.* -F ([^ ]+) .*/\1/')
        COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1))
        "$f" hls-swarm "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD - 1]}"
        printf '%s\n' "${COMPREPLY[@]}""#;
    let missing = missing_from(|sub, cur| {
        let out = std::process::Command::new("bash")
            .args(["-c", tab, "bash"])
            .arg(&file)
            .args(typed(sub, cur))
            .output()
            .expect("bash runs");
        assert!(out.status.success(), "{}", text(&out));
        String::from_utf8_lossy(&out.stdout).lines().map(str::to_owned).collect()
    });
    assert!(missing.is_empty(), "bash does not complete: {missing:?}");
}

#[testkit::test]
fn completions_fish_complete_every_subcommand_and_flag() -> testkit::Outcome {
    let script = completion_script("fish");
    let fish = testkit::need::program("fish")?;
    let dir = tempfile::tempdir().expect("temp dir");
    let file = script_file(&dir, &script);
    assert_parses(&fish, &file);
    // fish completes a command line on request: `complete -C LINE` prints `candidate\tdescription`.
    let missing = missing_from(|sub, cur| {
        let out = std::process::Command::new(&fish)
            .args(["--no-config", "-c", "source $argv[1]; complete -C $argv[2]"])
            .arg(&file)
            .arg(typed(sub, cur).join(" "))
            .output()
            .expect("fish runs");
        assert!(out.status.success(), "{}", text(&out));
        let stdout = String::from_utf8_lossy(&out.stdout);
        stdout.lines().map(|l| l.split('\t').next().unwrap_or_default().to_owned()).collect()
    });
    assert!(missing.is_empty(), "fish does not complete: {missing:?}");
    Ok(())
}

#[testkit::test]
fn completions_zsh_name_every_subcommand_and_flag_and_zsh_parses_them() -> testkit::Outcome {
    let script = completion_script("zsh");
    assert!(script.starts_with("#compdef hls-swarm"), "{script}");
    let missing = missing_from(|sub, cur| {
        // The words of each spec before its `[description]`: `'(--check)*--report=[…]'` offers
        // `--report` (and names `--check`, which it excludes).
        let part = if cur.is_empty() { script.clone() } else { zsh_section(&script, sub) };
        let word = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
        let specs = part.lines().map(|l| l.split('[').next().unwrap_or_default());
        specs.flat_map(|l| l.split(|c: char| !word(c))).filter(|w| !w.is_empty()).map(str::to_owned).collect()
    });
    assert!(missing.is_empty(), "zsh completions lack: {missing:?}");
    let zsh = testkit::need::program("zsh")?;
    let dir = tempfile::tempdir().expect("temp dir");
    assert_parses(&zsh, &script_file(&dir, &script));
    Ok(())
}

#[testkit::test]
fn completions_for_every_shell_clap_knows_and_an_unknown_one_is_a_usage_error() {
    for shell in ["elvish", "powershell"] {
        assert!(completion_script(shell).contains("hls-swarm"), "{shell}");
    }
    let out = run_swarm(&["completions", "tcsh"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("'tcsh'") && err.contains("bash") && err.contains("zsh"), "{err}");
    assert!(out.stdout.is_empty(), "{}", text(&out));
    let out = run_swarm(&["completions"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
}

/// Roff's spelling of `--name`: every `-` escaped.
fn roff_flag(long: &str) -> String {
    format!("\\fB\\-\\-{}\\fR", long.replace('-', "\\-"))
}

/// The entries of a page's option lists: the line after each `.TP`.
fn entries(page: &str) -> Vec<&str> {
    let lines: Vec<&str> = page.lines().collect();
    lines.windows(2).filter(|w| w[0] == ".TP").map(|w| w[1]).collect()
}

#[testkit::test]
fn manpage_out_writes_a_page_per_subcommand_with_an_entry_for_every_flag() {
    let dir = tempfile::tempdir().expect("temp dir");
    let man1 = dir.path().join("share/man/man1");
    let out = run_swarm(&["manpage", "--out", man1.to_str().expect("UTF-8 path")]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let listed: Vec<String> = String::from_utf8_lossy(&out.stdout).lines().map(str::to_owned).collect();

    let all = flags();
    let top = std::fs::read_to_string(man1.join("hls-swarm.1")).expect("hls-swarm.1");
    let mut missing = Vec::new();
    for (sub, longs) in &all {
        let name = sub.as_ref().map_or("hls-swarm".to_owned(), |s| format!("hls-swarm-{s}"));
        let path = man1.join(format!("{name}.1"));
        assert!(listed.contains(&path.display().to_string()), "{} not listed: {listed:?}", path.display());
        let page = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert!(page.contains(&format!(".TH {name} 1")), "{name}: {page}");
        if sub.is_some() {
            // The command's page refers to it in its SUBCOMMANDS section.
            let reference = format!("{}(1)", name.replace('-', "\\-"));
            assert!(top.contains(&reference), "hls-swarm.1 does not name {reference}");
        }
        let entries = entries(&page);
        for long in longs {
            if !entries.iter().any(|e| e.contains(&roff_flag(long))) {
                missing.push(format!("{name}.1: --{long}"));
            }
        }
    }
    assert!(missing.is_empty(), "man pages lack entries: {missing:?}");
    assert_eq!(listed.len(), all.len(), "{listed:?}");
    // Nothing else was written (no page for clap's `help`).
    assert_eq!(std::fs::read_dir(&man1).expect("read man1").count(), all.len());

    // Without --out, the command's page on stdout: the same page.
    let out = run_swarm(&["manpage"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout), top);

    // A directory that cannot be made: exit 1, naming it.
    let blocked = dir.path().join("file");
    std::fs::write(&blocked, "").expect("write");
    let target = blocked.join("man1");
    let out = run_swarm(&["manpage", "--out", target.to_str().expect("UTF-8 path")]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains(&target.display().to_string()), "{}", text(&out));
}

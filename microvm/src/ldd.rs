//! Shared libraries a program needs, as its own dynamic loader resolves them.
//!
//! The loader named in the program's `PT_INTERP` is asked with `--list` (what `ldd` does): it
//! applies `DT_RUNPATH`, `/etc/ld.so.cache` and the built-in directories exactly as it will at
//! run time, so the image gets the same files at the same paths. A static program (no
//! `PT_INTERP`) needs nothing; running the loader on one would crash it, so it is never asked.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::elf;

/// One line of the loader's `--list` output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Line {
    /// `libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x…)`, or the loader itself
    /// (`/lib64/ld-linux-x86-64.so.2 (0x…)`).
    Found {
        /// The name asked for (`DT_NEEDED`), or the loader's path.
        name: String,
        /// Where the loader found it.
        path: PathBuf,
    },
    /// `libfoo.so.1 => not found`.
    Missing {
        /// The name asked for.
        name: String,
    },
    /// `linux-vdso.so.1 (0x…)`: provided by the kernel, no file.
    Virtual,
}

/// Failure to resolve a program's libraries.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The program's headers.
    #[error(transparent)]
    Elf(#[from] elf::Error),
    /// The loader could not be run.
    #[error("cannot run the dynamic loader {loader} for {program}")]
    Spawn {
        /// The loader.
        loader: PathBuf,
        /// The program.
        program: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The loader failed.
    #[error("{loader} --list {program} failed ({status}): {stderr}")]
    Failed {
        /// The loader.
        loader: PathBuf,
        /// The program.
        program: PathBuf,
        /// Its exit status.
        status: std::process::ExitStatus,
        /// What it printed.
        stderr: String,
    },
    /// A library the program needs is not installed.
    #[error("{program} needs {name}, which the dynamic loader cannot find")]
    Missing {
        /// The program.
        program: PathBuf,
        /// The library.
        name: String,
    },
}

/// Parses `ld.so --list` (or `ldd`) output.
#[must_use]
pub fn parse(output: &str) -> Vec<Line> {
    output
        .split(['\n', '\r'])
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .filter_map(|line| {
            // Strip the load address suffix.
            let line = match line.rfind(" (0x") {
                Some(i) if line.ends_with(')') => line[..i].trim_end(),
                _ => line,
            };
            if let Some((name, target)) = line.split_once(" => ") {
                let target = target.trim();
                if target == "not found" {
                    return Some(Line::Missing { name: name.trim().to_owned() });
                }
                if target.starts_with('/') {
                    return Some(Line::Found { name: name.trim().to_owned(), path: PathBuf::from(target) });
                }
                // `name => ` with an empty target (vdso on some glibc versions).
                return Some(Line::Virtual);
            }
            if line.starts_with('/') {
                return Some(Line::Found { name: line.to_owned(), path: PathBuf::from(line) });
            }
            if line.contains("vdso") || line.contains("vsyscall") {
                return Some(Line::Virtual);
            }
            // "statically linked" and other chatter.
            None
        })
        .collect()
}

/// The files `program` loads at start: its loader and every library, as the loader resolves
/// them (sorted, without duplicates). Empty for a static program.
///
/// # Errors
/// Not ELF, the loader fails, or a library is missing.
pub fn needed(program: &Path) -> Result<Vec<PathBuf>, Error> {
    let info = elf::inspect(program)?;
    let Some(loader) = info.interp else {
        return Ok(Vec::new());
    };
    let out = Command::new(&loader).arg("--list").arg(program).output().map_err(|source| Error::Spawn {
        loader: loader.clone(),
        program: program.to_owned(),
        source,
    })?;
    if !out.status.success() {
        return Err(Error::Failed {
            loader,
            program: program.to_owned(),
            status: out.status,
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        });
    }
    let mut paths = vec![loader];
    for line in parse(&String::from_utf8_lossy(&out.stdout)) {
        match line {
            Line::Found { path, .. } => paths.push(path),
            Line::Missing { name } => return Err(Error::Missing { program: program.to_owned(), name }),
            Line::Virtual => {}
        }
    }
    paths.sort();
    paths.dedup();
    Ok(paths)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_captured_nginx_list() {
        let lines = parse(include_str!("../testdata/ld-list-nginx.txt"));
        assert_eq!(lines[0], Line::Virtual);
        assert!(lines.contains(&Line::Found {
            name: "libpcre2-8.so.0".into(),
            path: "/lib/x86_64-linux-gnu/libpcre2-8.so.0".into()
        }));
        assert!(lines.contains(&Line::Found {
            name: "/lib64/ld-linux-x86-64.so.2".into(),
            path: "/lib64/ld-linux-x86-64.so.2".into()
        }));
        assert_eq!(lines.iter().filter(|l| matches!(l, Line::Found { .. })).count(), 7);
    }

    #[test]
    fn parses_captured_ffmpeg_list_with_runpath_library() {
        let lines = parse(include_str!("../testdata/ld-list-ffmpeg.txt"));
        let found: Vec<_> = lines
            .iter()
            .filter_map(|l| match l {
                Line::Found { path, .. } => Some(path),
                _ => None,
            })
            .collect();
        assert!(found.len() > 200, "{}", found.len());
        // libpulsecommon lives outside the default directories (found via DT_RUNPATH).
        assert!(found.iter().any(|p| p.starts_with("/usr/lib/x86_64-linux-gnu/pulseaudio/")));
        assert!(!lines.iter().any(|l| matches!(l, Line::Missing { .. })));
    }

    #[test]
    fn parses_missing_and_static() {
        let out = "\tlinux-vdso.so.1 (0x00007ffd)\n\tlibgone.so.3 => not found\r\n\tstatically linked\n";
        assert_eq!(parse(out), vec![Line::Virtual, Line::Missing { name: "libgone.so.3".into() }]);
    }

    #[test]
    fn resolves_this_test_binary() {
        let me = std::env::current_exe().unwrap();
        let libs = needed(&me).unwrap();
        assert!(libs.iter().any(|p| p.to_string_lossy().contains("libc.so")), "{libs:?}");
        assert!(libs.iter().any(|p| p.to_string_lossy().contains("ld-linux")), "{libs:?}");
    }
}

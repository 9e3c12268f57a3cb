//! Prerequisites of a test. Each returns `Err(Skip)` with the reason when it is missing, for
//! `?` in a test returning [`Outcome`](crate::Outcome); under CI, what `make test` installs
//! panics instead (a failure, never a skip).

use std::path::{Path, PathBuf};

use crate::{ci, Outcome, Skip};

/// What `make test` installs: `scripts/install-deps`, read at build time, so the list has one
/// source. Its `[command]=package` entries.
const INSTALL_DEPS: &str = include_str!("../../scripts/install-deps");

/// The Debian package `scripts/install-deps` installs for `command`, if it lists one.
#[must_use]
pub fn installed_by_make_test(command: &str) -> Option<&'static str> {
    INSTALL_DEPS.lines().find_map(|line| {
        let line = line.trim();
        let line = line.strip_prefix("need").unwrap_or(line);
        let (cmd, rest) = line.strip_prefix('[')?.split_once("]=")?;
        let package = rest.split(|c: char| c.is_whitespace() || c == '#').next()?;
        (cmd == command && !package.is_empty()).then_some(package)
    })
}

/// Running as root: network namespaces, bridges, TAP devices, rootful podman. The machine's
/// property, so a skip even under CI.
///
/// # Errors
/// [`Skip`] naming `what` needs it.
pub fn root(what: &str) -> Outcome {
    if nix::unistd::geteuid().is_root() {
        Ok(())
    } else {
        Err(Skip(format!("needs root ({what})")))
    }
}

/// A device node such as `/dev/net/tun`: the kernel's, so a skip even under CI.
///
/// # Errors
/// [`Skip`] naming the path.
pub fn device(path: &str, what: &str) -> Outcome {
    if Path::new(path).exists() {
        Ok(())
    } else {
        Err(Skip(format!("{path} is missing ({what})")))
    }
}

/// A command on `PATH` (or in `/usr/sbin`, `/sbin`). Missing: a skip naming its package; under
/// CI a failure when `scripts/install-deps` installs it.
///
/// # Errors
/// [`Skip`] naming the command and how to install it.
///
/// # Panics
/// Under CI, when `make test` installs the command and it is missing.
pub fn program(name: &str) -> Result<PathBuf, Skip> {
    if let Some(p) = crate::which(name) {
        return Ok(p);
    }
    match installed_by_make_test(name) {
        Some(package) => Err(missing(
            &format!("`{name}`"),
            &format!("Debian package {package}; `make test` installs it with scripts/install-deps"),
        )),
        None => Err(Skip(format!("needs `{name}`, which is not installed"))),
    }
}

/// Something `make test` installs that is not a command on `PATH` (a kernel with modules,
/// busybox's static binary): a skip naming `how` to get it; under CI a failure.
///
/// # Errors
/// [`Skip`] when `found` is false outside CI.
///
/// # Panics
/// Under CI when `found` is false.
pub fn installed(what: &str, found: bool, how: &str) -> Outcome {
    if found {
        Ok(())
    } else {
        Err(missing(what, how))
    }
}

/// The skip for something `make test` installs; under CI, a panic.
fn missing(what: &str, how: &str) -> Skip {
    assert!(!ci(), "{what} is missing and CI is set: `make test` must provide it ({how})");
    Skip(format!("needs {what} ({how})"))
}

/// A facility of this machine that nothing here installs (a free well-known port, a kernel
/// feature): a skip with the reason, also under CI.
///
/// # Errors
/// [`Skip`] with `why` when `ok` is false.
pub fn available(ok: bool, why: &str) -> Outcome {
    if ok {
        Ok(())
    } else {
        Err(Skip(why.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn install_deps_is_read() {
        assert_eq!(installed_by_make_test("ffmpeg"), Some("ffmpeg"));
        assert_eq!(installed_by_make_test("nginx"), Some("nginx-light"));
        assert_eq!(installed_by_make_test("promtool"), Some("prometheus"));
        assert_eq!(installed_by_make_test("qemu-system-x86_64"), Some("qemu-system-x86"));
        assert_eq!(installed_by_make_test("tmux"), Some("tmux"));
        assert_eq!(installed_by_make_test("no-such-command"), None);
    }

    #[test]
    fn skips_name_what_is_missing() {
        let e = program("hls-lab-no-such-program").unwrap_err();
        assert_eq!(e.0, "needs `hls-lab-no-such-program`, which is not installed");
        assert!(program("sh").is_ok());
        assert_eq!(
            device("/nonexistent/dev", "a test").unwrap_err().0,
            "/nonexistent/dev is missing (a test)"
        );
        assert_eq!(available(false, "port 17080 is taken").unwrap_err().0, "port 17080 is taken");
        assert!(available(true, "x").is_ok());
    }
}

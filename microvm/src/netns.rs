//! Running things inside a named network namespace (`/run/netns/NAME`, as `ip netns` and
//! `hls-lab network setup --netns` make them), on top of [`network::netns`].
//!
//! `setns(CLONE_NEWNET)` changes the namespace of the calling *thread* only, and sockets keep
//! the namespace they were created in. So qemu is moved in the forked child before `exec`
//! ([`enter_in_child`]), and HTTP checks from the host side run on a fresh thread that enters
//! the namespace and ends afterwards ([`run_in`]) — never on a pooled thread, which would stay
//! in the namespace.

/// Namespace problems.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The namespace does not exist.
    #[error("network namespace {name}: {source}; create it with `hls-lab network setup --netns {name}`")]
    Missing {
        /// The name.
        name: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// `setns` refused (not root), or the worker thread failed.
    #[error("cannot run inside network namespace {name}")]
    Enter {
        /// The name.
        name: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// A valid namespace name (what `ip netns` accepts).
#[must_use]
pub fn valid_name(name: &str) -> bool {
    network::topology::check_netns_name(name).is_ok()
}

/// Checks that namespace `name` exists.
///
/// # Errors
/// [`Error::Missing`].
pub fn check(name: &str) -> Result<(), Error> {
    if network::netns::exists(name) {
        Ok(())
    } else {
        Err(Error::Missing {
            name: name.to_owned(),
            source: std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!("{} is not a namespace", network::netns::path(name).display()),
            ),
        })
    }
}

/// Makes `cmd`'s child enter namespace `name` before `exec`.
///
/// # Errors
/// [`Error::Missing`] (checked now, in the parent).
pub fn enter_in_child(cmd: &mut tokio::process::Command, name: &str) -> Result<(), Error> {
    network::netns::enter_in_child(cmd.as_std_mut(), name)
        .map_err(|source| Error::Missing { name: name.to_owned(), source })
}

/// Runs `f` on a new thread inside namespace `name` (or in ours for `None`) and returns its
/// result. The thread ends afterwards, so no thread of ours is left in the namespace.
///
/// # Errors
/// The namespace cannot be opened or entered.
pub fn run_in<T: Send>(name: Option<&str>, f: impl FnOnce() -> T + Send) -> Result<T, Error> {
    match name {
        Some(ns) => network::netns::in_netns(ns, f).map_err(|source| {
            if source.kind() == std::io::ErrorKind::NotFound {
                Error::Missing { name: ns.to_owned(), source }
            } else {
                Error::Enter { name: ns.to_owned(), source }
            }
        }),
        None => Ok(f()),
    }
}

/// [`run_in`] from async code: the blocking work runs off the runtime's threads.
///
/// # Errors
/// See [`run_in`].
pub async fn run_in_async<T, F>(name: Option<&str>, f: F) -> Result<T, Error>
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    let name = name.map(str::to_owned);
    let label = name.clone().unwrap_or_default();
    // spawn_blocking's thread only waits; `run_in` enters the namespace on a thread of its own.
    tokio::task::spawn_blocking(move || run_in(name.as_deref(), f))
        .await
        .map_err(|e| Error::Enter { name: label, source: std::io::Error::other(e.to_string()) })?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(valid_name("hlslab-test-1"));
        assert!(!valid_name("a/b"));
        assert!(!valid_name(""));
        assert!(!valid_name(".."));
    }

    #[test]
    fn missing_namespace_is_named() {
        let e = run_in(Some("hls-lab-no-such-netns"), || 1).unwrap_err();
        assert!(e.to_string().starts_with("network namespace hls-lab-no-such-netns: "), "{e}");
        assert!(check("hls-lab-no-such-netns").is_err());
    }

    #[test]
    fn no_namespace_runs_here() {
        assert_eq!(run_in(None, || 7).unwrap(), 7);
    }
}

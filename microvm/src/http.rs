//! The launcher's HTTP checks (the playlist, the exporters), from a network namespace when
//! asked: [`kit::http`], the lab's one client, on a thread that entered it
//! ([`crate::netns::run_in_async`]).

use std::net::SocketAddr;
use std::time::Duration;

pub use kit::http::{get, Response};

/// A check that got no answer.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Refused, timed out, or not HTTP.
    #[error(transparent)]
    Http(#[from] kit::http::Error),
    /// The namespace could not be entered.
    #[error(transparent)]
    Netns(#[from] crate::netns::Error),
}

/// [`get`] from inside network namespace `netns` (or ours), on its own thread.
///
/// # Errors
/// See [`get`]; also namespace errors.
pub async fn get_in(
    netns: Option<&str>,
    addr: SocketAddr,
    path: &str,
    timeout: Duration,
) -> Result<Response, Error> {
    let path = path.to_owned();
    Ok(crate::netns::run_in_async(netns, move || get(addr, &path, timeout)).await??)
}

/// Whether a response is a served HLS playlist.
#[must_use]
pub fn is_playlist(r: &Response) -> bool {
    r.is_playlist()
}

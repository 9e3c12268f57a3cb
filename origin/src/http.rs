//! The origin's HTTP checks from async code (readiness, the health page's own probe, tests):
//! [`kit::http`], the lab's one client, on a blocking thread.

use std::net::SocketAddr;
use std::time::Duration;

pub use kit::http::{Error as FetchError, Response};

/// `GET path` from `addr`, all of it within `timeout`.
///
/// # Errors
/// [`FetchError`] on connection failure, timeout or a malformed response.
pub async fn get(addr: SocketAddr, path: &str, timeout: Duration) -> Result<Response, FetchError> {
    request(addr, "GET", path, timeout).await
}

/// Any method without a body (`HEAD`, `OPTIONS`, `POST` with no body...).
///
/// # Errors
/// As [`get`].
pub async fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    timeout: Duration,
) -> Result<Response, FetchError> {
    let (m, p) = (method.to_owned(), path.to_owned());
    tokio::task::spawn_blocking(move || kit::http::request(&m, addr, &p, timeout)).await.map_err(|e| {
        FetchError::Io {
            method: method.to_owned(),
            addr,
            path: path.to_owned(),
            source: std::io::Error::other(e),
        }
    })?
}

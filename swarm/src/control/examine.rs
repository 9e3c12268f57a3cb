//! Looking at the stream once, from Rust, the way a viewer would: same headers, same
//! `--resolve`, same timeout. Used to choose a variant (`--variant highest|lowest`), to learn
//! the target duration and whether the stream is finite, and by `--check`.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use url::Url;

use crate::engine::limits::{self, Limits};
use crate::engine::policy;
use crate::engine::settings::Variant;
use crate::engine::settings::{HttpSettings, NO_CACHE_HEADERS};
use kit::playlist::{self, Master, Media, Playlist};

/// Why the stream could not be examined.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ExamineError {
    /// No HTTP answer: refused, timed out, DNS or TLS failure.
    #[error("cannot reach {url}: {reason}")]
    Unreachable {
        /// What was requested.
        url: Url,
        /// The client's reason.
        reason: String,
    },
    /// The address policy refused the host (link-local or cloud metadata).
    #[error("{url}: {reason}")]
    Refused {
        /// What was requested.
        url: Url,
        /// Which address and the flag that allows it.
        reason: String,
    },
    /// A playlist points at a scheme viewers do not fetch (`file:`, `ftp:`, …).
    #[error("{url}: scheme '{}' is not fetched: viewers play http and https only", url.scheme())]
    Scheme {
        /// The URL.
        url: Url,
    },
    /// The server answered with redirects that lead nowhere (a loop, too many, or to a refused
    /// address).
    #[error("{url}: {reason}")]
    Redirects {
        /// What was requested.
        url: Url,
        /// Why the redirects were not followed.
        reason: String,
    },
    /// The server's TLS certificate is not trusted.
    #[error("the TLS certificate of {url} is not trusted ({reason}): give its CA with --ca-file PEM, or pass --dangerous to skip the check")]
    Untrusted {
        /// What was requested.
        url: Url,
        /// Why the certificate was refused.
        reason: String,
    },
    /// The response did not complete within the time allowed for one request.
    #[error("{url} was not complete after {} (--timeout): {bytes} bytes received", humantime::format_duration(*after))]
    Slow {
        /// What was requested.
        url: Url,
        /// The limit.
        after: Duration,
        /// Body bytes received by then.
        bytes: usize,
    },
    /// The body is larger than the probe reads.
    #[error("{url} is larger than {limit} bytes, the most the probe reads of it{}", flag.map(|f| format!(" ({f} raises it)")).unwrap_or_default())]
    TooLarge {
        /// What was requested.
        url: Url,
        /// The limit, bytes.
        limit: usize,
        /// The flag that raises it, if one does.
        flag: Option<&'static str>,
    },
    /// The server answered with an error status.
    #[error("{url} answered HTTP {status}")]
    Status {
        /// What was requested.
        url: Url,
        /// The status code.
        status: u16,
    },
    /// The body is not a usable playlist.
    #[error("{url} is not a usable HLS playlist: {reason}")]
    NotPlaylist {
        /// What was requested.
        url: Url,
        /// What is wrong.
        reason: String,
    },
    /// A header value cannot be sent.
    #[error("cannot build the HTTP client: {0}")]
    Client(String),
}

impl ExamineError {
    /// True when no server answered at all (as opposed to answering wrongly); a TLS
    /// certificate that is not trusted counts as no answer.
    #[must_use]
    pub fn is_unreachable(&self) -> bool {
        matches!(
            self,
            ExamineError::Unreachable { .. } | ExamineError::Untrusted { .. } | ExamineError::Refused { .. }
        )
    }
}

/// One completed GET.
#[derive(Debug, Clone)]
pub struct Fetched {
    /// Final URL.
    pub url: Url,
    /// Time to the response head.
    pub ttfb: Duration,
    /// Time to the last byte.
    pub total: Duration,
    /// Body.
    pub body: Vec<u8>,
}

/// An HTTP client that behaves like the viewers.
#[derive(Debug, Clone)]
pub struct Fetcher {
    client: reqwest::Client,
    /// Longest time for one whole request (`--timeout`).
    total: Duration,
    /// `--resolve`.
    resolve: Option<std::net::IpAddr>,
    /// `--allow-link-local`.
    allow_link_local: bool,
    /// How much is read.
    limits: Limits,
}

/// Redirects: at most 5, and never to a refused address literal (a host name that resolves
/// to one is refused by [`PolicyResolver`]).
fn redirects(allow_link_local: bool) -> reqwest::redirect::Policy {
    reqwest::redirect::Policy::custom(move |attempt| {
        let refused = attempt.url().host().and_then(|h| literal_refused(&h, attempt.url(), allow_link_local));
        if let Some(reason) = refused {
            attempt.error(reason)
        } else if attempt.previous().len() >= limits::REDIRECTS {
            attempt.error(format!("more than {} redirects", limits::REDIRECTS))
        } else {
            attempt.follow()
        }
    })
}

/// Why an IP-literal host is refused, if it is.
fn literal_refused(host: &url::Host<&str>, url: &Url, allow: bool) -> Option<String> {
    let ip = match host {
        url::Host::Ipv4(v4) => std::net::IpAddr::V4(*v4),
        url::Host::Ipv6(v6) => std::net::IpAddr::V6(*v6),
        url::Host::Domain(_) => return None,
    };
    let why = policy::refused(ip).filter(|_| !allow)?;
    Some(policy::message(std::net::SocketAddr::new(ip, url.port_or_known_default().unwrap_or(80)), why))
}

/// DNS that drops refused addresses; a name with nothing else left is an error naming the
/// address and the flag.
#[derive(Debug)]
struct PolicyResolver {
    allow: bool,
}

impl reqwest::dns::Resolve for PolicyResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let allow = self.allow;
        Box::pin(async move {
            let all: Vec<std::net::SocketAddr> = tokio::net::lookup_host((name.as_str(), 0)).await?.collect();
            let kept: Vec<std::net::SocketAddr> =
                all.iter().copied().filter(|a| allow || policy::refused(a.ip()).is_none()).collect();
            match (kept.is_empty(), all.first()) {
                (true, Some(first)) => {
                    let why = policy::refused(first.ip()).unwrap_or("refused");
                    Err(policy::message(*first, why).into())
                }
                _ => Ok(Box::new(kept.into_iter()) as reqwest::dns::Addrs),
            }
        })
    }
}

impl Fetcher {
    /// Why the policy refuses `url` before any request (an address literal, or `--resolve`).
    fn refuses(&self, url: &Url) -> Option<String> {
        if let Some(ip) = self.resolve {
            let why = policy::refused(ip).filter(|_| !self.allow_link_local)?;
            return Some(policy::message(
                std::net::SocketAddr::new(ip, url.port_or_known_default().unwrap_or(80)),
                why,
            ));
        }
        literal_refused(&url.host()?, url, self.allow_link_local)
    }
}

impl Fetcher {
    /// A client with the viewers' headers, user agent (`… probe`), timeout and `--resolve`.
    ///
    /// # Errors
    /// [`ExamineError::Client`] if a header cannot be encoded.
    pub fn new(options: &HttpSettings, url: &Url) -> Result<Fetcher, ExamineError> {
        let mut headers = HeaderMap::new();
        let mut add = |name: &str, value: &str| -> Result<(), ExamineError> {
            let n =
                HeaderName::from_bytes(name.as_bytes()).map_err(|e| ExamineError::Client(e.to_string()))?;
            let v = HeaderValue::from_str(value).map_err(|e| ExamineError::Client(e.to_string()))?;
            headers.append(n, v);
            Ok(())
        };
        if options.no_cache {
            for (name, value) in NO_CACHE_HEADERS {
                add(name, value)?;
            }
        }
        for h in &options.headers {
            add(&h.name, &h.value)?;
        }
        let mut builder = reqwest::Client::builder()
            .user_agent(format!("{} probe", options.user_agent))
            .default_headers(headers)
            .connect_timeout(options.timeout)
            .read_timeout(options.timeout)
            .redirect(redirects(options.allow_link_local))
            .dns_resolver(std::sync::Arc::new(PolicyResolver { allow: options.allow_link_local }))
            .no_proxy()
            .use_preconfigured_tls((*options.trust.client_config()).clone());
        if let (Some(ip), Some(host)) = (options.resolve, url.host_str()) {
            let port = url.port_or_known_default().unwrap_or(80);
            builder = builder.resolve(host, SocketAddr::new(ip, port));
        }
        let client = builder.build().map_err(|e| ExamineError::Client(e.to_string()))?;
        Ok(Fetcher {
            client,
            total: options.timeout,
            resolve: options.resolve,
            allow_link_local: options.allow_link_local,
            limits: options.limits,
        })
    }

    /// GETs `url`, reading the whole body (at most `limit` bytes).
    ///
    /// # Errors
    /// [`ExamineError::Unreachable`] or [`ExamineError::Status`].
    pub async fn get(&self, url: &Url, limit: usize) -> Result<Fetched, ExamineError> {
        let unreachable = |e: reqwest::Error| {
            let reason = describe(&e);
            if reason.contains(policy::FLAG) {
                ExamineError::Refused { url: url.clone(), reason }
            } else if e.is_redirect() {
                ExamineError::Redirects { url: url.clone(), reason }
            } else if untrusted_certificate(&e) {
                ExamineError::Untrusted { url: url.clone(), reason: describe(&e) }
            } else {
                ExamineError::Unreachable { url: url.clone(), reason: describe(&e) }
            }
        };
        if !matches!(url.scheme(), "http" | "https") {
            return Err(ExamineError::Scheme { url: url.clone() });
        }
        if let Some(reason) = self.refuses(url) {
            return Err(ExamineError::Refused { url: url.clone(), reason });
        }
        let start = Instant::now();
        let mut body = Vec::new();
        let whole = async {
            let mut resp = self.client.get(url.clone()).send().await.map_err(unreachable)?;
            let ttfb = start.elapsed();
            if !resp.status().is_success() {
                return Err(ExamineError::Status { url: url.clone(), status: resp.status().as_u16() });
            }
            let final_url = resp.url().clone();
            while let Some(chunk) = resp.chunk().await.map_err(unreachable)? {
                if body.len() + chunk.len() > limit {
                    let flag = (limit == self.limits.playlist_bytes).then_some(limits::PLAYLIST_FLAG);
                    return Err(ExamineError::TooLarge { url: url.clone(), limit, flag });
                }
                body.extend_from_slice(&chunk);
            }
            Ok((final_url, ttfb))
        };
        // Each read is bounded by the client's timeout; the whole request by the same figure,
        // so a server that trickles cannot hold the probe (or `--check`) for long.
        let (final_url, ttfb) = tokio::time::timeout(self.total, whole)
            .await
            .map_err(|_| ExamineError::Slow { url: url.clone(), after: self.total, bytes: body.len() })??;
        Ok(Fetched { url: final_url, ttfb, total: start.elapsed(), body })
    }

    /// GETs and parses a playlist.
    ///
    /// # Errors
    /// As [`Fetcher::get`], plus [`ExamineError::NotPlaylist`].
    pub async fn playlist(&self, url: &Url) -> Result<(Fetched, Playlist), ExamineError> {
        let fetched = self.get(url, self.limits.playlist_bytes).await?;
        let text = String::from_utf8_lossy(&fetched.body);
        let parsed = playlist::parse_within(&text, self.limits.playlist)
            .map_err(|e| ExamineError::NotPlaylist { url: url.clone(), reason: limits::explain(&e) })?;
        Ok((fetched, parsed))
    }
}

/// True if the error chain holds rustls refusing the server's certificate.
fn untrusted_certificate(e: &reqwest::Error) -> bool {
    let mut next = std::error::Error::source(e);
    while let Some(s) = next {
        if matches!(s.downcast_ref::<rustls::Error>(), Some(rustls::Error::InvalidCertificate(_))) {
            return true;
        }
        // An io::Error's source skips the error it wraps: step into it instead.
        next = match s.downcast_ref::<std::io::Error>().and_then(std::io::Error::get_ref) {
            Some(inner) => Some(inner as &(dyn std::error::Error + 'static)),
            None => s.source(),
        };
    }
    false
}

/// The most useful reason in a reqwest error chain (e.g. "Connection refused").
fn describe(e: &reqwest::Error) -> String {
    let mut reason = if e.is_timeout() { "timed out".to_owned() } else { e.to_string() };
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        reason = s.to_string();
        source = s.source();
    }
    reason
}

/// What a first look at the stream found.
#[derive(Debug, Clone)]
pub struct StreamInfo {
    /// The master playlist, if the URL was one.
    pub master: Option<Master>,
    /// Index of the variant the viewers will play (`--variant highest|lowest`), if any.
    pub chosen: Option<usize>,
    /// The media playlist examined.
    pub media_url: Url,
    /// Its content.
    pub media: Media,
    /// Fetch of the URL itself.
    pub first_fetch: Fetched,
}

impl StreamInfo {
    /// True if the stream will not grow (VOD, or an event that has ended).
    #[must_use]
    pub fn finite(&self) -> bool {
        self.media.ended
    }
}

/// Fetches the URL; for a master, picks the variant per `variant` (highest/lowest by
/// BANDWIDTH, else the first) and fetches its media playlist.
///
/// # Errors
/// See [`ExamineError`].
pub async fn examine(fetcher: &Fetcher, url: &Url, variant: Variant) -> Result<StreamInfo, ExamineError> {
    let (first_fetch, parsed) = fetcher.playlist(url).await?;
    match parsed {
        Playlist::Media(media) => Ok(StreamInfo {
            master: None,
            chosen: None,
            media_url: first_fetch.url.clone(),
            media,
            first_fetch,
        }),
        Playlist::Master(master) => {
            if master.variants.is_empty() {
                return Err(ExamineError::NotPlaylist {
                    url: url.clone(),
                    reason: "the master lists no variants".into(),
                });
            }
            let chosen = match variant {
                Variant::Highest => master.pick(true),
                Variant::Lowest => master.pick(false),
                Variant::All | Variant::First | Variant::Abr => None,
            };
            let index = chosen.unwrap_or(0);
            let uri = master.variants.get(index).map(|v| v.uri.clone()).unwrap_or_default();
            let media_url = playlist::resolve(&first_fetch.url, &uri).map_err(|e| {
                ExamineError::NotPlaylist { url: url.clone(), reason: format!("variant URI '{uri}': {e}") }
            })?;
            let (_, parsed) = fetcher.playlist(&media_url).await?;
            let Playlist::Media(media) = parsed else {
                return Err(ExamineError::NotPlaylist {
                    url: media_url,
                    reason: "a variant is itself a master".into(),
                });
            };
            Ok(StreamInfo { master: Some(master), chosen, media_url, media, first_fetch })
        }
    }
}

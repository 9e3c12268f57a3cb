//! The FFmpeg viewer command: what the installed FFmpeg accepts, and the argv built from it.
//!
//! FFmpeg builds differ: Debian 12's 5.1 rejects `-seg_max_retry` and the `datetime` log flag
//! that newer builds accept, and an unknown option makes FFmpeg exit before it opens the
//! input — every viewer would crash-loop. So [`Capabilities::probe`] reads the option list of
//! the binary we will run, [`argv`] only emits what it found, and preflight runs the real
//! command once to prove it (see [`crate::control::preflight`]).

use std::collections::HashSet;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

use url::Url;

use crate::engine::secrets::{is_secret_header, Secrets};
use crate::engine::settings::{HttpSettings, Variant, NO_CACHE_HEADERS};

/// Protocols a viewer may use: HLS over HTTP(S), AES-128 segments, and proxies. Nothing that
/// reads local files or other schemes, so a hostile playlist cannot point viewers elsewhere.
pub const PROTOCOL_WHITELIST: &str = "http,https,tcp,tls,crypto,httpproxy";

/// What one FFmpeg binary supports, read from `ffmpeg -h full`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Capabilities {
    /// First line of `ffmpeg -version`, e.g. `ffmpeg version 5.1.9-0+deb12u1 ...`.
    pub version: String,
    options: HashSet<String>,
}

/// Why the FFmpeg binary could not be examined.
#[derive(Debug, thiserror::Error)]
pub enum CapabilityError {
    /// Could not run it at all.
    #[error("cannot run FFmpeg '{binary}': {source}; install it (apt install ffmpeg) or pass --ffmpeg PATH")]
    Spawn {
        /// The binary.
        binary: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// It ran but failed.
    #[error("FFmpeg '{binary}' failed to list its options (exit status {status})")]
    Failed {
        /// The binary.
        binary: String,
        /// Its exit status.
        status: String,
    },
}

impl Capabilities {
    /// Runs `BINARY -version` and `BINARY -hide_banner -h full` (about 0.2 CPU-seconds).
    ///
    /// # Errors
    /// The binary is missing or fails.
    pub async fn probe(binary: &Path) -> Result<Capabilities, CapabilityError> {
        let version = run_capture(binary, &["-hide_banner", "-version"]).await?;
        let help = run_capture(binary, &["-hide_banner", "-h", "full"]).await?;
        let mut caps = Capabilities::from_help(&help);
        caps.version = version.lines().next().unwrap_or_default().trim().to_owned();
        Ok(caps)
    }

    /// Parses the option list out of `ffmpeg -h full` output.
    #[must_use]
    pub fn from_help(help: &str) -> Capabilities {
        let options = help
            .lines()
            .filter_map(|l| l.trim_start().strip_prefix('-'))
            .filter_map(|l| l.split_whitespace().next())
            .map(str::to_owned)
            .collect();
        Capabilities { version: String::new(), options }
    }

    /// True if the binary lists option `name` (without the dash).
    #[must_use]
    pub fn has(&self, name: &str) -> bool {
        self.options.contains(name)
    }

    /// The FFmpeg version number, e.g. `5.1.9-0+deb12u1`.
    #[must_use]
    pub fn version_number(&self) -> &str {
        self.version.split_whitespace().nth(2).unwrap_or("unknown")
    }
}

async fn run_capture(binary: &Path, args: &[&str]) -> Result<String, CapabilityError> {
    let name = binary.display().to_string();
    let out = tokio::process::Command::new(binary)
        .args(args)
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .output()
        .await
        .map_err(|source| CapabilityError::Spawn { binary: name.clone(), source })?;
    if !out.status.success() {
        return Err(CapabilityError::Failed { binary: name, status: out.status.to_string() });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The FFmpeg engine's own settings.
#[derive(Debug, Clone, PartialEq)]
pub struct FfmpegOptions {
    /// Binary to run.
    pub binary: PathBuf,
    /// Reconnect on network errors.
    pub reconnect: bool,
    /// Longest reconnect delay.
    pub reconnect_delay: Duration,
    /// Grace period after SIGTERM.
    pub stop_grace: Duration,
}

/// Everything that decides one viewer's command line.
#[derive(Debug, Clone)]
pub struct ViewerCommand<'a> {
    /// FFmpeg settings from the configuration.
    pub options: &'a FfmpegOptions,
    /// The viewers' HTTP settings.
    pub http: &'a HttpSettings,
    /// What the binary supports.
    pub caps: &'a Capabilities,
    /// Stream URL as configured.
    pub url: &'a Url,
    /// Rendition choice; `Program(n)` once a master playlist has been examined.
    pub selection: Selection,
    /// Viewer number, starting at 0.
    pub viewer: u32,
    /// The viewer's relay (`--measure relay`), as FFmpeg's `-http_proxy`. The relay applies
    /// `--resolve`, so the URL and `Host` stay as configured, and adds the URL's credentials,
    /// secret parameters and secret headers, so FFmpeg's argv carries none.
    pub proxy: Option<&'a str>,
    /// The run's secrets.
    pub secrets: &'a Secrets,
}

/// Which streams of the input a viewer keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Selection {
    /// Every stream (`-map 0`): FFmpeg downloads every variant.
    All,
    /// First video and first audio stream.
    First,
    /// One HLS variant: FFmpeg's program number `n` (variants in master-playlist order).
    Program(usize),
}

impl Selection {
    /// The selection before any playlist has been read.
    #[must_use]
    pub fn from_variant(variant: Variant) -> Selection {
        match variant {
            Variant::All => Selection::All,
            // highest/lowest are narrowed to a program once the master playlist is read.
            Variant::First | Variant::Highest | Variant::Lowest => Selection::First,
            // FFmpeg does not switch variants; the configuration refuses abr for it.
            Variant::Abr => Selection::First,
        }
    }
}

impl ViewerCommand<'_> {
    /// The full argv, program name first.
    #[must_use]
    pub fn argv(&self) -> Vec<OsString> {
        let o = self.options;
        let mut a: Vec<String> = vec![
            o.binary.display().to_string(),
            "-hide_banner".into(),
            "-nostdin".into(),
            "-nostats".into(),
            // `repeat`: every event on its own line (no "last message repeated N times");
            // `level`: a [level] tag the parser reads. Supported by every FFmpeg since 4.x.
            // Through a relay the requests are measured there, so the log only needs warnings
            // and errors (an info line per request would cost both processes a wake-up).
            "-loglevel".into(),
            if self.proxy.is_some() { "repeat+level+warning" } else { "repeat+level+info" }.into(),
        ];
        if self.caps.has("protocol_whitelist") {
            a.extend(["-protocol_whitelist".into(), PROTOCOL_WHITELIST.into()]);
        }
        let https = self.url.scheme() == "https";
        if self.rewrites_host() && https && self.caps.has("tls_verify") {
            a.extend(["-tls_verify".into(), "0".into()]);
        }
        if o.reconnect {
            a.extend(["-reconnect".into(), "1".into(), "-reconnect_streamed".into(), "1".into()]);
            if self.caps.has("reconnect_on_network_error") {
                a.extend(["-reconnect_on_network_error".into(), "1".into()]);
            }
            a.extend(["-reconnect_delay_max".into(), o.reconnect_delay.as_secs().max(1).to_string()]);
        }
        let micros = u64::try_from(self.http.timeout.as_micros()).unwrap_or(u64::MAX);
        a.extend(["-rw_timeout".into(), micros.to_string()]);
        a.extend(["-user_agent".into(), format!("{} viewer/{}", self.http.user_agent, self.viewer)]);
        let headers = self.header_block();
        if !headers.is_empty() {
            a.extend(["-headers".into(), headers]);
        }
        if self.caps.has("seg_max_retry") {
            a.extend(["-seg_max_retry".into(), "3".into()]);
        }
        if let Some(proxy) = self.proxy {
            a.extend(["-http_proxy".into(), proxy.to_owned()]);
        }
        a.extend(["-i".into(), self.input_url().to_string()]);
        match self.selection {
            Selection::All => a.extend(["-map".into(), "0".into()]),
            Selection::First => a.extend(["-map".into(), "0:v:0?".into(), "-map".into(), "0:a:0?".into()]),
            Selection::Program(n) => a.extend(["-map".into(), format!("0:p:{n}")]),
        }
        a.extend(["-c".into(), "copy".into(), "-f".into(), "null".into(), "-".into()]);
        a.into_iter().map(OsString::from).collect()
    }

    /// The URL FFmpeg opens: the configured one, with the host replaced by `--resolve`; through
    /// a relay, without its credentials and secret parameters (the relay adds them).
    #[must_use]
    pub fn input_url(&self) -> Url {
        if self.proxy.is_some() {
            return self.secrets.public_url(self.url);
        }
        let mut url = self.url.clone();
        if let Some(ip) = self.http.resolve.filter(|_| self.rewrites_host()) {
            // Replacing the host of an http(s) URL with an IP cannot fail.
            let _ = url.set_ip_host(ip);
        }
        url
    }

    /// True when FFmpeg itself must connect to `--resolve`'s address (no relay to do it):
    /// the URL gets the IP and the real host moves to a `Host` header.
    fn rewrites_host(&self) -> bool {
        self.http.resolve.is_some() && self.proxy.is_none()
    }

    /// `Name: value\r\n` lines for FFmpeg's `-headers`: Host (for --resolve), cache busting,
    /// then the user's headers in order.
    fn header_block(&self) -> String {
        let o = self.http;
        let mut block = String::new();
        if self.rewrites_host() {
            if let Some(host) = self.url.host_str() {
                match self.url.port() {
                    Some(p) => block.push_str(&format!("Host: {host}:{p}\r\n")),
                    None => block.push_str(&format!("Host: {host}\r\n")),
                }
            }
        }
        if o.no_cache {
            for (name, value) in NO_CACHE_HEADERS {
                block.push_str(&format!("{name}: {value}\r\n"));
            }
        }
        for h in o.headers.iter().filter(|h| self.proxy.is_none() || !is_secret_header(&h.name)) {
            block.push_str(&format!("{}: {}\r\n", h.name, h.value));
        }
        block
    }

    /// The command as one shell line: quoted so it can be pasted, secrets replaced.
    #[must_use]
    pub fn display(&self) -> String {
        let argv = self.argv();
        let mut out = Vec::with_capacity(argv.len());
        let mut after_headers = false;
        for arg in &argv {
            let s = arg.to_string_lossy();
            let shown = if after_headers { redact_headers(&s) } else { s.into_owned() };
            after_headers = arg == "-headers";
            out.push(shell_quote(&self.secrets.text(&shown)));
        }
        out.join(" ")
    }
}

fn redact_headers(block: &str) -> String {
    block
        .split_inclusive("\r\n")
        .map(|line| match line.split_once(':') {
            Some((name, _)) if is_secret_header(name) => format!("{name}: <redacted>\r\n"),
            _ => line.to_owned(),
        })
        .collect()
}

/// Quotes one word for a POSIX shell; words with control characters use bash's `$'…'`.
#[must_use]
pub fn shell_quote(word: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "-_./:=+,@%^".contains(c);
    if !word.is_empty() && word.chars().all(plain) {
        return word.to_owned();
    }
    if word.chars().any(char::is_control) {
        let mut s = String::from("$'");
        for c in word.chars() {
            match c {
                '\r' => s.push_str("\\r"),
                '\n' => s.push_str("\\n"),
                '\t' => s.push_str("\\t"),
                '\\' => s.push_str("\\\\"),
                '\'' => s.push_str("\\'"),
                c if c.is_control() => s.push_str(&format!("\\x{:02x}", u32::from(c))),
                c => s.push(c),
            }
        }
        s.push('\'');
        return s;
    }
    format!("'{}'", word.replace('\'', r"'\''"))
}

#[cfg(test)]
mod tests;

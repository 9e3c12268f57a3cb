//! A minimal QMP (qemu machine protocol) client: JSON lines over the run directory's unix
//! socket. After the greeting, `qmp_capabilities` enters command mode; each command gets a
//! `return` or `error`, and asynchronous events (`POWERDOWN`, `SHUTDOWN`, …) may arrive in
//! between, before or after the reply.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;

/// QMP problems.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Socket failure or timeout.
    #[error("qmp {path}: {source}")]
    Io {
        /// The socket.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// qemu answered with an error.
    #[error("qmp {command}: {class}: {desc}")]
    Command {
        /// The command.
        command: String,
        /// qemu's error class.
        class: String,
        /// qemu's description.
        desc: String,
    },
    /// Not QMP.
    #[error("qmp {path}: unexpected message {line}")]
    Protocol {
        /// The socket.
        path: PathBuf,
        /// What arrived.
        line: String,
    },
}

/// A connected QMP session in command mode.
#[derive(Debug)]
pub struct Qmp {
    path: PathBuf,
    reader: BufReader<tokio::net::unix::OwnedReadHalf>,
    writer: tokio::net::unix::OwnedWriteHalf,
    timeout: Duration,
    /// Events received so far (names).
    pub events: Vec<String>,
}

impl Qmp {
    /// Connects, reads the greeting and negotiates capabilities, each step within `timeout`.
    ///
    /// # Errors
    /// [`Error`].
    pub async fn connect(path: &Path, timeout: Duration) -> Result<Qmp, Error> {
        let io = |source| Error::Io { path: path.to_owned(), source };
        let stream = tokio::time::timeout(timeout, UnixStream::connect(path))
            .await
            .map_err(|_| io(std::io::ErrorKind::TimedOut.into()))?
            .map_err(io)?;
        let (r, w) = stream.into_split();
        let mut q =
            Qmp { path: path.to_owned(), reader: BufReader::new(r), writer: w, timeout, events: Vec::new() };
        let greeting = q.line().await?;
        if greeting.get("QMP").is_none() {
            return Err(Error::Protocol { path: path.to_owned(), line: greeting.to_string() });
        }
        q.execute("qmp_capabilities", None).await?;
        Ok(q)
    }

    async fn line(&mut self) -> Result<Value, Error> {
        let mut s = String::new();
        let n = tokio::time::timeout(self.timeout, self.reader.read_line(&mut s))
            .await
            .map_err(|_| Error::Io { path: self.path.clone(), source: std::io::ErrorKind::TimedOut.into() })?
            .map_err(|source| Error::Io { path: self.path.clone(), source })?;
        if n == 0 {
            return Err(Error::Io {
                path: self.path.clone(),
                source: std::io::ErrorKind::UnexpectedEof.into(),
            });
        }
        serde_json::from_str(&s)
            .map_err(|_| Error::Protocol { path: self.path.clone(), line: s.trim().to_owned() })
    }

    /// Runs `command` and returns its `return` value; events met on the way are recorded.
    ///
    /// # Errors
    /// [`Error`].
    pub async fn execute(&mut self, command: &str, arguments: Option<Value>) -> Result<Value, Error> {
        let mut msg = json!({ "execute": command });
        if let Some(a) = arguments {
            msg["arguments"] = a;
        }
        let mut text = msg.to_string();
        text.push('\n');
        self.writer
            .write_all(text.as_bytes())
            .await
            .map_err(|source| Error::Io { path: self.path.clone(), source })?;
        loop {
            let v = self.line().await?;
            if let Some(r) = v.get("return") {
                return Ok(r.clone());
            }
            if let Some(e) = v.get("error") {
                return Err(Error::Command {
                    command: command.to_owned(),
                    class: e["class"].as_str().unwrap_or("?").to_owned(),
                    desc: e["desc"].as_str().unwrap_or("?").to_owned(),
                });
            }
            if let Some(ev) = v.get("event").and_then(Value::as_str) {
                self.events.push(ev.to_owned());
                continue;
            }
            return Err(Error::Protocol { path: self.path.clone(), line: v.to_string() });
        }
    }

    /// `query-status`: the run state (`running`, `paused`, `shutdown`, …).
    ///
    /// # Errors
    /// [`Error`].
    pub async fn run_state(&mut self) -> Result<String, Error> {
        let r = self.execute("query-status", None).await?;
        Ok(r["status"].as_str().unwrap_or("unknown").to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    #[tokio::test]
    async fn events_before_the_reply_are_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("qmp.sock");
        let listener = tokio::net::UnixListener::bind(&path).unwrap();
        let server = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            s.write_all(b"{\"QMP\": {\"version\": {}, \"capabilities\": []}}\n").await.unwrap();
            let mut buf = [0u8; 256];
            let n = s.read(&mut buf).await.unwrap();
            assert!(std::str::from_utf8(&buf[..n]).unwrap().contains("qmp_capabilities"));
            s.write_all(b"{\"return\": {}}\n").await.unwrap();
            let n = s.read(&mut buf).await.unwrap();
            assert!(std::str::from_utf8(&buf[..n]).unwrap().contains("system_powerdown"));
            s.write_all(b"{\"timestamp\": {}, \"event\": \"POWERDOWN\"}\n{\"return\": {}}\n").await.unwrap();
            let _ = s.read(&mut buf).await.unwrap();
            s.write_all(b"{\"error\": {\"class\": \"CommandNotFound\", \"desc\": \"nope\"}}\n")
                .await
                .unwrap();
        });
        let mut q = Qmp::connect(&path, Duration::from_secs(5)).await.unwrap();
        q.execute("system_powerdown", None).await.unwrap();
        assert_eq!(q.events, ["POWERDOWN"]);
        let e = q.execute("bogus", None).await.unwrap_err();
        assert_eq!(e.to_string(), "qmp bogus: CommandNotFound: nope");
        server.await.unwrap();
    }

    #[tokio::test]
    async fn missing_socket_is_an_io_error() {
        let e = Qmp::connect(Path::new("/nonexistent/qmp.sock"), Duration::from_secs(1)).await.unwrap_err();
        assert!(matches!(e, Error::Io { .. }));
    }
}

//! What setup changed beyond the devices it names, so teardown undoes exactly that: whether it
//! created the namespace, and the value of `net.ipv4.ip_forward` it replaced.
//!
//! One small JSON file per namespace (or the host) in the run directory, written atomically
//! (temporary file + rename) after every change it records.

use std::io;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::Error;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct State {
    /// The namespace this state is about (`None`: the host's).
    pub netns: Option<String>,
    /// Setup created the namespace, so teardown deletes it.
    pub created_netns: bool,
    /// Setup turned `net.ipv4.ip_forward` on; this is the value it had before.
    pub ip_forward_before: Option<bool>,
    /// Setup installed the NAT table.
    pub nat: bool,
    /// The names setup used, so a teardown with other flags still finds them.
    pub bridge: Option<String>,
    pub tap: Option<String>,
}

impl State {
    /// The state at `path`, `None` if there is none.
    pub fn load(path: &Path) -> Result<Option<State>, Error> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(Error::File { op: "reading state file", path: path.into(), source }),
        };
        serde_json::from_str(&text).map(Some).map_err(|e| Error::File {
            op: "parsing state file (delete it if it is stale)",
            path: path.into(),
            source: io::Error::new(io::ErrorKind::InvalidData, e),
        })
    }

    pub fn save(&self, path: &Path) -> Result<(), Error> {
        let file_err = |op, source| Error::File { op, path: path.into(), source };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| file_err("creating the run directory for", e))?;
        }
        let tmp = path.with_extension("json.tmp");
        let text = serde_json::to_string_pretty(self)
            .map_err(|e| file_err("encoding state file", io::Error::new(io::ErrorKind::InvalidData, e)))?;
        std::fs::write(&tmp, text + "\n").map_err(|e| file_err("writing state file", e))?;
        std::fs::rename(&tmp, path).map_err(|e| file_err("writing state file", e))
    }

    pub fn remove(path: &Path) -> Result<(), Error> {
        match std::fs::remove_file(path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(source) => Err(Error::File { op: "removing state file", path: path.into(), source }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_missing_is_none() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run/network-netns-x.json");
        assert_eq!(State::load(&path).unwrap(), None);
        let s = State {
            netns: Some("x".into()),
            created_netns: true,
            ip_forward_before: Some(false),
            nat: true,
            bridge: Some("hlsbr0".into()),
            tap: Some("hlstap0".into()),
        };
        s.save(&path).unwrap();
        assert_eq!(State::load(&path).unwrap(), Some(s));
        State::remove(&path).unwrap();
        State::remove(&path).unwrap();
        assert_eq!(State::load(&path).unwrap(), None);
    }

    #[test]
    fn garbage_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.json");
        std::fs::write(&path, "{\"surprise\": 1}").unwrap();
        let err = crate::error::chain(&State::load(&path).unwrap_err());
        assert!(err.contains("s.json") && err.contains("stale"), "{err}");
    }
}

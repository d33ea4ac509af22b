//! The one line an isolated driver's process writes to its supervisor
//! when its driver is initialised and its socket listens, or when it
//! cannot get there. It is JSON on the child's original stdout, which
//! the child moves out of the driver's reach first (a driver that prints
//! must not garble it).

use std::collections::BTreeMap;

use rcontainerd_plugin_api::{ErrorKind, PluginError};
use serde::{Deserialize, Serialize};

/// What the driver turned out to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DriverKind {
    Snapshotter,
    Content,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Handshake {
    /// Serving on the socket.
    Ready {
        kind: DriverKind,
        exports: BTreeMap<String, String>,
    },
    /// Init (or anything before serving) failed; `kind` is the error class
    /// as [`ErrorKind`] displays it, `skip plugin` included.
    Failed { kind: String, message: String },
}

impl Handshake {
    pub fn failed(e: &PluginError) -> Handshake {
        Handshake::Failed {
            kind: e.kind.to_string(),
            message: e.message.clone(),
        }
    }

    /// One line, newline included.
    pub fn to_line(&self) -> String {
        let mut line = serde_json::to_string(self).expect("a handshake always serialises");
        line.push('\n');
        line
    }

    pub fn parse(line: &str) -> Option<Handshake> {
        serde_json::from_str(line.trim_end()).ok()
    }
}

/// The error a `Failed` handshake carries.
pub fn error_of(kind: &str, message: &str) -> PluginError {
    const KINDS: [ErrorKind; 9] = [
        ErrorKind::InvalidArgument,
        ErrorKind::NotFound,
        ErrorKind::AlreadyExists,
        ErrorKind::FailedPrecondition,
        ErrorKind::Unavailable,
        ErrorKind::NotImplemented,
        ErrorKind::Internal,
        ErrorKind::Unknown,
        ErrorKind::Skip,
    ];
    let kind = KINDS
        .into_iter()
        .find(|k| k.to_string() == kind)
        .unwrap_or(ErrorKind::Unknown);
    if kind == ErrorKind::Skip {
        // The message already carries the skip marker.
        return PluginError::new(ErrorKind::Skip, message);
    }
    PluginError::new(kind, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_handshake_round_trips_as_one_line() {
        for h in [
            Handshake::Ready {
                kind: DriverKind::Content,
                exports: BTreeMap::from([("root".into(), "/r".into())]),
            },
            Handshake::failed(&PluginError::skip("not on btrfs")),
            Handshake::failed(&PluginError::not_found("x")),
        ] {
            let line = h.to_line();
            assert_eq!(line.matches('\n').count(), 1);
            assert_eq!(Handshake::parse(&line), Some(h));
        }
        assert_eq!(Handshake::parse("hello"), None);
    }

    #[test]
    fn a_failure_keeps_its_class() {
        let e = PluginError::skip("not on btrfs");
        let Handshake::Failed { kind, message } = Handshake::failed(&e) else {
            unreachable!()
        };
        let back = error_of(&kind, &message);
        assert!(back.is_skip());
        assert_eq!(back.message, e.message);
        let back = error_of("already exists", "k");
        assert_eq!(back.kind, ErrorKind::AlreadyExists);
    }
}

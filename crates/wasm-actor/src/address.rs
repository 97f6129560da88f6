//! [`ActorAddress`]: where a message goes, named or anonymous, independent of where the
//! actor runs.

use std::fmt;
use std::sync::Arc;

pub(crate) use airssys_wasm_core::actor::check_name;

/// An actor's address: a name given in the system's tree (`router`, `worker-3`), or a
/// number for an actor spawned without one (written `$7`). A name says nothing about
/// the process or machine the actor lives on; a spawned actor's number means something
/// only on the system that spawned it, so across the hosts of a cluster it travels with
/// that host's name (`$7@node-1`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ActorAddress {
    /// A name: ASCII letters, digits, `.`, `_` and `-`, starting with a letter or a
    /// digit, at most [`MAX_NAME_BYTES`](airssys_wasm_core::actor::MAX_NAME_BYTES).
    Named(Arc<str>),
    /// An actor spawned without a name.
    Anonymous(u64),
    /// An actor spawned without a name on another host of a cluster: `$7@node-1`
    /// (what `Anonymous(7)` of `node-1` is called on the other hosts).
    Remote {
        /// The number it has on its host.
        id: u64,
        /// The host's name in the cluster: ASCII letters, digits, `-` and `_`, at most
        /// 64 bytes.
        host: Arc<str>,
    },
}

impl ActorAddress {
    /// A named address.
    ///
    /// # Errors
    ///
    /// Why `name` is not a valid name.
    pub fn named(name: &str) -> Result<Self, String> {
        check_name(name)?;
        Ok(Self::Named(name.into()))
    }

    /// Parses an address as a guest writes it: a name, `$N` for an anonymous actor,
    /// `$N@HOST` for one on another host of a cluster.
    ///
    /// # Errors
    ///
    /// Why `text` is not an address.
    pub fn parse(text: &str) -> Result<Self, String> {
        let Some(rest) = text.strip_prefix('$') else {
            return Self::named(text);
        };
        let (number, host) = match rest.split_once('@') {
            Some((n, h)) => (n, Some(h)),
            None => (rest, None),
        };
        let id = number.parse().map_err(|_| {
            format!(
                "`{}` is not an address: `$` is followed by a number",
                cut(text)
            )
        })?;
        match host {
            None => Ok(Self::Anonymous(id)),
            Some(host) => {
                check_host(host).map_err(|e| format!("`{}` is not an address: {e}", cut(text)))?;
                Ok(Self::Remote {
                    id,
                    host: host.into(),
                })
            }
        }
    }

    /// The name, for a named address.
    pub fn name(&self) -> Option<&str> {
        match self {
            Self::Named(n) => Some(n),
            Self::Anonymous(_) | Self::Remote { .. } => None,
        }
    }
}

/// Whether `host` can be a host's name in a cluster: a single NATS subject token.
///
/// # Errors
///
/// Why it cannot.
pub fn check_host(host: &str) -> Result<(), String> {
    if host.is_empty() || host.len() > 64 {
        return Err("a host's name is 1 to 64 characters".into());
    }
    if !host
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err("a host's name is ASCII letters, digits, `-` and `_`".into());
    }
    Ok(())
}

impl fmt::Display for ActorAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Named(n) => f.write_str(n),
            Self::Anonymous(id) => write!(f, "${id}"),
            Self::Remote { id, host } => write!(f, "${id}@{host}"),
        }
    }
}

/// A guest's text, cut and escaped for a message.
pub(crate) fn cut(text: &str) -> String {
    airssys_wasm_core::text::escape(text, 64).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_anonymous_addresses_parse_and_print_back() {
        for text in ["router", "worker-3", "orders.v2", "$17", "$17@node-1"] {
            assert_eq!(ActorAddress::parse(text).unwrap().to_string(), text);
        }
        assert_eq!(
            ActorAddress::parse("$17").unwrap(),
            ActorAddress::Anonymous(17)
        );
        assert_eq!(
            ActorAddress::parse("$17@node-1").unwrap(),
            ActorAddress::Remote {
                id: 17,
                host: "node-1".into()
            }
        );
        for bad in [
            "",
            "-x",
            "a b",
            "$",
            "$x",
            "é",
            &"a".repeat(129),
            "$1@",
            "$1@a.b",
            "$x@a",
            "a@b",
            &format!("$1@{}", "h".repeat(65)),
        ] {
            assert!(ActorAddress::parse(bad).is_err(), "{bad}");
        }
    }
}

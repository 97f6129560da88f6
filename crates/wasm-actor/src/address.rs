//! [`ActorAddress`]: where a message goes, named or anonymous, independent of where the
//! actor runs.

use std::fmt;
use std::sync::Arc;

pub(crate) use airssys_wasm_core::actor::check_name;

/// An actor's address: a name given in the system's tree (`router`, `worker-3`), or a
/// number for an actor spawned without one (written `$7`). It says nothing about the
/// process or machine the actor lives on.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ActorAddress {
    /// A name: ASCII letters, digits, `.`, `_` and `-`, starting with a letter or a
    /// digit, at most [`MAX_NAME_BYTES`](airssys_wasm_core::actor::MAX_NAME_BYTES).
    Named(Arc<str>),
    /// An actor spawned without a name.
    Anonymous(u64),
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

    /// Parses an address as a guest writes it: a name, or `$N` for an anonymous actor.
    ///
    /// # Errors
    ///
    /// Why `text` is not an address.
    pub fn parse(text: &str) -> Result<Self, String> {
        match text.strip_prefix('$') {
            Some(n) => n.parse().map(Self::Anonymous).map_err(|_| {
                format!(
                    "`{}` is not an address: `$` is followed by a number",
                    cut(text)
                )
            }),
            None => Self::named(text),
        }
    }

    /// The name, for a named address.
    pub fn name(&self) -> Option<&str> {
        match self {
            Self::Named(n) => Some(n),
            Self::Anonymous(_) => None,
        }
    }
}

impl fmt::Display for ActorAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Named(n) => f.write_str(n),
            Self::Anonymous(id) => write!(f, "${id}"),
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
        for text in ["router", "worker-3", "orders.v2", "$17"] {
            assert_eq!(ActorAddress::parse(text).unwrap().to_string(), text);
        }
        assert_eq!(
            ActorAddress::parse("$17").unwrap(),
            ActorAddress::Anonymous(17)
        );
        for bad in ["", "-x", "a b", "$", "$x", "é", &"a".repeat(129)] {
            assert!(ActorAddress::parse(bad).is_err(), "{bad}");
        }
    }
}

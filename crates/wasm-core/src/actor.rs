//! The vocabulary of actors that manifests and the actor system share: names (and
//! topics), [`Pattern`]s over them, [`ActorGrants`] (whom a component actor may
//! message, which topics it may publish and subscribe to, which components it may
//! spawn — nothing by default), a mailbox's [`Backpressure`], and supervision's
//! [`SupervisionStrategy`] and [`RestartPolicy`].

/// The longest name an actor (or a topic) may have, in bytes.
pub const MAX_NAME_BYTES: usize = 128;

/// Checks an actor's name (and a topic's: the same rules).
///
/// # Errors
///
/// Why `name` is not a name.
pub fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("a name cannot be empty".into());
    }
    if name.len() > MAX_NAME_BYTES {
        return Err(format!(
            "`{}` is {} bytes long: names are at most {MAX_NAME_BYTES}",
            crate::text::escape(name, 64),
            name.len()
        ));
    }
    let first_ok = name.as_bytes()[0].is_ascii_alphanumeric();
    let rest_ok = name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if !(first_ok && rest_ok) {
        return Err(format!(
            "`{}` is not a name: use ASCII letters, digits, `.`, `_` and `-`, starting with a \
             letter or a digit",
            crate::text::escape(name, 64)
        ));
    }
    Ok(())
}

/// What a full mailbox does with one more message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Backpressure {
    /// The sender waits for room (a guest's wait is bounded by its call's timeout).
    Block,
    /// The message goes to the dead letters; the sender is not told.
    Drop,
    /// The sender gets an error (`mailbox-full`) and the message goes nowhere.
    #[default]
    Error,
}

impl Backpressure {
    /// As written in a manifest: `block`, `drop` or `error`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Block => "block",
            Self::Drop => "drop",
            Self::Error => "error",
        }
    }

    /// Parses `block`, `drop` or `error`.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "block" => Some(Self::Block),
            "drop" => Some(Self::Drop),
            "error" => Some(Self::Error),
            _ => None,
        }
    }
}

/// Which children restart when one fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SupervisionStrategy {
    /// Only the failed child.
    #[default]
    OneForOne,
    /// Every child: the others are stopped (in reverse start order), then all start
    /// again in order.
    OneForAll,
    /// The failed child and those started after it.
    RestForOne,
}

/// When a child that ended is started again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RestartPolicy {
    /// Always.
    #[default]
    Permanent,
    /// After a failure, not after a normal stop.
    Transient,
    /// Never.
    Temporary,
}

impl SupervisionStrategy {
    /// As written in a system file: `one-for-one`, `one-for-all`, `rest-for-one`.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "one-for-one" => Some(Self::OneForOne),
            "one-for-all" => Some(Self::OneForAll),
            "rest-for-one" => Some(Self::RestForOne),
            _ => None,
        }
    }
}

impl RestartPolicy {
    /// As written in a system file: `permanent`, `transient`, `temporary`.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "permanent" => Some(Self::Permanent),
            "transient" => Some(Self::Transient),
            "temporary" => Some(Self::Temporary),
            _ => None,
        }
    }
}

/// A pattern over names: exact (`router`), a prefix (`worker-*`), or anything (`*`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern(String);

impl Pattern {
    /// Parses a pattern: a name, optionally ending in `*`, or `*` alone.
    ///
    /// # Errors
    ///
    /// Why it is not a pattern (a `*` elsewhere than at the end, a bad name).
    pub fn parse(text: &str) -> Result<Self, String> {
        let stem = text.strip_suffix('*').unwrap_or(text);
        if stem.contains('*') {
            return Err(format!(
                "`{text}`: `*` may only end a pattern (`worker-*`, `orders.*`, `*`)"
            ));
        }
        if !stem.is_empty() && !stem.starts_with('$') {
            // A stem is a name's beginning: the same characters.
            let probe = if stem.ends_with(['.', '-', '_']) {
                format!("{stem}x")
            } else {
                stem.to_owned()
            };
            check_name(&probe).map_err(|e| format!("`{text}`: {e}"))?;
        }
        Ok(Self(text.to_owned()))
    }

    /// Whether `name` matches.
    pub fn matches(&self, name: &str) -> bool {
        match self.0.strip_suffix('*') {
            Some(prefix) => name.starts_with(prefix),
            None => self.0 == name,
        }
    }

    /// As written.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// What a component actor may do beyond replying to what it is sent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ActorGrants {
    /// Addresses it may `send` and `request` to (anonymous addresses match `$*`).
    pub send: Vec<Pattern>,
    /// Topics it may publish to.
    pub publish: Vec<Pattern>,
    /// Topics it may subscribe to.
    pub subscribe: Vec<Pattern>,
    /// Components it may spawn.
    pub spawn: Vec<Pattern>,
}

impl ActorGrants {
    /// Nothing granted.
    pub fn none() -> Self {
        Self::default()
    }

    /// Everything granted (tests, trusted components).
    pub fn all() -> Self {
        let any = || vec![Pattern("*".into())];
        Self {
            send: any(),
            publish: any(),
            subscribe: any(),
            spawn: any(),
        }
    }

    /// Grants sending to what matches `pattern`.
    ///
    /// # Errors
    ///
    /// A bad pattern.
    pub fn allow_send(mut self, pattern: &str) -> Result<Self, String> {
        self.send.push(Pattern::parse(pattern)?);
        Ok(self)
    }

    /// Grants publishing to topics matching `pattern`.
    ///
    /// # Errors
    ///
    /// A bad pattern.
    pub fn allow_publish(mut self, pattern: &str) -> Result<Self, String> {
        self.publish.push(Pattern::parse(pattern)?);
        Ok(self)
    }

    /// Grants subscribing to topics matching `pattern`.
    ///
    /// # Errors
    ///
    /// A bad pattern.
    pub fn allow_subscribe(mut self, pattern: &str) -> Result<Self, String> {
        self.subscribe.push(Pattern::parse(pattern)?);
        Ok(self)
    }

    /// Grants spawning components whose names match `pattern`.
    ///
    /// # Errors
    ///
    /// A bad pattern.
    pub fn allow_spawn(mut self, pattern: &str) -> Result<Self, String> {
        self.spawn.push(Pattern::parse(pattern)?);
        Ok(self)
    }

    /// Whether `what` matches one of `list`.
    pub fn check(list: &[Pattern], what: &str) -> bool {
        list.iter().any(|p| p.matches(what))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_match_exactly_by_prefix_or_anything() {
        let p = |t| Pattern::parse(t).unwrap();
        assert!(p("router").matches("router"));
        assert!(!p("router").matches("router-2"));
        assert!(p("worker-*").matches("worker-7"));
        assert!(!p("worker-*").matches("workers"));
        assert!(p("*").matches("anything"));
        assert!(p("$*").matches("$12"));
        assert!(p("orders.*").matches("orders.new"));
        for bad in ["a*b", "**", "a b*", "-x"] {
            assert!(Pattern::parse(bad).is_err(), "{bad}");
        }
    }
}

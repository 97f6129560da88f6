//! [`ActorGrants`]: whom a component actor may message, which topics it may publish and
//! subscribe to, which components it may spawn — patterns, nothing granted by default.
//! Rust actors are host code and are not gated.

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
            crate::address::check_name(&probe).map_err(|e| format!("`{text}`: {e}"))?;
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

    pub(crate) fn check(list: &[Pattern], what: &str) -> bool {
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

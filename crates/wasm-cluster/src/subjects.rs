//! The NATS subjects of a cluster: `airssys.CLUSTER.actor.NAME` for messages to an actor
//! (its hosts form the queue group `NAME`: one of them takes each message),
//! `airssys.CLUSTER.topic.TOPIC` for publications (every host takes each) and
//! `airssys.CLUSTER.hosts` for heartbeats. Actor names and topics are letters, digits,
//! `.`, `_` and `-` (checked by the actor system): never a wildcard or a blank.

/// The subjects of one cluster.
#[derive(Debug, Clone)]
pub(crate) struct Subjects {
    prefix: String,
}

impl Subjects {
    pub(crate) fn new(cluster: &str) -> Self {
        Self {
            prefix: format!("airssys.{cluster}"),
        }
    }

    pub(crate) fn actor(&self, name: &str) -> String {
        format!("{}.actor.{name}", self.prefix)
    }

    pub(crate) fn topic(&self, topic: &str) -> String {
        format!("{}.topic.{topic}", self.prefix)
    }

    /// Every topic.
    pub(crate) fn topics(&self) -> String {
        format!("{}.topic.>", self.prefix)
    }

    /// The topic of a publication's subject.
    pub(crate) fn topic_of<'a>(&self, subject: &'a str) -> Option<&'a str> {
        subject
            .strip_prefix(self.prefix.as_str())?
            .strip_prefix(".topic.")
    }

    pub(crate) fn hosts(&self) -> String {
        format!("{}.hosts", self.prefix)
    }

    /// Durable tells to `name`: captured by the cluster's stream.
    pub(crate) fn durable(&self, name: &str) -> String {
        format!("{}.durable.{name}", self.prefix)
    }

    /// Every durable tell.
    pub(crate) fn durables(&self) -> String {
        format!("{}.durable.>", self.prefix)
    }
}

/// The JetStream stream of a cluster's durable mailboxes.
pub(crate) fn stream_name(cluster: &str) -> String {
    format!("AIRSSYS_{cluster}")
}

/// The JetStream consumer of `name`'s durable mailbox (a consumer's name has no `.`;
/// an actor's has no `~`).
pub(crate) fn consumer_name(name: &str) -> String {
    name.replace('.', "~")
}

/// Whether `name` can be a cluster's or a host's name: a single subject token.
pub(crate) fn check_token(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > 64 {
        return Err("a name is 1 to 64 characters".into());
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err("a name is ASCII letters, digits, `-` and `_`".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_and_topics_round_trip() {
        let s = Subjects::new("prod");
        assert_eq!(s.actor("orders.v2"), "airssys.prod.actor.orders.v2");
        assert_eq!(s.topic_of(&s.topic("news.eu")), Some("news.eu"));
        assert_eq!(s.topic_of("airssys.other.topic.x"), None);
        assert!(check_token("host-1").is_ok());
        for bad in ["", "a.b", "a b", "a*", ">"] {
            assert!(check_token(bad).is_err(), "{bad}");
        }
    }
}

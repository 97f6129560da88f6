//! The NATS subjects of a cluster: `airssys.CLUSTER.actor.NAME` for messages to an actor
//! (its hosts form the queue group `NAME`: one of them takes each message),
//! `airssys.CLUSTER.topic.TOPIC` for publications (every host with a subscriber takes
//! each) and
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

    /// Every message to an actor spawned on `host` (`$ID@HOST`: `…spawned.HOST.ID`).
    pub(crate) fn spawned_on(&self, host: &str) -> String {
        format!("{}.spawned.{host}.*", self.prefix)
    }

    /// Where a message to `to` goes: a name's subject, or for `$ID@HOST` that host's.
    pub(crate) fn to(&self, to: &str) -> String {
        match spawned_elsewhere(to) {
            Some((id, host)) => format!("{}.spawned.{host}.{id}", self.prefix),
            None => self.actor(to),
        }
    }

    /// The local address (`$ID`) of a message to an actor spawned here.
    pub(crate) fn spawned_of(subject: &str) -> Option<String> {
        let id: u64 = subject.rsplit('.').next()?.parse().ok()?;
        Some(format!("${id}"))
    }

    pub(crate) fn topic(&self, topic: &str) -> String {
        format!("{}.topic.{topic}", self.prefix)
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

/// The number and host of an address of the form `$ID@HOST` (a spawned actor of
/// another host, as `ActorAddress::Remote` prints), `None` for a name.
pub(crate) fn spawned_elsewhere(to: &str) -> Option<(&str, &str)> {
    to.strip_prefix('$')?.split_once('@')
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
    airssys_wasm_actor::check_host(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_and_topics_round_trip() {
        let s = Subjects::new("prod");
        assert_eq!(s.actor("orders.v2"), "airssys.prod.actor.orders.v2");
        assert_eq!(s.topic("news.eu"), "airssys.prod.topic.news.eu");
        assert_eq!(s.to("orders"), "airssys.prod.actor.orders");
        assert_eq!(s.to("$7@node-1"), "airssys.prod.spawned.node-1.7");
        assert_eq!(
            Subjects::spawned_of("airssys.prod.spawned.node-1.7").as_deref(),
            Some("$7")
        );
        assert!(check_token("host-1").is_ok());
        for bad in ["", "a.b", "a b", "a*", ">"] {
            assert!(check_token(bad).is_err(), "{bad}");
        }
    }
}

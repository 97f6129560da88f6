//! Which other hosts are alive and which names each serves, from their heartbeats: a
//! message to a name no live host serves is refused at once (`no actor has the
//! address`), as within one process; a host silent for longer than the host timeout
//! is gone — logged with the names it served.
//!
//! A heartbeat is text: `beat HOST`, `hello HOST` (a host that just joined: everyone
//! answers with a beat) or `bye HOST` (a host leaving), then one served name per line,
//! `+NAME` for a durable mailbox.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use airssys_wasm_core::actor::{MAX_NAME_BYTES, check_name};

/// The most names one heartbeat may list (more are ignored, and logged).
pub(crate) const MAX_NAMES: usize = 10_000;

/// What a heartbeat says.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Beat {
    Hello(String),
    /// A host, the names it serves, and which of them are durable.
    Alive(String, HashSet<String>, HashSet<String>),
    Bye(String),
}

/// A heartbeat of `kind` (`beat`, `hello`, `bye`) from `host` listing `names`.
pub(crate) fn beat_text<'a>(
    kind: &str,
    host: &str,
    names: impl Iterator<Item = &'a str>,
) -> String {
    let mut text = format!("{kind} {host}");
    for name in names.take(MAX_NAMES) {
        text.push('\n');
        text.push_str(name);
    }
    text
}

/// A heartbeat from the wire, when it is one.
pub(crate) fn parse_beat(payload: &[u8]) -> Option<Beat> {
    let text = std::str::from_utf8(payload).ok()?;
    let mut lines = text.lines();
    let (kind, host) = lines.next()?.split_once(' ')?;
    crate::subjects::check_token(host).ok()?;
    let host = host.to_owned();
    Some(match kind {
        "hello" => Beat::Hello(host),
        "bye" => Beat::Bye(host),
        "beat" => {
            let (mut names, mut durable) = (HashSet::new(), HashSet::new());
            for line in lines.take(MAX_NAMES) {
                let (name, is_durable) = match line.strip_prefix('+') {
                    Some(n) => (n, true),
                    None => (line, false),
                };
                if name.len() <= MAX_NAME_BYTES && check_name(name).is_ok() {
                    if is_durable {
                        durable.insert(name.to_owned());
                    }
                    names.insert(name.to_owned());
                }
            }
            Beat::Alive(host, names, durable)
        }
        _ => return None,
    })
}

#[derive(Debug)]
struct Host {
    names: HashSet<String>,
    durable: HashSet<String>,
    seen: Instant,
}

/// The live hosts other than this one.
#[derive(Debug)]
pub(crate) struct Directory {
    hosts: Mutex<HashMap<String, Host>>,
    timeout: Duration,
    /// Whether any host ever listed a durable mailbox: when none did (most clusters),
    /// a send need not look.
    any_durable: AtomicBool,
}

impl Directory {
    pub(crate) fn new(timeout: Duration) -> Self {
        Self {
            hosts: Mutex::default(),
            timeout,
            any_durable: AtomicBool::new(false),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Host>> {
        self.hosts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// `host` is alive and serves `names` (`durable` among them); whether it is new.
    pub(crate) fn beat(
        &self,
        host: String,
        names: HashSet<String>,
        durable: HashSet<String>,
    ) -> bool {
        let seen = Instant::now();
        if !durable.is_empty() {
            self.any_durable.store(true, Ordering::Release);
        }
        self.lock()
            .insert(
                host,
                Host {
                    names,
                    durable,
                    seen,
                },
            )
            .is_none()
    }

    /// Whether a live host serves `name` with a durable mailbox.
    pub(crate) fn durable(&self, name: &str) -> bool {
        if !self.any_durable.load(Ordering::Acquire) {
            return false;
        }
        self.lock()
            .values()
            .any(|h| h.durable.contains(name) && h.seen.elapsed() <= self.timeout)
    }

    /// `host` left; the names it served.
    pub(crate) fn leave(&self, host: &str) -> Option<Vec<String>> {
        self.lock()
            .remove(host)
            .map(|h| h.names.into_iter().collect())
    }

    /// Hosts silent for longer than the timeout, removed, with the names they served.
    pub(crate) fn expire(&self) -> Vec<(String, Vec<String>)> {
        let mut hosts = self.lock();
        let gone: Vec<String> = hosts
            .iter()
            .filter(|(_, h)| h.seen.elapsed() > self.timeout)
            .map(|(name, _)| name.clone())
            .collect();
        gone.into_iter()
            .filter_map(|name| {
                let h = hosts.remove(&name)?;
                Some((name, h.names.into_iter().collect()))
            })
            .collect()
    }

    /// Whether a live host serves `name`.
    pub(crate) fn serves(&self, name: &str) -> bool {
        self.lock()
            .values()
            .any(|h| h.names.contains(name) && h.seen.elapsed() <= self.timeout)
    }

    /// Whether `host` is alive.
    pub(crate) fn alive(&self, host: &str) -> bool {
        self.lock()
            .get(host)
            .is_some_and(|h| h.seen.elapsed() <= self.timeout)
    }

    /// The live hosts, sorted.
    pub(crate) fn hosts(&self) -> Vec<String> {
        let mut hosts: Vec<String> = self
            .lock()
            .iter()
            .filter(|(_, h)| h.seen.elapsed() <= self.timeout)
            .map(|(n, _)| n.clone())
            .collect();
        hosts.sort();
        hosts
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn beats_parse_and_bad_names_are_dropped() {
        let text = beat_text("beat", "h1", ["router", "+pool.a"].into_iter());
        assert_eq!(
            parse_beat(text.as_bytes()),
            Some(Beat::Alive(
                "h1".into(),
                ["router", "pool.a"].map(String::from).into(),
                ["pool.a".to_owned()].into()
            ))
        );
        assert_eq!(parse_beat(b"hello h2"), Some(Beat::Hello("h2".into())));
        assert_eq!(parse_beat(b"bye h2"), Some(Beat::Bye("h2".into())));
        assert_eq!(parse_beat(b"beat h.1"), None);
        assert_eq!(parse_beat(b"shout h1"), None);
        let Some(Beat::Alive(_, names, _)) = parse_beat(b"beat h1\nok\nnot ok\n*\n+") else {
            panic!("a beat");
        };
        assert_eq!(names, ["ok".to_owned()].into());
    }

    #[test]
    fn a_silent_host_expires_and_a_leaving_one_is_gone_at_once() {
        let d = Directory::new(Duration::from_millis(30));
        assert!(d.beat("h1".into(), ["a".to_owned()].into(), HashSet::new()));
        assert!(!d.beat("h1".into(), ["a".to_owned()].into(), HashSet::new()));
        d.beat(
            "h2".into(),
            ["b".to_owned()].into(),
            ["b".to_owned()].into(),
        );
        assert!(d.serves("a") && d.serves("b") && !d.serves("c"));
        assert!(d.durable("b") && !d.durable("a"));
        assert_eq!(d.leave("h2"), Some(vec!["b".to_owned()]));
        assert!(!d.serves("b"));
        std::thread::sleep(Duration::from_millis(40));
        assert!(!d.serves("a"));
        assert_eq!(d.expire(), vec![("h1".to_owned(), vec!["a".to_owned()])]);
        assert!(d.hosts().is_empty());
    }
}

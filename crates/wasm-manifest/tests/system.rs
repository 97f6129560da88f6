//! `System.toml`: a whole tree read back, and each kind of mistake refused at its line
//! with the fix — unknown keys, cycles, names used twice (pools expanded), unknown
//! supervisors, two roots, missing components, bad words.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use airssys_wasm_core::actor::{RestartPolicy, SupervisionStrategy};
use airssys_wasm_manifest::{ManifestError, ManifestErrorKind, SystemFile};

struct Fixture {
    dir: tempfile::TempDir,
}

impl Fixture {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        for c in ["router", "worker"] {
            std::fs::create_dir(dir.path().join(c)).unwrap();
            std::fs::write(dir.path().join(c).join("Component.toml"), "").unwrap();
        }
        Self { dir }
    }

    fn parse(&self, text: &str) -> Result<SystemFile, ManifestError> {
        SystemFile::parse(text, self.dir.path().join("System.toml"))
    }

    fn err(&self, text: &str, line: usize, needles: &[&str]) -> ManifestError {
        let e = self.parse(text).unwrap_err();
        let msg = e.to_string();
        assert_eq!(e.line, line, "{msg}");
        for n in needles {
            assert!(msg.contains(n), "`{n}` missing from: {msg}");
        }
        e
    }
}

const TREE: &str = r#"[system]
name = "orders"
shutdown = "2s"

[[supervisor]]
name = "top"
strategy = "one-for-one"
max_restarts = 5
within = "10s"

[[actor]]
name = "router"
component = "router"

[[supervisor]]
name = "workers"
parent = "top"
strategy = "rest-for-one"
backoff = "10ms"

[[actor]]
name = "worker"
component = "worker/Component.toml"
supervisor = "workers"
pool = 3
restart = "transient"

[spawn]
helper = "worker"
"#;

#[test]
fn a_tree_reads_back_with_its_defaults() {
    let f = Fixture::new();
    let s = f.parse(TREE).unwrap();
    assert_eq!(s.name.as_deref(), Some("orders"));
    assert_eq!(s.shutdown, Duration::from_secs(2));
    assert_eq!(s.root().name, "top");
    assert_eq!(s.root().max_restarts, 5);
    let workers = &s.supervisors[1];
    assert_eq!(
        (workers.parent.as_deref(), workers.strategy),
        (Some("top"), SupervisionStrategy::RestForOne)
    );
    assert_eq!(
        (workers.max_restarts, workers.within),
        (3, Duration::from_secs(60))
    );
    assert_eq!(s.actors[0].supervisor, "top", "the root by default");
    assert_eq!(
        s.actors[1].member_names(),
        ["worker-1", "worker-2", "worker-3"]
    );
    assert_eq!(s.actors[1].restart, RestartPolicy::Transient);
    assert!(s.actors[1].component.ends_with("worker/Component.toml"));
    assert!(
        s.actors[0].position < s.supervisors[1].position,
        "file order is start order"
    );
    assert_eq!(s.spawn[0].name, "helper");
    // No supervisor at all: an implicit root.
    let s = f
        .parse("[[actor]]\nname = \"a\"\ncomponent = \"router\"\n")
        .unwrap();
    assert_eq!(
        (s.root().name.as_str(), s.actors[0].supervisor.as_str()),
        ("root", "root")
    );
}

#[test]
fn mistakes_are_refused_at_their_line_with_the_fix() {
    let f = Fixture::new();
    let e = f.err(
        &TREE.replace("pool = 3", "pools = 3"),
        25,
        &["unknown key `pools` in [actor]", "did you mean `pool`?"],
    );
    assert_eq!(e.kind, ManifestErrorKind::UnknownKey);
    f.err(
        &TREE.replace("parent = \"top\"", "parent = \"workers\""),
        15,
        &[
            "cycle: workers → workers",
            "give one of them another parent",
        ],
    );
    f.err(
        &format!("{TREE}\n[[supervisor]]\nname = \"a\"\nparent = \"b\"\n\n[[supervisor]]\nname = \"b\"\nparent = \"a\"\n"),
        31,
        &["cycle: a → b → a"],
    );
    f.err(
        &format!("{TREE}\n[[actor]]\nname = \"worker-2\"\ncomponent = \"router\"\n"),
        31,
        &[
            "the name `worker-2` is used twice (first on line 21)",
            "rename one",
        ],
    );
    f.err(
        &TREE.replace("supervisor = \"workers\"", "supervisor = \"wrkers\""),
        21,
        &[
            "the supervisor `wrkers` is not a supervisor of this system",
            "known supervisors: top, workers",
        ],
    );
    f.err(
        &TREE.replace("parent = \"top\"\n", ""),
        15,
        &[
            "`workers` has no parent, and neither has `top`",
            "parent = \"top\"",
        ],
    );
    let e = f.err(
        &TREE.replace("component = \"router\"", "component = \"billing\""),
        13,
        &["there is no component manifest at `billing`"],
    );
    assert_eq!(e.kind, ManifestErrorKind::MissingComponent);
    f.err(
        &TREE.replace("\"rest-for-one\"", "\"rest_for_one\""),
        18,
        &["`rest_for_one` is not a strategy", "\"one-for-all\""],
    );
    f.err(
        &TREE.replace("pool = 3", "pool = 0"),
        25,
        &["a pool has 1 to 10000 actors"],
    );
    f.err(
        &TREE.replace("name = \"router\"", "name = \"the router\""),
        12,
        &["is not a name"],
    );
}

#[test]
fn a_cluster_section_reads_back_and_its_mistakes_are_refused_at_their_line() {
    use airssys_wasm_manifest::Setting;
    let f = Fixture::new();
    let text = "[cluster]\nnats = \"nats://a:4222, nats://b:4222\"\nname = \"orders\"\nhost = \"node-1\"\nheartbeat = \"500ms\"\nuser = \"app\"\npassword = { env = \"NATS_PASSWORD\" }\n";
    let file = f.parse(text).unwrap();
    let c = file.cluster.unwrap();
    assert_eq!(c.nats, Setting::Text("nats://a:4222, nats://b:4222".into()));
    assert_eq!(
        (c.name.as_deref(), c.host.as_deref()),
        (Some("orders"), Some("node-1"))
    );
    assert_eq!(c.heartbeat, Some(Duration::from_millis(500)));
    assert_eq!(c.password, Some(Setting::Env("NATS_PASSWORD".into())));
    assert!(f.parse(TREE).unwrap().cluster.is_none());
    // Shown redacted.
    let shown = format!("{:?}", Setting::Text("nats://u:pw@h:4222".into()));
    assert!(!shown.contains("pw"), "{shown}");
    assert_eq!(format!("{:?}", Setting::Text("s3cret".into())), "Text(***)");

    f.err(
        "[cluster]\nnats = \"nats://h:1\"\nheartbeta = \"1s\"\n",
        3,
        &["heartbeta", "heartbeat"],
    );
    f.err("[cluster]\nname = \"x\"\n", 1, &["nats"]);
    f.err(
        "[cluster]\nnats = \"http://h:1\"\n",
        2,
        &["not a NATS server address", "nats://HOST:PORT"],
    );
    let e = f.err(
        "[cluster]\nnats = \"redis://u:pw@h:1\"\n",
        2,
        &["not a NATS"],
    );
    assert!(!e.to_string().contains("pw"), "{e}");
    f.err(
        "[cluster]\nnats = \"nats://h:1\"\nuser = \"app\"\n",
        3,
        &["go together"],
    );
    f.err(
        "[cluster]\nnats = \"nats://h:1\"\nuser = \"app\"\npassword = \"p\"\ntoken = \"t\"\n",
        5,
        &["one way"],
    );
    f.err(
        "[cluster]\nnats = \"nats://h:1\"\nhost = \"a.b\"\n",
        3,
        &["not a name"],
    );
    f.err("[cluster]\nnats = { environment = \"X\" }\n", 2, &["env"]);
    let durable = f
        .parse(&format!(
            "{TREE}\n[cluster]\nnats = \"nats://h:1\"\ndurable = [\"router\"]\nack_wait = \"2s\"\n"
        ))
        .unwrap()
        .cluster
        .unwrap();
    assert_eq!(durable.durable, vec!["router".to_owned()]);
    assert_eq!(durable.ack_wait, Some(Duration::from_secs(2)));
    let lines = TREE.lines().count();
    let single = "[[actor]]\nname = \"boss\"\ncomponent = \"router\"\nsingleton = true\n";
    f.err(
        single,
        1,
        &[
            "is a singleton, but this system joins no cluster",
            "[cluster]",
        ],
    );
    let joined = f
        .parse(&format!("{single}\n[cluster]\nnats = \"nats://h:1\"\n"))
        .unwrap();
    assert!(joined.actors[0].singleton);
    f.err(
        "[[actor]]\nname = \"boss\"\ncomponent = \"router\"\nsingleton = true\npool = 2\n\n[cluster]\nnats = \"nats://h:1\"\n",
        5,
        &["a singleton has no `pool`"],
    );
    f.err(
        &format!("{TREE}\n[cluster]\nnats = \"nats://h:1\"\ndurable = [\"ledger\"]\n"),
        lines + 4,
        &["no [[actor]] here is named `ledger`", "actors here: router"],
    );
}

#[test]
fn an_http_section_reads_back_with_its_defaults_and_its_mistakes_are_refused_at_their_line() {
    let f = Fixture::new();
    let lines = TREE.lines().count();
    let http = |rest: &str| format!("{TREE}\n[http]\n{rest}");
    let file = f
        .parse(&http(
            "listen = \"127.0.0.1:0\"\n\n[[http.route]]\npath = \"/orders\"\nactor = \"router\"\n\n[[http.route]]\npath = \"/work\"\nactor = \"worker\"\nmethods = [\"GET\", \"PUT\"]\n",
        ))
        .unwrap();
    let h = file.http.unwrap();
    assert_eq!(h.listen, "127.0.0.1:0".parse().unwrap());
    assert_eq!(h.timeout, Duration::from_secs(5));
    assert_eq!(h.header_timeout, Duration::from_secs(10));
    assert_eq!(
        (h.max_body, h.max_in_flight, h.max_connections),
        (1 << 20, 256, 1024)
    );
    let routes: Vec<(&str, &str, Vec<String>)> = h
        .routes
        .iter()
        .map(|r| (r.path.as_str(), r.actor.as_str(), r.methods.clone()))
        .collect();
    assert_eq!(
        routes,
        [
            ("/orders", "router", vec!["POST".to_owned()]),
            ("/work", "worker", vec!["GET".to_owned(), "PUT".to_owned()]),
        ]
    );
    let set = f
        .parse(&http(
            "listen = \"[::1]:8080\"\ntimeout = \"250ms\"\nmax_body = \"4KiB\"\nmax_in_flight = 8\nmax_connections = 16\nheader_timeout = \"2s\"\n[[http.route]]\npath = \"/o\"\nactor = \"router\"\n",
        ))
        .unwrap()
        .http
        .unwrap();
    assert_eq!(set.timeout, Duration::from_millis(250));
    assert_eq!(
        (set.max_body, set.max_in_flight, set.max_connections),
        (4096, 8, 16)
    );
    assert!(f.parse(TREE).unwrap().http.is_none());

    let route = "\n[[http.route]]\npath = \"/o\"\nactor = \"router\"\n";
    let at = |n: usize| lines + 2 + n;
    f.err(
        &http(&format!("timeout = \"1s\"\n{route}")),
        at(0),
        &["listen", "127.0.0.1:8080"],
    );
    f.err(
        &http(&format!("listen = \"localhost:80\"\n{route}")),
        at(1),
        &["not an address", "IP:PORT"],
    );
    f.err(
        &http(&format!("listen = \"127.0.0.1:0\"\nmax_bdy = 1\n{route}")),
        at(2),
        &["max_bdy", "max_body"],
    );
    f.err(
        &http(&format!(
            "listen = \"127.0.0.1:0\"\ntimeout = \"0s\"\n{route}"
        )),
        at(2),
        &["zero timeout"],
    );
    f.err(
        &http(&format!(
            "listen = \"127.0.0.1:0\"\nmax_in_flight = 0\n{route}"
        )),
        at(2),
        &["must be 1 to"],
    );
    f.err(
        &http("listen = \"127.0.0.1:0\"\n"),
        at(0),
        &["route", "[[http.route]]"],
    );
    let bad = |r: &str| http(&format!("listen = \"127.0.0.1:0\"\n\n[[http.route]]\n{r}"));
    f.err(
        &bad("path = \"orders\"\nactor = \"router\"\n"),
        at(4),
        &["not a route path", "starting with `/`"],
    );
    f.err(
        &bad("path = \"/o?x=1\"\nactor = \"router\"\n"),
        at(4),
        &["not a route path"],
    );
    f.err(
        &bad("path = \"/o\"\nactor = \"nobody\"\n"),
        at(5),
        &["no [[actor]] here is named `nobody`", "router"],
    );
    f.err(
        &bad("path = \"/o\"\nactor = \"router\"\nmethods = [\"post\"]\n"),
        at(6),
        &["not an HTTP method", "upper case"],
    );
    f.err(
        &bad("path = \"/o\"\nactor = \"router\"\nmethods = [\"GET\", \"GET\"]\n"),
        at(6),
        &["listed twice"],
    );
    f.err(
        &bad("path = \"/o\"\nactr = \"router\"\n"),
        at(5),
        &["actr", "actor"],
    );
    f.err(
        &bad("path = \"/o\"\nactor = \"router\"\n\n[[http.route]]\npath = \"/o\"\nactor = \"worker\"\n"),
        at(8),
        &["routed twice", "one route per path"],
    );
    // With a cluster, another host may serve the name.
    let remote = "[cluster]\nnats = \"nats://h:1\"\n\n[http]\nlisten = \"127.0.0.1:0\"\n\n[[http.route]]\npath = \"/o\"\nactor = \"elsewhere\"\n";
    assert_eq!(
        f.parse(remote).unwrap().http.unwrap().routes[0].actor,
        "elsewhere"
    );
}

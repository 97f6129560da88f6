//! A real `nats-server` of the test's own on 127.0.0.1: a free port, JetStream in a
//! temporary directory, stopped (killed) when dropped, restartable on the same port.
//! `scripts/install-test-servers` installs the binary from the distribution's packages;
//! where it is missing, [`NatsServer::start`] returns `None` and the test skips with a
//! loud banner — except under CI (`CI=true`), where that is a failure.

use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running `nats-server`.
#[derive(Debug)]
pub struct NatsServer {
    child: Option<Child>,
    port: u16,
    args: Vec<String>,
    binary: PathBuf,
    dir: PathBuf,
}

/// Where `scripts/install-test-servers` puts `nats-server` (or `$AIRSSYS_NATS_SERVER`).
pub fn nats_server_binary() -> Option<PathBuf> {
    let candidates = [
        std::env::var_os("AIRSSYS_NATS_SERVER").map(PathBuf::from),
        Some(PathBuf::from("/usr/sbin/nats-server")),
        Some(PathBuf::from("/usr/bin/nats-server")),
        Some(PathBuf::from("/usr/local/bin/nats-server")),
    ];
    candidates.into_iter().flatten().find(|p| p.is_file())
}

impl NatsServer {
    /// A server on a free 127.0.0.1 port with JetStream on, `extra` arguments added
    /// (`--user`, `--pass`, …); `None` (after a banner) where none is installed.
    ///
    /// # Panics
    ///
    /// Under CI when no server is installed; when it does not listen within 10 s.
    pub fn start(extra: &[&str]) -> Option<Self> {
        let Some(binary) = nats_server_binary() else {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "no nats-server under CI: scripts/install-test-servers should have installed it"
            );
            eprintln!(
                "\n*** SKIPPED: no nats-server (install it with `apt-get install nats-server`, \
                 as .ci/run does, or set AIRSSYS_NATS_SERVER) ***\n"
            );
            return None;
        };
        #[allow(clippy::expect_used)]
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let dir = std::env::temp_dir().join(format!("airssys-nats-{}-{port}", std::process::id()));
        let mut server = Self {
            child: None,
            port,
            args: extra.iter().map(|a| (*a).to_owned()).collect(),
            binary,
            dir,
        };
        server.restart();
        Some(server)
    }

    /// `nats://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// The server's process id while it runs (to read its CPU time, say).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Kills the server at once (clients see the connection drop).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port, with the same store (after [`kill`](Self::kill)).
    ///
    /// # Panics
    ///
    /// When it cannot be started or does not listen within 10 s.
    pub fn restart(&mut self) {
        self.kill();
        #[allow(clippy::expect_used)]
        let child = Command::new(&self.binary)
            .args([
                "-a",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-js",
                "-sd",
            ])
            .arg(&self.dir)
            .args(&self.args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nats-server starts");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "nats-server did not listen on {}",
                self.url()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

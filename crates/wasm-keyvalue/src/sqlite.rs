//! [`SqliteBackend`]: each bucket is one SQLite database file in a directory.
//!
//! One file per bucket, so that unrelated components never wait on one another's
//! locks; WAL journaling, so that readers do not wait on a writer; each operation one
//! transaction (`BEGIN IMMEDIATE` for writes), so that it is atomic within the process
//! and across processes sharing the directory, and a batch is all or nothing. The byte
//! total a bucket holds is kept in the same file and updated in the same transaction as
//! the write it counts.
//!
//! Each statement checks the deadline of the call it works for
//! ([`call_deadline`], through SQLite's progress handler) and stops there: the call's
//! timeout cannot interrupt a statement from outside, since it runs inside the
//! call's poll. The directory is made `0700` and each file `0600` (bucket data is the
//! components' own), files are opened without following a symbolic link, and the
//! schema is not trusted to run functions.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, OptionalExtension, TransactionBehavior, params};

use airssys_wasm_core::keyvalue::{
    BucketId, Counter, ENTRY_OVERHEAD_BYTES, KeyValueBackend, KeyValueBucket, KeyValueError,
    KvFuture, call_deadline, check_quota, entry_size, incremented,
};

/// The schema version this code writes (`PRAGMA user_version`): 2 counts
/// [`ENTRY_OVERHEAD_BYTES`] per entry in the byte total (1 did not; a version-1 file is
/// brought up to 2 when opened).
const SCHEMA_VERSION: i64 = 2;

/// SQLite virtual-machine steps between two looks at the call's deadline (a few
/// microseconds of work).
const DEADLINE_CHECK_STEPS: i32 = 1_000;

/// The file name's suffix.
const SUFFIX: &str = ".sqlite";

/// What a write has survived when it returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Durability {
    /// The process being killed (SIGKILL, a panic, an abort): the write is in the
    /// operating system's hands (`synchronous = NORMAL` under WAL). A power loss may
    /// lose the last writes, never the database's consistency. The default: a write
    /// costs microseconds.
    #[default]
    ProcessCrash,
    /// A power loss too: the write is on the disk (`synchronous = FULL`, an `fsync` per
    /// write, typically milliseconds).
    PowerLoss,
}

impl Durability {
    /// Its name in a runtime configuration: `process-crash` or `power-loss`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ProcessCrash => "process-crash",
            Self::PowerLoss => "power-loss",
        }
    }
}

/// Buckets as SQLite files in one directory: `component.<name>.sqlite` for a
/// component's default bucket, `shared.<name>.sqlite` for a shared one.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use airssys_wasm_core::keyvalue::{BucketId, KeyValueBackend};
/// use airssys_wasm_keyvalue::SqliteBackend;
///
/// let dir = tempfile::tempdir()?;
/// let id = BucketId::component_default("hello");
/// {
///     let backend = SqliteBackend::open(dir.path())?;
///     backend.open(&id).await?.set("greeting", b"hi", 1 << 20).await?;
/// }
/// // Another backend on the same directory (another process, a restart) sees it.
/// let backend = SqliteBackend::open(dir.path())?;
/// assert_eq!(backend.open(&id).await?.get("greeting").await?, Some(b"hi".to_vec()));
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct SqliteBackend {
    dir: PathBuf,
    durability: Durability,
    busy_timeout: Duration,
    open: Mutex<HashMap<BucketId, Arc<SqliteBucket>>>,
}

impl SqliteBackend {
    /// The longest a write waits for another process's write to the same bucket. The
    /// wait is asynchronous (retries a few milliseconds apart): a call's timeout ends it
    /// sooner, and it holds no thread.
    pub const DEFAULT_BUSY_TIMEOUT: Duration = Duration::from_secs(5);

    /// The buckets in `dir`, created (with its parents) if missing.
    ///
    /// # Errors
    ///
    /// [`KeyValueError::Backend`] naming the directory when it cannot be created, is not
    /// a directory, or cannot be written.
    pub fn open(dir: impl AsRef<Path>) -> Result<Self, KeyValueError> {
        let dir = dir.as_ref().to_path_buf();
        let fail = |message: String| KeyValueError::Backend {
            store: dir.display().to_string(),
            message,
        };
        if dir.exists() && !dir.is_dir() {
            return Err(fail(
                "is not a directory; choose a directory for the key-value data (--data-dir)".into(),
            ));
        }
        private_dir(&dir).map_err(|e| {
            fail(format!(
                "cannot be created: {e}; choose a writable directory (--data-dir)"
            ))
        })?;
        // Writable? (Creating a file is what opening a new bucket will do.)
        let probe = dir.join(format!(".write-probe-{}", std::process::id()));
        std::fs::write(&probe, b"")
            .and_then(|()| std::fs::remove_file(&probe))
            .map_err(|e| {
                fail(format!(
                    "cannot be written: {e}; choose a writable directory (--data-dir)"
                ))
            })?;
        Ok(Self {
            dir,
            durability: Durability::default(),
            busy_timeout: Self::DEFAULT_BUSY_TIMEOUT,
            open: Mutex::default(),
        })
    }

    /// With this durability (default [`Durability::ProcessCrash`]).
    #[must_use]
    pub fn durability(mut self, durability: Durability) -> Self {
        self.durability = durability;
        self
    }

    /// With this bound on waiting for another process's write (default
    /// [`DEFAULT_BUSY_TIMEOUT`](Self::DEFAULT_BUSY_TIMEOUT)).
    #[must_use]
    pub fn busy_timeout(mut self, timeout: Duration) -> Self {
        self.busy_timeout = timeout;
        self
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The file of bucket `id`.
    pub fn path_of(&self, id: &BucketId) -> PathBuf {
        self.dir.join(format!("{}{SUFFIX}", id.storage_name()))
    }

    /// Opens bucket `id` now (creating it when missing), checking its file: what a
    /// host calls at start for the buckets it knows will be used, so that a corrupt
    /// or foreign file is an error then rather than a guest's failed `open` later.
    ///
    /// # Errors
    ///
    /// [`KeyValueError::Backend`] naming the file, with what is wrong and the fix.
    pub fn open_now(&self, id: &BucketId) -> Result<(), KeyValueError> {
        self.bucket(id).map(drop)
    }

    fn bucket(&self, id: &BucketId) -> Result<Arc<SqliteBucket>, KeyValueError> {
        let open = || self.open.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(b) = open().get(id) {
            return Ok(Arc::clone(b));
        }
        // Connected without the map's lock: opening a file (which may wait on another
        // process) holds up no other bucket's open.
        let path = self.path_of(id);
        let conn = connect(&path, self.durability, self.busy_timeout).map_err(|e| {
            KeyValueError::Backend {
                store: path.display().to_string(),
                message: e,
            }
        })?;
        let b = Arc::new(SqliteBucket {
            id: id.clone(),
            path,
            busy_timeout: self.busy_timeout,
            conn: tokio::sync::Mutex::new(conn),
        });
        // Two first opens at once: the first one in is the bucket.
        Ok(Arc::clone(open().entry(id.clone()).or_insert(b)))
    }
}

/// Creates `dir` and its missing parents, readable by this user only (`0700`).
fn private_dir(dir: &Path) -> std::io::Result<()> {
    let mut b = std::fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut b, 0o700);
    b.create(dir)
}

/// Creates the bucket file `path` when missing, readable by this user only (`0600`;
/// SQLite gives its WAL and shared-memory files the same mode), refusing a symbolic
/// link.
fn private_file(path: &Path) -> std::io::Result<()> {
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create(true).truncate(false);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        o.mode(0o600).custom_flags(libc::O_NOFOLLOW);
    }
    o.open(path).map(drop)
}

/// How long SQLite itself waits, blocking its thread, for a lock held by another
/// process, once a bucket is open: each attempt of a write (retried asynchronously up
/// to [`SqliteBackend::busy_timeout`]), or a read meeting a checkpoint. Opening a file
/// (setting it up against a concurrent opener) waits up to the busy timeout.
const BLOCKING_BUSY: Duration = Duration::from_millis(5);

/// Between two attempts to take a bucket's write lock held by another process.
const RETRY: Duration = Duration::from_millis(2);

/// Opens (creating) a bucket file and checks that it is one of ours.
///
/// Processes opening a new file at once race to set it up: a step that finds the file
/// locked, or cannot switch it to WAL yet (which needs it to itself), is retried until
/// `busy` has passed.
fn connect(path: &Path, durability: Durability, busy: Duration) -> Result<Connection, String> {
    let give_up = std::time::Instant::now() + busy;
    loop {
        match try_connect(path, durability, busy) {
            Err(Setup::Contended(_)) if std::time::Instant::now() < give_up => {
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(Setup::Contended(message) | Setup::Failed(message)) => return Err(message),
            Ok(conn) => return Ok(conn),
        }
    }
}

/// Why setting up a bucket's file failed.
enum Setup {
    /// Another process had it at that moment: worth another try.
    Contended(String),
    /// It is not usable.
    Failed(String),
}

fn try_connect(path: &Path, durability: Durability, busy: Duration) -> Result<Connection, Setup> {
    private_file(path).map_err(|e| Setup::Failed(format!("cannot be created: {e}")))?;
    let mut conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
            | OpenFlags::SQLITE_OPEN_NOFOLLOW,
    )
    .map_err(|e| Setup::Failed(format!("cannot be opened: {e}")))?;
    conn.busy_timeout(busy)
        .map_err(|e| Setup::Failed(e.to_string()))?;
    // A file is data, never code: no functions with side effects from its schema.
    conn.execute_batch("PRAGMA trusted_schema = OFF")
        .map_err(|e| Setup::Failed(e.to_string()))?;
    // Each statement stops at the deadline of the call it works for.
    conn.progress_handler(
        DEADLINE_CHECK_STEPS,
        Some(|| call_deadline().is_some_and(|d| std::time::Instant::now() >= d)),
    )
    .map_err(|e| Setup::Failed(e.to_string()))?;
    let unreadable = |e: rusqlite::Error| {
        let message = format!(
            "is not a readable key-value database ({e}); move it away (the bucket then \
             starts empty) or restore it from a backup"
        );
        if is_busy(&e) {
            Setup::Contended(message)
        } else {
            Setup::Failed(message)
        }
    };
    let mode: String = conn
        .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
        .map_err(unreadable)?;
    if !mode.eq_ignore_ascii_case("wal") {
        // Another process may have the new file open: switching needs it alone.
        return Err(Setup::Contended(format!(
            "cannot use write-ahead logging (journal mode stays `{mode}`); keep the data \
             directory on a local file system"
        )));
    }
    let sync = match durability {
        Durability::ProcessCrash => "NORMAL",
        Durability::PowerLoss => "FULL",
    };
    conn.execute_batch(&format!("PRAGMA synchronous = {sync}"))
        .map_err(unreadable)?;
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(unreadable)?;
    match version {
        0 => {
            conn.execute_batch(&format!(
                "BEGIN IMMEDIATE;
                 CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY NOT NULL, value BLOB NOT NULL) WITHOUT ROWID;
                 CREATE TABLE IF NOT EXISTS used (id INTEGER PRIMARY KEY CHECK (id = 0), bytes INTEGER NOT NULL);
                 INSERT OR IGNORE INTO used VALUES (0, 0);
                 PRAGMA user_version = {SCHEMA_VERSION};
                 COMMIT;"
            ))
            .map_err(unreadable)?;
        }
        1 => {
            // Version 1 counted keys and values only: add each entry's overhead — once,
            // though another process may be upgrading the same file: the version is
            // read again under the write lock.
            conn.execute_batch(&format!(
                "BEGIN IMMEDIATE;
                 UPDATE used SET bytes = bytes + (SELECT count(*) FROM kv) * {ENTRY_OVERHEAD_BYTES}
                   WHERE id = 0 AND (SELECT user_version FROM pragma_user_version) = 1;
                 PRAGMA user_version = {SCHEMA_VERSION};
                 COMMIT;"
            ))
            .map_err(unreadable)?;
        }
        SCHEMA_VERSION => {
            // Ours: check that the tables are there and whole.
            conn.query_row("SELECT bytes FROM used WHERE id = 0", [], |r| {
                r.get::<_, i64>(0)
            })
            .map_err(unreadable)?;
        }
        other => {
            return Err(Setup::Failed(format!(
                "has schema version {other}, which this airssys-wasm does not know (it writes \
                 {SCHEMA_VERSION}); open it with the version that wrote it"
            )));
        }
    }
    conn.busy_timeout(BLOCKING_BUSY)
        .map_err(|e| Setup::Failed(e.to_string()))?;
    Ok(conn)
}

impl KeyValueBackend for SqliteBackend {
    fn open<'a>(&'a self, id: &'a BucketId) -> KvFuture<'a, Arc<dyn KeyValueBucket>> {
        let r = self.bucket(id).map(|b| b as Arc<dyn KeyValueBucket>);
        Box::pin(std::future::ready(r))
    }
}

/// One bucket's connection. Operations take its async lock (so a call waiting for it
/// is cancelled by its timeout), then run in one transaction; a write waits for
/// another process's asynchronously too.
#[derive(Debug)]
struct SqliteBucket {
    id: BucketId,
    path: PathBuf,
    busy_timeout: Duration,
    conn: tokio::sync::Mutex<Connection>,
}

/// [`KeyValueError::DeadlinePassed`] when the call this operation works for is out of
/// time: a statement too short for the progress handler to look is not started.
fn past_deadline() -> Result<(), KeyValueError> {
    match call_deadline() {
        Some(d) if std::time::Instant::now() >= d => Err(KeyValueError::DeadlinePassed),
        _ => Ok(()),
    }
}

/// Whether SQLite reports a lock held elsewhere.
fn is_busy(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
    )
}

fn size(key: &str, value_len: u64) -> u64 {
    entry_size(key, value_len)
}

impl SqliteBucket {
    fn fail(&self, e: rusqlite::Error) -> KeyValueError {
        if e.sqlite_error_code() == Some(rusqlite::ErrorCode::OperationInterrupted) {
            return KeyValueError::DeadlinePassed;
        }
        KeyValueError::Backend {
            store: self.path.display().to_string(),
            message: e.to_string(),
        }
    }

    /// Runs `op` on the connection, in order with every other operation on the bucket.
    fn with<'a, T: Send + 'a>(
        &'a self,
        op: impl FnOnce(&mut Connection) -> Result<T, KeyValueError> + Send + 'a,
    ) -> KvFuture<'a, T> {
        Box::pin(async move {
            let mut conn = self.conn.lock().await;
            past_deadline()?;
            op(&mut conn)
        })
    }

    /// Runs `op` in a write transaction (taking the file's write lock first, so that
    /// what it reads is what it writes over), committed only when it succeeds. While
    /// another process holds the lock, it retries asynchronously, up to the busy
    /// timeout: dropping the future (the call's timeout) ends the wait.
    fn write<'a, T: Send + 'a>(
        &'a self,
        op: impl FnOnce(&rusqlite::Transaction<'_>) -> Result<T, KeyValueError> + Send + 'a,
    ) -> KvFuture<'a, T> {
        Box::pin(async move {
            let mut conn = self.conn.lock().await;
            let give_up = tokio::time::Instant::now() + self.busy_timeout;
            loop {
                past_deadline()?;
                let refused = match conn.transaction_with_behavior(TransactionBehavior::Immediate) {
                    Ok(tx) => {
                        let out = op(&tx)?;
                        tx.commit().map_err(|e| self.fail(e))?;
                        return Ok(out);
                    }
                    Err(e) => e,
                };
                if !is_busy(&refused) || tokio::time::Instant::now() >= give_up {
                    return Err(self.fail(refused));
                }
                drop(refused);
                tokio::time::sleep(RETRY).await;
            }
        })
    }

    fn used(&self, tx: &Connection) -> Result<u64, KeyValueError> {
        tx.prepare_cached("SELECT bytes FROM used WHERE id = 0")
            .and_then(|mut s| s.query_row([], |r| r.get::<_, i64>(0)))
            .map(|b| u64::try_from(b).unwrap_or(0))
            .map_err(|e| self.fail(e))
    }

    fn set_used(&self, tx: &Connection, bytes: u64) -> Result<(), KeyValueError> {
        tx.prepare_cached("UPDATE used SET bytes = ?1 WHERE id = 0")
            .and_then(|mut s| s.execute([i64::try_from(bytes).unwrap_or(i64::MAX)]))
            .map(drop)
            .map_err(|e| self.fail(e))
    }

    /// The size (key plus value) of `key`'s entry, 0 when absent.
    fn entry_size(&self, tx: &Connection, key: &str) -> Result<u64, KeyValueError> {
        tx.prepare_cached("SELECT length(value) FROM kv WHERE key = ?1")
            .and_then(|mut s| s.query_row([key], |r| r.get::<_, i64>(0)).optional())
            .map(|len| len.map_or(0, |l| size(key, u64::try_from(l).unwrap_or(0))))
            .map_err(|e| self.fail(e))
    }

    fn value(&self, tx: &Connection, key: &str) -> Result<Option<Vec<u8>>, KeyValueError> {
        tx.prepare_cached("SELECT value FROM kv WHERE key = ?1")
            .and_then(|mut s| s.query_row([key], |r| r.get(0)).optional())
            .map_err(|e| self.fail(e))
    }

    fn put(&self, tx: &Connection, key: &str, value: &[u8]) -> Result<(), KeyValueError> {
        tx.prepare_cached("INSERT OR REPLACE INTO kv (key, value) VALUES (?1, ?2)")
            .and_then(|mut s| s.execute(params![key, value]))
            .map(drop)
            .map_err(|e| self.fail(e))
    }

    fn remove(&self, tx: &Connection, keys: &[&str]) -> Result<(), KeyValueError> {
        let mut used = self.used(tx)?;
        for key in keys {
            let old = self.entry_size(tx, key)?;
            if old > 0 {
                tx.prepare_cached("DELETE FROM kv WHERE key = ?1")
                    .and_then(|mut s| s.execute([key]))
                    .map_err(|e| self.fail(e))?;
                used = used.saturating_sub(old);
            }
        }
        self.set_used(tx, used)
    }

    fn put_all(
        &self,
        tx: &Connection,
        pairs: &[(&str, &[u8])],
        max_bytes: u64,
    ) -> Result<(), KeyValueError> {
        let used = self.used(tx)?;
        let (mut removed, mut added) = (0u64, 0u64);
        for (key, value) in pairs {
            // Within the transaction, a key written earlier in the batch counts as it
            // now is.
            removed += self.entry_size(tx, key)?;
            added += size(key, value.len() as u64);
            self.put(tx, key, value)?;
        }
        // Checked on the whole: a refused batch is rolled back, nothing written.
        let now = check_quota(&self.id, used, removed, added, max_bytes)?;
        self.set_used(tx, now)
    }
}

impl KeyValueBucket for SqliteBucket {
    fn get<'a>(&'a self, key: &'a str) -> KvFuture<'a, Option<Vec<u8>>> {
        self.with(move |conn| self.value(conn, key))
    }

    fn set<'a>(&'a self, key: &'a str, value: &'a [u8], max_bytes: u64) -> KvFuture<'a, ()> {
        self.write(move |tx| self.put_all(tx, &[(key, value)], max_bytes))
    }

    fn delete<'a>(&'a self, key: &'a str) -> KvFuture<'a, ()> {
        self.write(move |tx| self.remove(tx, &[key]))
    }

    fn exists<'a>(&'a self, key: &'a str) -> KvFuture<'a, bool> {
        self.with(move |conn| {
            conn.prepare_cached("SELECT 1 FROM kv WHERE key = ?1")
                .and_then(|mut s| s.exists([key]))
                .map_err(|e| self.fail(e))
        })
    }

    fn list_keys(&self, cursor: u64, limit: u32) -> KvFuture<'_, (Vec<String>, Option<u64>)> {
        self.with(move |conn| {
            let offset = i64::try_from(cursor).unwrap_or(i64::MAX);
            // One more than asked: whether there is a next page.
            let keys: Vec<String> = conn
                .prepare_cached("SELECT key FROM kv ORDER BY key LIMIT ?1 OFFSET ?2")
                .and_then(|mut s| {
                    s.query_map(params![i64::from(limit) + 1, offset], |r| r.get(0))?
                        .collect()
                })
                .map_err(|e| self.fail(e))?;
            let mut keys = keys;
            let more = keys.len() > limit as usize;
            keys.truncate(limit as usize);
            let next = cursor + keys.len() as u64;
            Ok((keys, more.then_some(next)))
        })
    }

    fn increment<'a>(
        &'a self,
        key: &'a str,
        delta: i128,
        counter: Counter,
        max_bytes: u64,
    ) -> KvFuture<'a, i128> {
        self.write(move |tx| {
            let old = self.value(tx, key)?;
            let sum = incremented(&self.id, key, old.as_deref(), delta, counter)?;
            let text = sum.to_string();
            self.put_all(tx, &[(key, text.as_bytes())], max_bytes)?;
            Ok(sum)
        })
    }

    fn compare_and_swap<'a>(
        &'a self,
        key: &'a str,
        expected: Option<&'a [u8]>,
        value: &'a [u8],
        max_bytes: u64,
    ) -> KvFuture<'a, bool> {
        self.write(move |tx| {
            if self.value(tx, key)?.as_deref() != expected {
                return Ok(false);
            }
            self.put_all(tx, &[(key, value)], max_bytes)?;
            Ok(true)
        })
    }

    fn get_many<'a>(&'a self, keys: &'a [String]) -> KvFuture<'a, Vec<Option<Vec<u8>>>> {
        self.with(move |conn| {
            // One read transaction: one snapshot for all the keys.
            let tx = conn.transaction().map_err(|e| self.fail(e))?;
            let mut out = Vec::with_capacity(keys.len());
            {
                let mut s = tx
                    .prepare_cached("SELECT value FROM kv WHERE key = ?1")
                    .map_err(|e| self.fail(e))?;
                for k in keys {
                    out.push(
                        s.query_row([k], |r| r.get(0))
                            .optional()
                            .map_err(|e| self.fail(e))?,
                    );
                }
            }
            tx.commit().map_err(|e| self.fail(e))?;
            Ok(out)
        })
    }

    fn set_many<'a>(&'a self, pairs: &'a [(String, Vec<u8>)], max_bytes: u64) -> KvFuture<'a, ()> {
        self.write(move |tx| {
            let pairs: Vec<(&str, &[u8])> = pairs
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_slice()))
                .collect();
            self.put_all(tx, &pairs, max_bytes)
        })
    }

    fn delete_many<'a>(&'a self, keys: &'a [String]) -> KvFuture<'a, ()> {
        self.write(move |tx| {
            let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
            self.remove(tx, &keys)
        })
    }

    fn used_bytes(&self) -> KvFuture<'_, u64> {
        self.with(move |conn| self.used(conn))
    }
}

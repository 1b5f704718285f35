//! Key-value stores behind `fermyon:spin/key-value@2.0.0`. The default store lives in
//! SQLite at `.spin/sqlite_key_value.db` with Spin's own table layout, so a state directory
//! written by `spin up` and one written by this host are interchangeable. A runtime
//! configuration file (`--runtime-config-file`, Spin's format) can move a store elsewhere:
//! another SQLite file, or Redis (`type = "redis"`, `url = "redis://..."`), which is how
//! several hosts share one state, as Spin's Redis key-value backend does.
//!
//! Both backends also serve `wasi:keyvalue@0.2.0-draft2` (atomics and batch) with the
//! semantics of Spin 3's own implementations (`crates/key-value-spin`,
//! `crates/key-value-redis`), including where they are weaker than the interface reads:
//! * SQLite compare-and-swap is `UPDATE ... WHERE value = <current>` when `current` found
//!   a value, but an unconditional upsert when it found none (two writers that both saw
//!   "absent" both succeed);
//! * Redis compare-and-swap is WATCH + GET on a connection of its own, then MULTI/SET/EXEC,
//!   and an EXEC aborted by the WATCH is read as success, exactly as Spin reads it;
//! * `increment` keeps 8 little-endian bytes of an i64 on SQLite and Redis's decimal
//!   string (INCRBY) on Redis;
//! * get-many returns only the keys that exist.
//!
//! The components are written for these semantics (`taskhooks_shared::cas`).

use anyhow::{anyhow, bail, Context, Result};
use rusqlite::functions::FunctionFlags;
use rusqlite::types::ValueRef;
use rusqlite::{params, Connection, OptionalExtension};
use serde::Deserialize;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// One backing store. Implementations are shared by all component instances.
pub trait KvBackend: Send + Sync {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>>;
    fn set(&self, key: &str, value: &[u8]) -> Result<()>;
    fn delete(&self, key: &str) -> Result<()>;
    fn exists(&self, key: &str) -> Result<bool>;
    fn keys(&self) -> Result<Vec<String>>;
    /// The keys that exist among `keys`, with their values.
    fn get_many(&self, keys: &[String]) -> Result<Vec<(String, Option<Vec<u8>>)>>;
    fn set_many(&self, entries: &[(String, Vec<u8>)]) -> Result<()>;
    fn delete_many(&self, keys: &[String]) -> Result<()>;
    /// Adds `delta` to the counter at `key` (absent = 0) atomically; the new value.
    fn increment(&self, key: &str, delta: i64) -> Result<i64>;
    /// Starts a compare-and-swap on `key` (`current`, then `swap`).
    fn new_cas(&self, key: &str) -> Result<Box<dyn CasOp>>;
}

/// One compare-and-swap, as `wasi:keyvalue/atomics.cas`.
pub trait CasOp: Send {
    fn current(&mut self) -> Result<Option<Vec<u8>>>;
    /// `Ok(false)` when the swap failed because the value changed.
    fn swap(&mut self, value: &[u8]) -> Result<bool>;
}

const UPSERT: &str = "INSERT INTO spin_key_value (store, key, value) VALUES (?1, ?2, ?3)
                 ON CONFLICT (store, key) DO UPDATE SET value = excluded.value";
const INCREMENT: &str = "INSERT INTO spin_key_value (store, key, value) VALUES (?1, ?2, taskhooks_counter_add(NULL, ?3))
                 ON CONFLICT (store, key) DO UPDATE SET value = taskhooks_counter_add(value, ?3)
                 RETURNING value";
const SELECT: &str = "SELECT value FROM spin_key_value WHERE store = ?1 AND key = ?2";

/// A counter's bytes after adding `delta`, from its bytes (`None`: absent, so 0) as Spin
/// keeps them: 8 little-endian bytes of an i64.
fn counter_add(current: Option<&[u8]>, delta: i64) -> Result<Vec<u8>, &'static str> {
    let n = match current {
        None => 0,
        // Spin panics on a value that is not 8 bytes; an error says the same more kindly.
        Some(bytes) => i64::from_le_bytes(bytes.try_into().map_err(|_| "not a counter")?),
    };
    Ok(n.checked_add(delta).ok_or("counter overflow")?.to_le_bytes().to_vec())
}

/// How long a request waits for the store's connection by spinning before it sleeps.
const SPIN_BEFORE_SLEEP: std::time::Duration = std::time::Duration::from_micros(30);

/// The connection, for one operation. Operations hold it for 4-15 µs, and a trigger makes
/// about 20 of them, so the two workers of a 2-core machine often meet here. Sleeping on
/// the lock (std's mutex spins only ~100 iterations first) costs a futex wake and two
/// context switches each time: a third of a trigger's kernel time. Spinning a little
/// longer first took triggers from 1,544 to 1,808 a second (5 alternating rounds, A/B,
/// docs/benchmarks.md); GETs, with one write each, were unchanged within noise.
fn lock_connection(conn: &Mutex<Connection>) -> Result<std::sync::MutexGuard<'_, Connection>> {
    let start = std::time::Instant::now();
    loop {
        match conn.try_lock() {
            Ok(guard) => return Ok(guard),
            Err(std::sync::TryLockError::Poisoned(_)) => bail!("key-value connection poisoned"),
            Err(std::sync::TryLockError::WouldBlock) if start.elapsed() < SPIN_BEFORE_SLEEP => {
                (0..32).for_each(|_| std::hint::spin_loop());
            }
            Err(std::sync::TryLockError::WouldBlock) => break,
        }
    }
    conn.lock().map_err(|_| anyhow!("key-value connection poisoned"))
}

/// `body` in one transaction begun with `begin`, committed if it succeeds and rolled back
/// if it (or the commit) fails. By hand rather than with rusqlite's `Transaction`, which
/// prepares its `BEGIN` and `COMMIT` anew each time: here they come from the statement
/// cache, which matters for a batch of two writes (a record and its expiry entry).
fn in_transaction<T>(c: &Connection, begin: &str, body: impl FnOnce(&Connection) -> rusqlite::Result<T>) -> rusqlite::Result<T> {
    c.prepare_cached(begin)?.execute([])?;
    let done = body(c).and_then(|v| c.prepare_cached("COMMIT")?.execute([]).map(|_| v));
    if done.is_err() && !c.is_autocommit() {
        let _ = c.prepare_cached("ROLLBACK").and_then(|mut s| s.execute([]));
    }
    done
}

/// A store in one SQLite file (several labels can share a file; rows carry the label).
pub struct SqliteStore {
    conn: Arc<Mutex<Connection>>,
    label: String,
}

impl SqliteStore {
    fn open_file(path: &Path) -> Result<Arc<Mutex<Connection>>> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("creating {}", dir.display()))?;
        }
        let conn = Connection::open(path)
            .with_context(|| format!("opening key-value database {}", path.display()))?;
        // WAL keeps readers from blocking the writer; NORMAL sync is durable across a
        // process kill (only an OS crash can lose the last transactions).
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        // Checkpoints run on a thread of their own (`checkpointer`); this is the backstop.
        conn.pragma_update(None, "wal_autocheckpoint", crate::checkpointer::BACKSTOP_PAGES)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS spin_key_value (
                store TEXT NOT NULL,
                key   TEXT NOT NULL,
                value BLOB NOT NULL,
                PRIMARY KEY (store, key)
            )",
        )?;
        conn.create_scalar_function("taskhooks_counter_add", 2, FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC, |ctx| {
            let current = match ctx.get_raw(0) {
                ValueRef::Null => None,
                ValueRef::Blob(b) => Some(b),
                _ => return Err(rusqlite::Error::UserFunctionError("not a counter".into())),
            };
            counter_add(current, ctx.get(1)?).map_err(|e| rusqlite::Error::UserFunctionError(e.into()))
        })?;
        let conn = Arc::new(Mutex::new(conn));
        crate::checkpointer::start(path, Arc::downgrade(&conn))
            .with_context(|| format!("starting the checkpoints of {}", path.display()))?;
        Ok(conn)
    }

    fn with<T>(&self, f: impl FnOnce(&Connection) -> rusqlite::Result<T>) -> Result<T> {
        let conn = lock_connection(&self.conn)?;
        Ok(f(&conn)?)
    }
}

impl KvBackend for SqliteStore {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        self.with(|c| {
            c.prepare_cached(SELECT)?
                .query_row(params![self.label, key], |r| r.get(0))
                .optional()
        })
    }
    fn set(&self, key: &str, value: &[u8]) -> Result<()> {
        self.with(|c| {
            c.prepare_cached(UPSERT)?.execute(params![self.label, key, value]).map(drop)
        })
    }
    fn delete(&self, key: &str) -> Result<()> {
        self.with(|c| {
            c.prepare_cached("DELETE FROM spin_key_value WHERE store = ?1 AND key = ?2")?
                .execute(params![self.label, key])
                .map(drop)
        })
    }
    fn exists(&self, key: &str) -> Result<bool> {
        Ok(self.get(key)?.is_some())
    }
    fn keys(&self) -> Result<Vec<String>> {
        self.with(|c| {
            let mut stmt = c.prepare_cached("SELECT key FROM spin_key_value WHERE store = ?1")?;
            let rows = stmt.query_map(params![self.label], |r| r.get(0))?;
            rows.collect()
        })
    }
    /// Every key read in one read transaction: one snapshot, as Spin's single `SELECT …
    /// IN (…)` reads them, and one round of the WAL's shared-memory locks (about four
    /// `fcntl` calls) instead of one per key.
    fn get_many(&self, keys: &[String]) -> Result<Vec<(String, Option<Vec<u8>>)>> {
        self.with(|c| {
            in_transaction(c, "BEGIN DEFERRED", |c| {
                let mut stmt = c.prepare_cached(SELECT)?;
                let mut found = Vec::new();
                for key in keys {
                    if let Some(v) = stmt.query_row(params![self.label, key], |r| r.get::<_, Vec<u8>>(0)).optional()? {
                        found.push((key.clone(), Some(v)));
                    }
                }
                Ok(found)
            })
        })
    }
    fn set_many(&self, entries: &[(String, Vec<u8>)]) -> Result<()> {
        self.with(|c| {
            in_transaction(c, "BEGIN IMMEDIATE", |c| {
                let mut stmt = c.prepare_cached(UPSERT)?;
                entries.iter().try_for_each(|(k, v)| stmt.execute(params![self.label, k, v]).map(drop))
            })
        })
    }
    fn delete_many(&self, keys: &[String]) -> Result<()> {
        self.with(|c| {
            in_transaction(c, "BEGIN IMMEDIATE", |c| {
                let mut stmt = c.prepare_cached("DELETE FROM spin_key_value WHERE store = ?1 AND key = ?2")?;
                keys.iter().try_for_each(|k| stmt.execute(params![self.label, k]).map(drop))
            })
        })
    }
    /// One statement, so one transaction, as a `set` is: the counter's new bytes are made
    /// in SQL by `taskhooks_counter_add` ([`counter_add`]). A read then a write in a
    /// transaction of their own cost twice a `set` (measured: 14 µs against 7).
    fn increment(&self, key: &str, delta: i64) -> Result<i64> {
        let bytes: Vec<u8> = self
            .with(|c| c.prepare_cached(INCREMENT)?.query_row(params![self.label, key, delta], |r| r.get(0)))
            .map_err(|e| match e.downcast_ref::<rusqlite::Error>() {
                // The function's own words ("not a counter") are the failure's message.
                Some(rusqlite::Error::SqliteFailure(_, Some(why))) => anyhow!("`{key}`: {why}"),
                _ => e,
            })?;
        Ok(i64::from_le_bytes(bytes.as_slice().try_into().expect("counter_add makes 8 bytes")))
    }
    fn new_cas(&self, key: &str) -> Result<Box<dyn CasOp>> {
        Ok(Box::new(SqliteCas { conn: self.conn.clone(), label: self.label.clone(), key: key.to_string(), seen: None }))
    }
}

struct SqliteCas {
    conn: Arc<Mutex<Connection>>,
    label: String,
    key: String,
    seen: Option<Vec<u8>>,
}

impl CasOp for SqliteCas {
    fn current(&mut self) -> Result<Option<Vec<u8>>> {
        let conn = lock_connection(&self.conn)?;
        self.seen = conn.prepare_cached(SELECT)?.query_row(params![self.label, self.key], |r| r.get(0)).optional()?;
        Ok(self.seen.clone())
    }
    fn swap(&mut self, value: &[u8]) -> Result<bool> {
        let conn = lock_connection(&self.conn)?;
        let rows = match &self.seen {
            Some(old) => conn
                .prepare_cached("UPDATE spin_key_value SET value = ?1 WHERE store = ?2 AND key = ?3 AND value = ?4")?
                .execute(params![value, self.label, self.key, old])?,
            // As Spin: nothing seen means an unconditional upsert.
            None => conn.prepare_cached(UPSERT)?.execute(params![self.label, self.key, value])?,
        };
        Ok(rows == 1)
    }
}

/// A store in Redis, with the layout Spin's Redis backend uses: each key-value key is a
/// Redis key holding the value as a string.
pub struct RedisStore {
    client: redis::Client,
    /// One connection per host process, re-opened after a failure (Redis restarted).
    conn: Mutex<Option<redis::Connection>>,
}

impl RedisStore {
    pub fn open(url: &str) -> Result<Self> {
        let client = redis::Client::open(url).with_context(|| format!("Redis URL {url:?}"))?;
        let conn = client.get_connection().with_context(|| format!("connecting to Redis at {url}"))?;
        Ok(Self { client, conn: Mutex::new(Some(conn)) })
    }

    fn with<T>(&self, f: impl Fn(&mut redis::Connection) -> redis::RedisResult<T>) -> Result<T> {
        let mut slot = self.conn.lock().map_err(|_| anyhow!("Redis connection poisoned"))?;
        for attempt in 0..2 {
            if slot.is_none() {
                *slot = Some(self.client.get_connection().context("reconnecting to Redis")?);
            }
            match f(slot.as_mut().expect("connected above")) {
                Ok(v) => return Ok(v),
                Err(e) if attempt == 0 && (e.is_io_error() || e.is_connection_dropped()) => *slot = None,
                Err(e) => return Err(e.into()),
            }
        }
        unreachable!("the second attempt returns")
    }
}

impl KvBackend for RedisStore {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        self.with(|c| redis::cmd("GET").arg(key).query(c))
    }
    fn set(&self, key: &str, value: &[u8]) -> Result<()> {
        self.with(|c| redis::cmd("SET").arg(key).arg(value).query(c))
    }
    fn delete(&self, key: &str) -> Result<()> {
        self.with(|c| redis::cmd("DEL").arg(key).query(c))
    }
    fn exists(&self, key: &str) -> Result<bool> {
        self.with(|c| redis::cmd("EXISTS").arg(key).query(c))
    }
    /// SCAN rather than KEYS, so listing a big store does not stall Redis for others.
    fn keys(&self) -> Result<Vec<String>> {
        self.with(|c| {
            let mut keys = Vec::new();
            let mut cursor: u64 = 0;
            loop {
                let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN").arg(cursor).arg("COUNT").arg(1000).query(c)?;
                keys.extend(batch);
                if next == 0 {
                    break;
                }
                cursor = next;
            }
            keys.sort();
            keys.dedup();
            Ok(keys)
        })
    }
    fn get_many(&self, keys: &[String]) -> Result<Vec<(String, Option<Vec<u8>>)>> {
        if keys.is_empty() {
            return Ok(vec![]);
        }
        let values: Vec<Option<Vec<u8>>> = self.with(|c| redis::cmd("MGET").arg(keys).query(c))?;
        Ok(keys.iter().cloned().zip(values).filter(|(_, v)| v.is_some()).collect())
    }
    fn set_many(&self, entries: &[(String, Vec<u8>)]) -> Result<()> {
        if entries.is_empty() {
            return Ok(());
        }
        self.with(|c| {
            let mut cmd = redis::cmd("MSET");
            for (k, v) in entries {
                cmd.arg(k).arg(v.as_slice());
            }
            cmd.query(c)
        })
    }
    fn delete_many(&self, keys: &[String]) -> Result<()> {
        if keys.is_empty() {
            return Ok(());
        }
        self.with(|c| redis::cmd("DEL").arg(keys).query(c))
    }
    fn increment(&self, key: &str, delta: i64) -> Result<i64> {
        self.with(|c| redis::cmd("INCRBY").arg(key).arg(delta).query(c))
    }
    /// A connection of its own, as Spin's: WATCH is scoped to a connection.
    fn new_cas(&self, key: &str) -> Result<Box<dyn CasOp>> {
        let conn = self.client.get_connection().context("connecting to Redis")?;
        Ok(Box::new(RedisCas { conn, key: key.to_string() }))
    }
}

struct RedisCas {
    conn: redis::Connection,
    key: String,
}

impl CasOp for RedisCas {
    fn current(&mut self) -> Result<Option<Vec<u8>>> {
        redis::cmd("WATCH").arg(&self.key).query::<()>(&mut self.conn)?;
        Ok(redis::cmd("GET").arg(&self.key).query(&mut self.conn)?)
    }
    /// MULTI/SET/EXEC read into `()` as Spin reads it, so an EXEC that the WATCH aborted
    /// (a nil reply) counts as success here exactly when it does under Spin.
    fn swap(&mut self, value: &[u8]) -> Result<bool> {
        let result: redis::RedisResult<()> = redis::pipe().atomic().set(&self.key, value).query(&mut self.conn);
        redis::cmd("UNWATCH").query::<()>(&mut self.conn)?;
        result?;
        Ok(true)
    }
}

/// Spin's runtime configuration file, the part about key-value stores.
#[derive(Debug, Default, Deserialize)]
pub struct RuntimeConfig {
    #[serde(default)]
    pub key_value_store: BTreeMap<String, StoreConfig>,
}

#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum StoreConfig {
    /// Spin's SQLite store (`type = "spin"`), optionally at another path.
    Spin { path: Option<PathBuf> },
    /// Redis (`type = "redis"`, `url = "redis://host:port/db"`).
    Redis { url: String },
}

impl RuntimeConfig {
    pub fn load(path: Option<&Path>) -> Result<Self> {
        let Some(path) = path else { return Ok(Self::default()) };
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading runtime config {}", path.display()))?;
        toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))
    }
}

/// All stores the application may open, by label.
pub struct KvStores {
    stores: HashMap<String, Arc<dyn KvBackend>>,
}

impl KvStores {
    /// Opens the stores the components name. `default` always exists (in
    /// `<state_dir>/sqlite_key_value.db`, like Spin); any other label must be configured.
    pub fn open(
        labels: impl IntoIterator<Item = String>,
        config: &RuntimeConfig,
        state_dir: &Path,
        base_dir: &Path,
    ) -> Result<Self> {
        let mut files: HashMap<PathBuf, Arc<Mutex<Connection>>> = HashMap::new();
        let mut stores: HashMap<String, Arc<dyn KvBackend>> = HashMap::new();
        for label in labels {
            if stores.contains_key(&label) {
                continue;
            }
            let path = match config.key_value_store.get(&label) {
                Some(StoreConfig::Redis { url }) => {
                    stores.insert(label.clone(), Arc::new(RedisStore::open(url)?));
                    continue;
                }
                Some(StoreConfig::Spin { path: Some(p) }) => base_dir.join(p),
                Some(StoreConfig::Spin { path: None }) => state_dir.join("sqlite_key_value.db"),
                None if label == "default" => state_dir.join("sqlite_key_value.db"),
                None => bail!(
                    "key-value store `{label}` is not configured: add [key_value_store.{label}] \
                     to the runtime config file"
                ),
            };
            let conn = match files.get(&path) {
                Some(c) => c.clone(),
                None => {
                    let c = SqliteStore::open_file(&path)?;
                    files.insert(path.clone(), c.clone());
                    c
                }
            };
            stores.insert(label.clone(), Arc::new(SqliteStore { conn, label }));
        }
        Ok(Self { stores })
    }

    pub fn get(&self, label: &str) -> Option<Arc<dyn KvBackend>> {
        self.stores.get(label).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_store_round_trip_and_persistence() {
        let dir = std::env::temp_dir().join(format!("taskhooks-kv-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let cfg = RuntimeConfig::default();
        {
            let stores = KvStores::open(["default".to_string()], &cfg, &dir, &dir).unwrap();
            let s = stores.get("default").unwrap();
            assert_eq!(s.get("a").unwrap(), None);
            s.set("a", b"1").unwrap();
            s.set("a", b"2").unwrap();
            s.set("b", b"3").unwrap();
            assert!(s.exists("a").unwrap());
            s.delete("b").unwrap();
            assert!(!s.exists("b").unwrap());
        }
        let stores = KvStores::open(["default".to_string()], &cfg, &dir, &dir).unwrap();
        let s = stores.get("default").unwrap();
        assert_eq!(s.get("a").unwrap().as_deref(), Some(&b"2"[..]));
        assert_eq!(s.keys().unwrap(), vec!["a".to_string()]);
        assert!(KvStores::open(["other".to_string()], &cfg, &dir, &dir).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// The `default` store in a new SQLite file under a directory of its own (removed by
    /// the test at its end).
    fn fresh_sqlite_store(name: &str) -> (PathBuf, Arc<dyn KvBackend>) {
        let dir = std::env::temp_dir().join(format!("taskhooks-kv-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let stores = KvStores::open(["default".to_string()], &RuntimeConfig::default(), &dir, &dir).unwrap();
        let store = stores.get("default").unwrap();
        (dir, store)
    }

    /// A read sees every write that returned before it, from any thread: a writer thread
    /// counts up and records each count it got; a reader must never read a lower count
    /// than one recorded before its read. A guard for changes to how reads are served (a
    /// cache, a second connection); with one connection behind one lock it holds by
    /// construction.
    #[test]
    fn sqlite_reads_see_every_finished_write_of_any_thread() {
        let (dir, s) = fresh_sqlite_store("reader");
        s.set("k", b"v").unwrap();
        assert_eq!(s.get("k").unwrap().as_deref(), Some(&b"v"[..]));
        s.set_many(&[("k".into(), b"w".to_vec()), ("l".into(), b"x".to_vec())]).unwrap();
        assert_eq!(s.get_many(&["k".into(), "l".into()]).unwrap().len(), 2);
        assert_eq!(s.get("k").unwrap().as_deref(), Some(&b"w"[..]));
        let mut cas = s.new_cas("k").unwrap();
        assert_eq!(cas.current().unwrap().as_deref(), Some(&b"w"[..]));
        assert!(cas.swap(b"y").unwrap());
        assert_eq!(s.get("k").unwrap().as_deref(), Some(&b"y"[..]));
        s.delete("k").unwrap();
        assert_eq!(s.get("k").unwrap(), None);
        let done = Arc::new(std::sync::atomic::AtomicI64::new(0));
        let (writer, w_done) = (s.clone(), done.clone());
        let counting = std::thread::spawn(move || {
            for _ in 0..2000 {
                let n = writer.increment("n", 1).unwrap();
                w_done.store(n, std::sync::atomic::Ordering::SeqCst);
            }
        });
        loop {
            let finished = done.load(std::sync::atomic::Ordering::SeqCst);
            let seen = s.get("n").unwrap().map_or(0, |b| i64::from_le_bytes(b.as_slice().try_into().unwrap()));
            assert!(seen >= finished, "read {seen} after increment {finished} had returned");
            if finished == 2000 {
                break;
            }
        }
        counting.join().unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// Debian's redis-server on a free loopback port, without persistence.
    fn redis_server(port: u16) -> std::process::Child {
        let child = std::process::Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("the Redis tests need Debian's redis-server");
        // Ready when it answers PING: a listening socket alone was seen to reset the
        // first connections of a server still starting (a CI flake).
        let answers = || -> std::io::Result<bool> {
            use std::io::{Read, Write};
            let mut s = std::net::TcpStream::connect(("127.0.0.1", port))?;
            s.set_read_timeout(Some(std::time::Duration::from_secs(1)))?;
            s.write_all(b"PING\r\n")?;
            let mut buf = [0u8; 7];
            let n = s.read(&mut buf)?;
            Ok(buf[..n].starts_with(b"+PONG"))
        };
        for _ in 0..200 {
            if answers().unwrap_or(false) {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(25));
        }
        child
    }

    #[test]
    fn redis_store_round_trip_shared_and_reconnecting() {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut server = redis_server(port);
        let cfg: RuntimeConfig = toml::from_str(&format!("[key_value_store.default]\ntype = \"redis\"\nurl = \"redis://127.0.0.1:{port}/0\"\n")).unwrap();
        let dir = std::env::temp_dir();
        let a = KvStores::open(["default".to_string()], &cfg, &dir, &dir).unwrap().get("default").unwrap();
        let b = KvStores::open(["default".to_string()], &cfg, &dir, &dir).unwrap().get("default").unwrap();
        assert_eq!(a.get("k").unwrap(), None);
        a.set("k", b"\x00binary\xff").unwrap();
        a.set("hook/g/h", b"1").unwrap();
        assert_eq!(b.get("k").unwrap().as_deref(), Some(&b"\x00binary\xff"[..]), "a second host sees the first one's writes");
        assert!(b.exists("hook/g/h").unwrap());
        assert_eq!(b.keys().unwrap(), vec!["hook/g/h".to_string(), "k".to_string()]);
        b.delete("k").unwrap();
        assert!(!a.exists("k").unwrap());
        // Redis restarts (empty, no persistence): the stores reconnect on their next call.
        server.kill().unwrap();
        server.wait().unwrap();
        let mut server = redis_server(port);
        a.set("after", b"restart").unwrap();
        assert_eq!(b.get("after").unwrap().as_deref(), Some(&b"restart"[..]));
        server.kill().unwrap();
        server.wait().unwrap();
        assert!(a.get("after").is_err(), "no Redis: an error, not a wrong answer");
    }

    /// The `wasi:keyvalue` operations as Spin's backends behave, checked on either backend.
    fn atomics_and_batches_as_spin_has_them(s: Arc<dyn KvBackend>) {
        s.set("a", b"1").unwrap();
        s.set("b", b"2").unwrap();
        let got = s.get_many(&["a".into(), "missing".into(), "b".into()]).unwrap();
        assert_eq!(got, vec![("a".into(), Some(b"1".to_vec())), ("b".into(), Some(b"2".to_vec()))], "only the keys that exist");
        s.set_many(&[("c".into(), b"3".to_vec()), ("d".into(), b"4".to_vec())]).unwrap();
        s.delete_many(&["a".into(), "c".into()]).unwrap();
        assert_eq!((s.exists("a").unwrap(), s.exists("c").unwrap(), s.exists("d").unwrap()), (false, false, true));

        // Increments from many threads at once are all kept.
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let s = s.clone();
                std::thread::spawn(move || (0..50).for_each(|_| drop(s.increment("n", 1).unwrap())))
            })
            .collect();
        threads.into_iter().for_each(|t| t.join().unwrap());
        assert_eq!(s.increment("n", 0).unwrap(), 400);
        assert_eq!(s.increment("n", -10).unwrap(), 390);

        // A value changed between `current` and `swap` fails the swap (SQLite), or is
        // overwritten by it while reported as... whatever the Redis client reads: the
        // value afterwards tells.
        let mut first = s.new_cas("doc").unwrap();
        assert_eq!(first.current().unwrap(), None);
        assert!(first.swap(b"v1").unwrap(), "absent: an upsert");
        let mut stale = s.new_cas("doc").unwrap();
        assert_eq!(stale.current().unwrap().as_deref(), Some(&b"v1"[..]));
        let mut fresh = s.new_cas("doc").unwrap();
        fresh.current().unwrap();
        assert!(fresh.swap(b"v2").unwrap());
        let reported = stale.swap(b"lost").unwrap();
        assert_eq!(s.get("doc").unwrap().as_deref(), Some(&b"v2"[..]), "a stale swap never lands");
        assert!(!reported || s.get("doc").unwrap().as_deref() != Some(&b"lost"[..]));
        // A deleted key fails a swap that saw it.
        let mut seen = s.new_cas("doc").unwrap();
        seen.current().unwrap();
        s.delete("doc").unwrap();
        seen.swap(b"back").unwrap();
        assert_eq!(s.get("doc").unwrap(), None, "a delete is not undone by a swap that read before it");
    }

    #[test]
    fn sqlite_atomics_and_batches() {
        let (dir, s) = fresh_sqlite_store("atomics");
        atomics_and_batches_as_spin_has_them(s.clone());
        s.set("text", b"not a counter").unwrap();
        let e = s.increment("text", 1).unwrap_err().to_string();
        assert_eq!(e, "`text`: not a counter");
        assert_eq!(s.get("text").unwrap().as_deref(), Some(&b"not a counter"[..]), "left as it was");
        // Spin's SQLite counter bytes: 8 little-endian bytes.
        assert_eq!(s.get("n").unwrap().unwrap(), 390i64.to_le_bytes().to_vec());
        s.set("big", &(i64::MAX - 1).to_le_bytes()).unwrap();
        assert_eq!(s.increment("big", 1).unwrap(), i64::MAX);
        assert_eq!(s.increment("big", 1).unwrap_err().to_string(), "`big`: counter overflow");
        assert_eq!(s.increment("big", -5).unwrap(), i64::MAX - 5, "a failed increment changes nothing");
        assert_eq!(s.increment("fresh", -3).unwrap(), -3, "absent counts as 0");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn redis_atomics_and_batches() {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut server = redis_server(port);
        let cfg: RuntimeConfig = toml::from_str(&format!("[key_value_store.default]\ntype = \"redis\"\nurl = \"redis://127.0.0.1:{port}/0\"\n")).unwrap();
        let dir = std::env::temp_dir();
        let s = KvStores::open(["default".to_string()], &cfg, &dir, &dir).unwrap().get("default").unwrap();
        atomics_and_batches_as_spin_has_them(s.clone());
        assert_eq!(s.get("n").unwrap().unwrap(), b"390".to_vec(), "Redis keeps INCRBY's decimal string");
        server.kill().unwrap();
        server.wait().unwrap();
    }

    #[test]
    fn runtime_config_names_a_path() {
        let cfg: RuntimeConfig =
            toml::from_str("[key_value_store.default]\ntype = \"spin\"\npath = \"x.db\"\n").unwrap();
        assert!(matches!(
            cfg.key_value_store.get("default"),
            Some(StoreConfig::Spin { path: Some(p) }) if p == Path::new("x.db")
        ));
        assert!(toml::from_str::<RuntimeConfig>("[key_value_store.default]\ntype = \"nope\"\n").is_err());
    }
}

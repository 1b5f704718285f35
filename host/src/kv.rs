//! Key-value stores behind `fermyon:spin/key-value@2.0.0`. The default store lives in
//! SQLite at `.spin/sqlite_key_value.db` with Spin's own table layout, so a state directory
//! written by `spin up` and one written by this host are interchangeable. A runtime
//! configuration file (`--runtime-config-file`, Spin's format) can move a store elsewhere:
//! another SQLite file, or Redis (`type = "redis"`, `url = "redis://..."`), which is how
//! several hosts share one state, as Spin's Redis key-value backend does.

use anyhow::{anyhow, bail, Context, Result};
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
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS spin_key_value (
                store TEXT NOT NULL,
                key   TEXT NOT NULL,
                value BLOB NOT NULL,
                PRIMARY KEY (store, key)
            )",
        )?;
        Ok(Arc::new(Mutex::new(conn)))
    }

    fn with<T>(&self, f: impl FnOnce(&Connection) -> rusqlite::Result<T>) -> Result<T> {
        let conn = self.conn.lock().map_err(|_| anyhow!("key-value connection poisoned"))?;
        Ok(f(&conn)?)
    }
}

impl KvBackend for SqliteStore {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        self.with(|c| {
            c.prepare_cached("SELECT value FROM spin_key_value WHERE store = ?1 AND key = ?2")?
                .query_row(params![self.label, key], |r| r.get(0))
                .optional()
        })
    }
    fn set(&self, key: &str, value: &[u8]) -> Result<()> {
        self.with(|c| {
            c.prepare_cached(
                "INSERT INTO spin_key_value (store, key, value) VALUES (?1, ?2, ?3)
                 ON CONFLICT (store, key) DO UPDATE SET value = excluded.value",
            )?
            .execute(params![self.label, key, value])
            .map(drop)
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

    /// Debian's redis-server on a free loopback port, without persistence.
    fn redis_server(port: u16) -> std::process::Child {
        let child = std::process::Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("the Redis tests need Debian's redis-server");
        for _ in 0..200 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
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

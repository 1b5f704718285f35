//! Key-value stores behind `fermyon:spin/key-value@2.0.0`. The default store lives in
//! SQLite at `.spin/sqlite_key_value.db` with Spin's own table layout, so a state directory
//! written by `spin up` and one written by this host are interchangeable. A runtime
//! configuration file (`--runtime-config-file`, Spin's format) can move a store elsewhere.

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

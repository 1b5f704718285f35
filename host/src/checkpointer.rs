//! Moves SQLite's WAL checkpoints off the request path.
//!
//! With SQLite's default, the write that takes the WAL past 1,000 pages checkpoints it
//! inline: it copies the pages into the database and fsyncs both files while it holds the
//! store's connection, so every request behind it waits a millisecond or more. That was
//! the p99 of an authenticated GET under load (its one write is the request metric): 4 ms
//! with the write, 1.5 ms without. Here a thread with a connection of its own runs a
//! PASSIVE checkpoint every [`INTERVAL`], which takes no lock writers need, and the
//! serving connection only checkpoints inline as a backstop ([`BACKSTOP_PAGES`]).
//!
//! A WAL starts over from its beginning only when a writer finds it wholly copied back,
//! which under sustained writes a concurrent checkpoint never leaves. So when the WAL has
//! grown past [`RESTART_FRAMES`], the thread takes the serving connection's lock (no write
//! of this process is under way then) and runs a RESTART checkpoint, which copies the few
//! frames written since the passive one and resets the WAL. Readers in other processes
//! (`taskhooks kv`, a `sqlite3` shell) can delay that; it then waits for them at most
//! [`RESTART_WAIT`] and tries again later.

use rusqlite::Connection;
use std::path::Path;
use std::sync::{Mutex, Weak};
use std::time::Duration;

/// How often the WAL is copied back into the database.
pub const INTERVAL: Duration = Duration::from_millis(200);
/// The WAL size (frames of one page) past which it is copied back and restarted.
pub const RESTART_FRAMES: i64 = 16_384;
/// The serving connection's own checkpoint, should this thread fall behind or stop.
pub const BACKSTOP_PAGES: i64 = 65_536;
/// How long a restart waits for other processes' readers.
const RESTART_WAIT: Duration = Duration::from_millis(20);

/// Starts the thread for the database at `path`, served by `serving`. It ends when the
/// serving connection is dropped.
pub fn start(path: &Path, serving: Weak<Mutex<Connection>>) -> std::io::Result<std::thread::JoinHandle<()>> {
    let conn = Connection::open(path).and_then(|c| c.busy_timeout(RESTART_WAIT).map(|()| c)).map_err(std::io::Error::other)?;
    std::thread::Builder::new().name("sqlite-checkpoint".into()).spawn(move || run(conn, serving))
}

fn run(conn: Connection, serving: Weak<Mutex<Connection>>) {
    let mut warned = false;
    loop {
        std::thread::sleep(INTERVAL);
        let Some(serving) = serving.upgrade() else { return };
        match round(&conn, &serving, RESTART_FRAMES) {
            Ok(_) => warned = false,
            Err(e) if !warned => {
                eprintln!("taskhooks: key-value checkpoint failed (the serving connection checkpoints instead): {e}");
                warned = true;
            }
            Err(_) => {}
        }
    }
}

/// One round: a PASSIVE checkpoint, and a RESTART under the writers' lock when the WAL
/// holds `restart_frames` or more. The frames it left in the WAL (0 after a restart);
/// another process that keeps the database busy is not an error (the next round retries).
fn round(conn: &Connection, serving: &Mutex<Connection>, restart_frames: i64) -> rusqlite::Result<i64> {
    let attempt = checkpoint(conn, "PASSIVE").and_then(|frames| {
        if frames < restart_frames {
            return Ok(frames);
        }
        let _writers_wait = serving.lock().unwrap_or_else(|e| e.into_inner());
        checkpoint(conn, "RESTART").map(|_| 0)
    });
    match attempt {
        Err(rusqlite::Error::SqliteFailure(e, _)) if e.code == rusqlite::ErrorCode::DatabaseBusy => Ok(-1),
        other => other,
    }
}

/// Runs one checkpoint; the WAL's size in frames.
fn checkpoint(conn: &Connection, mode: &str) -> rusqlite::Result<i64> {
    // Its row: (1 if it could not finish for a lock, frames in the WAL, frames copied back).
    conn.query_row(&format!("PRAGMA wal_checkpoint({mode})"), [], |r| {
        let (busy, frames): (i64, i64) = (r.get(0)?, r.get(1)?);
        if busy != 0 {
            return Err(rusqlite::Error::SqliteFailure(rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_BUSY), None));
        }
        Ok(frames)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    struct Db {
        dir: std::path::PathBuf,
        serving: Arc<Mutex<Connection>>,
        checkpointer: Connection,
    }

    impl Db {
        fn new(name: &str) -> Db {
            let dir = std::env::temp_dir().join(format!("taskhooks-ckpt-{name}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            let serving = Connection::open(dir.join("kv.db")).unwrap();
            serving.pragma_update(None, "journal_mode", "WAL").unwrap();
            serving.pragma_update(None, "wal_autocheckpoint", 0).unwrap();
            serving.execute_batch("CREATE TABLE t (k INTEGER PRIMARY KEY, v BLOB)").unwrap();
            let checkpointer = Connection::open(dir.join("kv.db")).unwrap();
            checkpointer.busy_timeout(RESTART_WAIT).unwrap();
            Db { dir, serving: Arc::new(Mutex::new(serving)), checkpointer }
        }

        /// `n` transactions of one page each.
        fn write(&self, n: i64) {
            let c = self.serving.lock().unwrap();
            for i in 0..n {
                c.execute("INSERT OR REPLACE INTO t VALUES (?1, zeroblob(3000))", [i % 16]).unwrap();
            }
        }

        fn wal_bytes(&self) -> u64 {
            std::fs::metadata(self.dir.join("kv.db-wal")).map_or(0, |m| m.len())
        }
    }

    impl Drop for Db {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }

    #[test]
    fn a_small_wal_is_copied_back_without_the_writers_lock() {
        let db = Db::new("small");
        db.write(50);
        // The writers' lock is held throughout: a passive round must not need it.
        let held = db.serving.lock().unwrap();
        let frames = round(&db.checkpointer, &db.serving, 1_000).unwrap();
        drop(held);
        assert!(frames >= 50, "{frames}");
        // Copied back: a reader that opens the database file alone sees every row.
        let rows: i64 = db.checkpointer.query_row("SELECT count(*) FROM t", [], |r| r.get(0)).unwrap();
        assert_eq!(rows, 16);
    }

    #[test]
    fn a_large_wal_is_restarted_so_it_stops_growing() {
        let db = Db::new("large");
        db.write(300);
        assert_eq!(round(&db.checkpointer, &db.serving, 200).unwrap(), 0);
        let after_restart = db.wal_bytes();
        // Restarted: the next writes go to the WAL's beginning, not past its end.
        db.write(100);
        assert_eq!(db.wal_bytes(), after_restart, "the WAL grew after a restart");
    }

    #[test]
    fn a_reader_in_another_connection_delays_a_restart_without_an_error() {
        let db = Db::new("reader");
        db.write(300);
        let reader = Connection::open(db.dir.join("kv.db")).unwrap();
        reader.execute_batch("BEGIN; SELECT count(*) FROM t;").unwrap();
        db.write(10);
        // The reader holds a snapshot older than the WAL's end: the restart cannot finish.
        assert_eq!(round(&db.checkpointer, &db.serving, 200).unwrap(), -1);
        reader.execute_batch("COMMIT").unwrap();
        assert_eq!(round(&db.checkpointer, &db.serving, 200).unwrap(), 0);
    }

    #[test]
    fn the_thread_ends_with_the_serving_connection() {
        let db = Db::new("thread");
        let handle = start(&db.dir.join("kv.db"), Arc::downgrade(&db.serving)).unwrap();
        drop(db);
        handle.join().unwrap();
    }
}

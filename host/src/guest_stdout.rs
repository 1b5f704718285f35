//! Guests' stdout, written to the host's in batches.
//!
//! The components log a line per request (the API's `monitor.apiMethod` record). Written
//! through to the host's stdout, each line is a `write` and, when a pipe or a terminal
//! reads it, a wake-up of the reader: 5% of an authenticated GET's CPU under load, and
//! the reader's own CPU besides.
//! Here a guest's write appends to one process-wide buffer, and a thread writes the buffer
//! out every [`FLUSH_EVERY`]. Lines keep their order and are never split (a guest's write
//! is appended whole); a line reaches stdout at most that much later. The buffer is
//! bounded: past [`FLUSH_AT`] bytes the guest's write puts the batch out itself, so a
//! guest that prints without end waits for the pipe like a direct writer would. The host
//! flushes once more before it exits ([`flush`]). stderr (panics, errors) stays unbuffered.

use bytes::Bytes;
use std::io::Write;
use std::pin::Pin;
use std::sync::{Mutex, Once};
use std::task::{Context, Poll};
use std::time::Duration;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};

/// How long a line can wait in the buffer.
pub const FLUSH_EVERY: Duration = Duration::from_millis(20);
/// A batch this large goes out at once.
pub const FLUSH_AT: usize = 64 * 1024;

/// What guests wrote and the host has not yet written out.
struct Batch {
    pending: Mutex<Vec<u8>>,
    /// Held while a batch is written, so batches go out in the order they were taken.
    writing: Mutex<()>,
}

impl Batch {
    const fn new() -> Self {
        Batch { pending: Mutex::new(Vec::new()), writing: Mutex::new(()) }
    }

    /// Appends `bytes`; whether the batch is now full.
    fn append(&self, bytes: &[u8]) -> bool {
        let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        pending.extend_from_slice(bytes);
        pending.len() >= FLUSH_AT
    }

    fn write_to(&self, out: &mut dyn Write) -> std::io::Result<()> {
        let _writing = self.writing.lock().unwrap_or_else(|e| e.into_inner());
        let batch = std::mem::take(&mut *self.pending.lock().unwrap_or_else(|e| e.into_inner()));
        if batch.is_empty() {
            return Ok(());
        }
        out.write_all(&batch)?;
        out.flush()
    }
}

static STDOUT: Batch = Batch::new();
static FLUSHER: Once = Once::new();

/// The `stdout` of a guest's WASI context.
pub struct GuestStdout;

impl IsTerminal for GuestStdout {
    fn is_terminal(&self) -> bool {
        std::io::IsTerminal::is_terminal(&std::io::stdout())
    }
}

impl StdoutStream for GuestStdout {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(Appender)
    }
    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(Appender)
    }
}

/// Appends `bytes` to the batch; puts the batch out if it is full.
fn append(bytes: &[u8]) {
    FLUSHER.call_once(|| {
        let started = std::thread::Builder::new().name("guest-stdout".into()).spawn(|| loop {
            std::thread::sleep(FLUSH_EVERY);
            flush();
        });
        if let Err(e) = started {
            eprintln!("taskhooks: guest stdout is not flushed on a timer ({e})");
        }
    });
    if STDOUT.append(bytes) {
        flush();
    }
}

/// Writes out what is buffered.
pub fn flush() {
    // Nowhere to report a failed write of stdout to but stderr, and only once (a closed
    // stdout would otherwise say so every 20 ms); the lines are dropped, as a direct
    // write's would be.
    static REPORTED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    if let Err(e) = STDOUT.write_to(&mut std::io::stdout().lock()) {
        if !REPORTED.swap(true, std::sync::atomic::Ordering::Relaxed) {
            eprintln!("taskhooks: writing guest stdout: {e} (later failures are not reported)");
        }
    }
}

struct Appender;

impl OutputStream for Appender {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        append(&bytes);
        Ok(())
    }
    /// A guest's flush does not force a write: its lines go out with the next batch.
    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }
    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(FLUSH_AT)
    }
}

#[async_trait::async_trait]
impl Pollable for Appender {
    async fn ready(&mut self) {}
}

impl tokio::io::AsyncWrite for Appender {
    fn poll_write(self: Pin<&mut Self>, _cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        append(buf);
        Poll::Ready(Ok(buf.len()))
    }
    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_go_out_whole_in_order_and_a_batch_is_full_at_its_bound() {
        let batch = Batch::new();
        assert!(!batch.append(b"one\n"));
        assert!(!batch.append(b"two\n"));
        let mut out = Vec::new();
        batch.write_to(&mut out).unwrap();
        assert_eq!(out, b"one\ntwo\n");
        batch.write_to(&mut out).unwrap();
        assert_eq!(out, b"one\ntwo\n", "a batch goes out once");
        assert!(!batch.append(&vec![b'x'; FLUSH_AT - 1]));
        assert!(batch.append(b"\n"), "full at FLUSH_AT bytes");
        let mut out = Vec::new();
        batch.write_to(&mut out).unwrap();
        assert_eq!(out.len(), FLUSH_AT);
    }
}

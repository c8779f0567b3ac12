//! Per-request capture of a guest's stdout and stderr: bounded in memory, never written
//! raw to the server's own output. Writes past the bound are dropped (and counted) rather
//! than failed, so a chatty script keeps running. When the request ends the text becomes
//! at most `MAX_LINES` lines with every control character escaped, so one request
//! cannot flood the server's log with events or forge lines in it (a raw CR or escape
//! sequence never reaches a terminal).

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};

/// The captured output of one request, shared by its stdout and stderr streams.
#[derive(Clone)]
pub struct LogCapture {
    inner: Arc<Mutex<Captured>>,
}

#[derive(Default)]
pub struct Captured {
    text: Vec<u8>,
    dropped_bytes: u64,
    capacity: usize,
}

/// Most console lines one request logs (and shows in its tail event); past it the rest
/// are counted, not logged.
pub const MAX_LINES: usize = 256;

/// What a request printed, ready to log.
pub struct ConsoleLines {
    /// At most `MAX_LINES`, control characters escaped.
    pub lines: Vec<String>,
    /// Lines past `MAX_LINES`.
    pub dropped_lines: usize,
    /// Bytes past the capture's capacity.
    pub dropped_bytes: u64,
}

impl Captured {
    /// The captured text as loggable lines.
    pub fn into_lines(self) -> ConsoleLines {
        let text = String::from_utf8_lossy(&self.text);
        let mut all = text.lines();
        let lines: Vec<String> = all.by_ref().take(MAX_LINES).map(escape_controls).collect();
        ConsoleLines {
            lines,
            dropped_lines: all.count(),
            dropped_bytes: self.dropped_bytes,
        }
    }
}

/// `line` with every control character (C0, DEL, C1) written as an escape (`\r`,
/// `\u{1b}`).
pub fn escape_controls(line: &str) -> String {
    if !line.chars().any(char::is_control) {
        return line.to_owned();
    }
    line.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

impl LogCapture {
    pub fn new(capacity: usize) -> Self {
        LogCapture {
            inner: Arc::new(Mutex::new(Captured {
                capacity,
                ..Captured::default()
            })),
        }
    }

    /// Takes what was captured so far.
    pub fn take(&self) -> Captured {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let capacity = inner.capacity;
        std::mem::replace(
            &mut *inner,
            Captured {
                capacity,
                ..Captured::default()
            },
        )
    }

    pub fn append(&self, bytes: &[u8]) {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let room = inner.capacity.saturating_sub(inner.text.len());
        let kept = bytes.len().min(room);
        inner.text.extend_from_slice(&bytes[..kept]);
        inner.dropped_bytes += (bytes.len() - kept) as u64;
    }
}

impl IsTerminal for LogCapture {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for LogCapture {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(AsyncCapture(self.clone()))
    }
}

#[wasmtime_wasi::async_trait]
impl OutputStream for LogCapture {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.append(&bytes);
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(64 * 1024)
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for LogCapture {
    async fn ready(&mut self) {}
}

/// The same capture seen as a tokio writer (used by WASIp3-style streams).
struct AsyncCapture(LogCapture);

impl tokio::io::AsyncWrite for AsyncCapture {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        self.0.append(buf);
        std::task::Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
}

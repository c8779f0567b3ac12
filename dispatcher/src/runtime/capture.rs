//! Per-request capture of a guest's stdout and stderr: bounded in memory, never written
//! raw to the server's own output. Writes past the bound are dropped (and counted) rather
//! than failed, so a chatty script keeps running; the captured text is logged with the
//! script's name when the request ends.

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
    pub text: Vec<u8>,
    pub dropped_bytes: u64,
    capacity: usize,
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

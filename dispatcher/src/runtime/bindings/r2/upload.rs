//! A put in progress (`platform:worker/r2.upload`): the guest writes the body to an
//! `output-stream` whose chunks go through a bounded channel to a pump task that writes
//! them to the pending object as they come (so at most a few chunks are in host memory),
//! and `finish` waits for the pump, which commits once the guest has dropped the stream.
//! A chunk the store refuses (quota, size) ends the pump: the guest's next write fails
//! and `finish` tells why; nothing is stored. Dropping the upload unfinished (or the run
//! ending) aborts the pump, which drops the pending object and its temporary file.

use bytes::Bytes;
use tokio::sync::mpsc;
use wasmtime_wasi::async_trait;
use wasmtime_wasi::p2::{DynOutputStream, OutputStream, Pollable, StreamError, StreamResult};

use super::objects::{ObjectMeta, PendingPut, R2Error};

/// Most bytes one write of the guest may carry.
const CHUNK_BYTES: usize = 64 << 10;
/// Chunks in flight between the guest and the pump.
const CHUNKS_IN_FLIGHT: usize = 4;

pub struct UploadHandle {
    /// The stream the guest writes the body to, until it takes it.
    body: Option<DynOutputStream>,
    pump: tokio::task::JoinHandle<Result<ObjectMeta, R2Error>>,
}

impl UploadHandle {
    pub fn start(pending: PendingPut) -> UploadHandle {
        let (sender, receiver) = mpsc::channel(CHUNKS_IN_FLIGHT);
        UploadHandle {
            body: Some(Box::new(BodyStream {
                sender,
                permit: None,
            })),
            pump: tokio::spawn(pump(receiver, pending)),
        }
    }

    /// The body stream, the first time.
    pub fn take_body(&mut self) -> Option<DynOutputStream> {
        self.body.take()
    }

    /// Commits the object once the body stream is gone (an untaken one is an empty body).
    pub async fn finish(mut self) -> Result<ObjectMeta, R2Error> {
        drop(self.body.take());
        match (&mut self.pump).await {
            Ok(result) => result,
            Err(error) => Err(R2Error::Io(std::io::Error::other(error))),
        }
    }
}

impl Drop for UploadHandle {
    fn drop(&mut self) {
        self.pump.abort();
    }
}

async fn pump(
    mut chunks: mpsc::Receiver<Bytes>,
    mut pending: PendingPut,
) -> Result<ObjectMeta, R2Error> {
    while let Some(chunk) = chunks.recv().await {
        pending.write(&chunk).await?;
    }
    pending.commit().await
}

/// The guest's end: a write needs a reserved place in the channel (`check-write` and
/// `subscribe` reserve one).
struct BodyStream {
    sender: mpsc::Sender<Bytes>,
    permit: Option<mpsc::OwnedPermit<Bytes>>,
}

#[async_trait]
impl Pollable for BodyStream {
    async fn ready(&mut self) {
        if self.permit.is_none() {
            // A closed channel (the pump stopped) is ready too: the next write fails.
            self.permit = self.sender.clone().reserve_owned().await.ok();
        }
    }
}

impl OutputStream for BodyStream {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        if bytes.len() > CHUNK_BYTES {
            return Err(StreamError::trap("write exceeded the permitted size"));
        }
        match self.permit.take() {
            Some(permit) => {
                permit.send(bytes);
                Ok(())
            }
            None if self.sender.is_closed() => Err(StreamError::Closed),
            None => Err(StreamError::trap("write without a permit from check-write")),
        }
    }

    fn flush(&mut self) -> StreamResult<()> {
        // What was written is in the channel already, and reaches the store in order.
        if self.sender.is_closed() {
            return Err(StreamError::Closed);
        }
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        if self.permit.is_some() {
            return Ok(CHUNK_BYTES);
        }
        match self.sender.clone().try_reserve_owned() {
            Ok(permit) => {
                self.permit = Some(permit);
                Ok(CHUNK_BYTES)
            }
            Err(mpsc::error::TrySendError::Full(_)) => Ok(0),
            Err(mpsc::error::TrySendError::Closed(_)) => Err(StreamError::Closed),
        }
    }
}

//! A run polled by its request's own task until the guest sets its response head
//! ([`InlineGuest`], [`await_head`]). Most runs (hello) set the head, write the body and
//! return in that first poll, so they cost no spawned task and wake no other thread. A run
//! still going once its head is set, or whose request is dropped while it runs, goes on in
//! a task of its own.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use futures::FutureExt as _;
use wasmtime_wasi_http::p2::bindings::http::types::ErrorCode;
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;

use super::cancel::{self, WatchedBody};
use super::invoke::InvokeError;

/// Where the guest sets its response head.
pub(super) type HeadReceiver = tokio::sync::oneshot::Receiver<Head>;

/// What a guest's run ends with: `None` when its client went away first.
pub(super) type RunEnd = Option<Result<(), InvokeError>>;

/// A guest's run, polled by the request's own task until the response head is known (see
/// the module docs). Detached ([`InlineGuest::detach`]) once the head is set, or when the
/// request is dropped while it runs: there it finds its client gone and is recorded as
/// canceled.
pub(super) struct InlineGuest {
    running: Option<Pin<Box<dyn Future<Output = RunEnd> + Send>>>,
}

impl InlineGuest {
    /// A panic in the host while it runs the guest (a bug) ends the run with an error,
    /// as it did when every run was a task of its own, rather than the connection's task.
    pub(super) fn new(run: impl Future<Output = RunEnd> + Send + 'static) -> InlineGuest {
        let run = AssertUnwindSafe(run).catch_unwind().map(|ended| {
            ended.unwrap_or_else(|_| {
                Some(Err(InvokeError::ScriptError(
                    "the run panicked in the host".into(),
                )))
            })
        });
        InlineGuest {
            running: Some(Box::pin(run)),
        }
    }

    /// Polls the run if it is still going; its end once, `Pending` after.
    fn poll_end(&mut self, cx: &mut Context<'_>) -> Poll<RunEnd> {
        let Some(running) = self.running.as_mut() else {
            return Poll::Pending;
        };
        let end = ready!(running.as_mut().poll(cx));
        self.running = None;
        Poll::Ready(end)
    }

    /// Its end, polled to completion here.
    async fn end(mut self) -> RunEnd {
        std::future::poll_fn(|cx| self.poll_end(cx)).await
    }

    /// Lets a run still going go on in a task of its own.
    fn detach(&mut self) {
        if let Some(running) = self.running.take()
            && let Ok(tokio) = tokio::runtime::Handle::try_current()
        {
            tokio.spawn(running);
        }
    }
}

impl Drop for InlineGuest {
    fn drop(&mut self) {
        self.detach();
    }
}

/// The guest's response head once it is set.
pub(super) type Head = Result<hyper::Response<HyperOutgoingBody>, ErrorCode>;

/// The first of: the guest set its response head, or its run ended.
enum First {
    Head(Result<Head, tokio::sync::oneshot::error::RecvError>),
    Ended(RunEnd),
}

/// The response head as soon as the guest sets it (its body watched: a client gone
/// before the end cancels the run), or why there is none. Dropped while the client waits
/// for the head, the watch cancels the run.
pub(super) async fn await_head(
    mut head: HeadReceiver,
    mut guest: InlineGuest,
    head_only: bool,
    watch: cancel::ClientWatch,
) -> Result<hyper::Response<WatchedBody<HyperOutgoingBody>>, InvokeError> {
    // The guest first: it sets the head while it runs.
    let first = std::future::poll_fn(|cx| {
        if let Poll::Ready(end) = guest.poll_end(cx) {
            return Poll::Ready(First::Ended(end));
        }
        Pin::new(&mut head).poll(cx).map(First::Head)
    })
    .await;
    let head = match first {
        First::Head(Ok(head)) => {
            guest.detach();
            head
        }
        // The guest dropped its response outparam unset: its end says why.
        First::Head(Err(_)) => return Err(no_head(guest.end().await)),
        First::Ended(end) => match head.try_recv() {
            Ok(head) => head,
            Err(_) => return Err(no_head(end)),
        },
    };
    match head {
        Ok(response) => Ok(WatchedBody::wrap(response, head_only, watch)),
        Err(code) => {
            // The client gets the error in full.
            watch.release();
            Err(InvokeError::ScriptError(format!(
                "the script answered with an error: {code:?}"
            )))
        }
    }
}

/// Why a run that ended with `end` set no response.
fn no_head(end: RunEnd) -> InvokeError {
    match end {
        Some(Err(e)) => e,
        Some(Ok(())) => {
            InvokeError::ScriptError("the script returned without setting a response".into())
        }
        None => InvokeError::ScriptError("the run was canceled".into()),
    }
}

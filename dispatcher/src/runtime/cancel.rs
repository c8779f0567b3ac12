//! A run is cancelled when its client goes.
//!
//! The request side holds a [`ClientWatch`] while it waits for the response head, then
//! hands it to the response body ([`WatchedBody`]); the run awaits its
//! [`Cancellation`] next to the guest. The watch dropped before the response is complete
//! — the request future dropped before its head came back, or the body dropped before
//! its end (hyper drops it when the connection closes) — cancels the run: it drops
//! the guest at once, and with its store the instance slot, its memory and its upstream
//! connections, and the run is recorded as `canceled`. A response the client got whole
//! releases the watch: the guest goes on (the SDK's `ctx.wait_until` work runs after the
//! body is finished) until it returns or its own limits end it.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame};
use tokio::sync::oneshot;

/// A new watch on a run's client, and what the run's task awaits to learn it went away.
pub(super) fn watch() -> (ClientWatch, Cancellation) {
    let (sender, receiver) = oneshot::channel();
    (ClientWatch(sender), Cancellation(receiver))
}

/// Held for as long as the client still waits for the run's response; dropped unreleased,
/// it cancels the run.
pub(super) struct ClientWatch(oneshot::Sender<()>);

impl ClientWatch {
    /// The client has all it will get from the run: whatever happens next, the run goes
    /// on.
    pub(super) fn release(self) {
        // The task may be done already; then there is nobody to tell.
        let _ = self.0.send(());
    }
}

/// The run's side of a [`ClientWatch`].
pub(super) struct Cancellation(oneshot::Receiver<()>);

impl Cancellation {
    /// Resolves when the client went away; never once the watch was released.
    pub(super) async fn client_gone(self) {
        if self.0.await.is_ok() {
            std::future::pending::<()>().await;
        }
    }
}

/// A response body that releases its run's watch when the client got all of it, and
/// cancels the run when it is dropped before.
pub(super) struct WatchedBody<B> {
    body: B,
    watch: Option<ClientWatch>,
    /// Bytes still to come of a response with a `content-length` (hyper stops polling,
    /// and drops the body, once it sent that many).
    remaining: Option<u64>,
}

impl<B: Body<Data = Bytes> + Unpin> WatchedBody<B> {
    /// `response`, to a request whose method was `HEAD` when `head_only`, with its body
    /// watched.
    pub(super) fn wrap(
        response: hyper::Response<B>,
        head_only: bool,
        watch: ClientWatch,
    ) -> hyper::Response<WatchedBody<B>> {
        let status = response.status();
        // Nothing of these bodies is ever sent: the head is the whole response.
        let no_body = head_only
            || status.is_informational()
            || status == http::StatusCode::NO_CONTENT
            || status == http::StatusCode::NOT_MODIFIED;
        let remaining = response
            .headers()
            .get(http::header::CONTENT_LENGTH)
            .and_then(|value| value.to_str().ok()?.parse::<u64>().ok());
        let mut watched = response.map(|body| WatchedBody {
            body,
            watch: Some(watch),
            remaining,
        });
        if no_body || remaining == Some(0) || watched.body().body.is_end_stream() {
            watched.body_mut().release();
        }
        watched
    }

    fn release(&mut self) {
        if let Some(watch) = self.watch.take() {
            watch.release();
        }
    }
}

impl<B: Body<Data = Bytes> + Unpin> Body for WatchedBody<B> {
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.body).poll_frame(cx);
        let ended = match &polled {
            Poll::Pending => false,
            // An error ends the body as surely as its end does: the run's own outcome
            // says what went wrong.
            Poll::Ready(None | Some(Err(_))) => true,
            Poll::Ready(Some(Ok(frame))) => match (frame.data_ref(), this.remaining.as_mut()) {
                (Some(data), Some(remaining)) => {
                    *remaining = remaining.saturating_sub(data.len() as u64);
                    *remaining == 0
                }
                (Some(_), None) => false,
                // Trailers are the last frame.
                (None, _) => true,
            },
        };
        if ended || this.body.is_end_stream() {
            this.release();
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use http_body_util::{BodyExt as _, Full};

    use super::*;

    /// Whether the run of `cancellation` is canceled (within a moment).
    async fn canceled(cancellation: Cancellation) -> bool {
        tokio::time::timeout(Duration::from_millis(50), cancellation.client_gone())
            .await
            .is_ok()
    }

    fn response(length: Option<&str>, status: u16) -> hyper::Response<Full<Bytes>> {
        let mut response = hyper::Response::builder().status(status);
        if let Some(length) = length {
            response = response.header("content-length", length);
        }
        response
            .body(Full::new(Bytes::from_static(b"hello")))
            .unwrap()
    }

    #[tokio::test]
    async fn a_body_dropped_before_its_end_cancels_the_run() {
        let (client, cancellation) = watch();
        drop(WatchedBody::wrap(response(None, 200), false, client));
        assert!(canceled(cancellation).await);
    }

    #[tokio::test]
    async fn a_body_read_to_its_end_or_its_length_lets_the_run_go_on() {
        let (client, cancellation) = watch();
        let body = WatchedBody::wrap(response(None, 200), false, client).into_body();
        assert_eq!(body.collect().await.unwrap().to_bytes(), "hello");
        assert!(!canceled(cancellation).await);

        // hyper drops a body once it sent `content-length` bytes, without polling on.
        let (client, cancellation) = watch();
        let mut body = WatchedBody::wrap(response(Some("5"), 200), false, client).into_body();
        let _ = body.frame().await;
        drop(body);
        assert!(!canceled(cancellation).await);
    }

    #[tokio::test]
    async fn a_response_without_a_body_on_the_wire_lets_the_run_go_on() {
        for (head_only, status) in [(true, 200), (false, 204), (false, 304)] {
            let (client, cancellation) = watch();
            drop(WatchedBody::wrap(response(None, status), head_only, client));
            assert!(!canceled(cancellation).await, "{head_only} {status}");
        }
    }

    #[tokio::test]
    async fn the_request_dropped_before_its_head_cancels_the_run() {
        let (client, cancellation) = watch();
        drop(client);
        assert!(canceled(cancellation).await);
    }
}

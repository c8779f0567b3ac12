//! [`Context`], the per-request context: work to finish after the response is sent.

use std::cell::RefCell;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;

type Pending = Vec<Pin<Box<dyn Future<Output = ()>>>>;

/// The context of one request. Clones share it.
///
/// ```ignore
/// ctx.wait_until(async move {
///     if let Err(e) = db.execute("INSERT INTO hits (path) VALUES (?)", sdk::params![path]) {
///         sdk::log::error(format!("logging the hit: {e:#}"));
///     }
/// });
/// ```
#[derive(Clone, Default)]
pub struct Context {
    pending: Rc<RefCell<Pending>>,
}

impl Context {
    /// Runs `future` after the response has been fully sent, before the request ends.
    ///
    /// The client does not wait for it, but the platform's limits for the request (time,
    /// memory) still apply. The futures run concurrently; a future may itself call
    /// `wait_until`. A failure inside it must be handled (logged) there.
    pub fn wait_until(&self, future: impl Future<Output = ()> + 'static) {
        self.pending.borrow_mut().push(Box::pin(future));
    }

    /// Runs every future given to [`Context::wait_until`] to completion, including those
    /// they add themselves.
    pub(crate) async fn finish(&self) {
        loop {
            let batch = std::mem::take(&mut *self.pending.borrow_mut());
            if batch.is_empty() {
                return;
            }
            let tasks: Vec<_> = batch.into_iter().map(wstd::runtime::spawn).collect();
            for task in tasks {
                task.await;
            }
        }
    }
}

impl fmt::Debug for Context {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Context")
            .field("pending", &self.pending.borrow().len())
            .finish()
    }
}

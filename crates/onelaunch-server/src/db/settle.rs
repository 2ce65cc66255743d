//! Work an upload leaves for later, done in the background (SQLite).
//!
//! Two kinds of rows would cost an upload a random write per result if it
//! kept them itself, because a suite's results arrive in no order (their
//! files are named by uuid) and a commit writes every page it changed whole:
//! * a test case's latest attempt (`test_case_last`): an upload queues the
//!   attempts at known cases and [`super::case_last::settle`] folds the
//!   queue in case order;
//! * the web UI's order of a launch's results (`ui_results`):
//!   [`super::ui_order::settle`] copies the results above a mark, sorted.
//!
//! Both are settled many uploads at a time, so each page is written once per
//! settle rather than once per commit. [`Settler`] is what the writers tell
//! about that work (how much is pending) and what keeps each kind of settle
//! one at a time; [`spawn`] runs both when uploads pause, when enough is
//! pending, and when a reader asks for the UI order.
//!
//! PostgreSQL logs the rows it changes, not their pages: there nothing is
//! left for later and the loop does not run.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use super::*;

/// How long uploads pause before the background settles run.
pub(crate) const SETTLE_QUIET: Duration = Duration::from_millis(500);

/// Work of one kind left for later: how much this process added since its
/// last settle, and the lock that keeps those settles one at a time.
#[derive(Debug, Default)]
pub(crate) struct Backlog {
    pending: AtomicUsize,
    running: tokio::sync::Mutex<()>,
}

impl Backlog {
    fn add(&self, n: usize) {
        self.pending.fetch_add(n, Ordering::Relaxed);
    }

    fn pending(&self) -> usize {
        self.pending.load(Ordering::Relaxed)
    }

    /// Holds this kind's settle for the caller and counts what it finds as
    /// taken: what is added while it runs starts the next one.
    pub(super) async fn begin(&self) -> tokio::sync::MutexGuard<'_, ()> {
        let guard = self.running.lock().await;
        self.pending.store(0, Ordering::Relaxed);
        guard
    }
}

/// What this process left for later, and the wake of the background loop.
#[derive(Debug, Default)]
pub(crate) struct Settler {
    /// Attempts queued in `test_case_pending` ([`super::case_last`]).
    pub(super) cases: Backlog,
    /// Results not yet in the web UI's order ([`super::ui_order`]).
    pub(super) order: Backlog,
    /// A reader found a launch with results newer than the UI order.
    wanted: AtomicBool,
    wake: tokio::sync::Notify,
}

impl Settler {
    /// `n` results were stored, with their attempts (some of them queued).
    pub(crate) fn queued(&self, n: usize) {
        if n > 0 {
            self.cases.add(n);
            self.stored(n);
        }
    }

    /// `n` results were stored whose attempts were written at once (manual
    /// results, a combined launch): only the web UI's order has to follow.
    pub(crate) fn stored(&self, n: usize) {
        if n > 0 {
            self.order.add(n);
            self.wake.notify_one();
        }
    }

    /// A reader wants the web UI's order settled now, not when uploads pause.
    pub(crate) fn want_order(&self) {
        if !self.wanted.swap(true, Ordering::Relaxed) {
            self.wake.notify_one();
        }
    }
}

/// Settles in the background: both kinds once at start (what an earlier
/// process left), then the case queue whenever uploads paused for
/// [`SETTLE_QUIET`] or [`super::case_last::SETTLE_AT`] attempts are queued,
/// and the UI order when uploads paused, every [`super::ui_order::SETTLE_AT`]
/// results, and when a reader asked ([`Settler::want_order`]).
pub(crate) fn spawn(db: Db) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        if db.backend != Backend::Sqlite {
            return; // nothing is left for later there
        }
        let settler = db.settler.clone();
        let mut quiet = true;
        loop {
            if let Err(e) = super::case_last::settle(&db).await {
                tracing::warn!(error = %e, "folding test cases' last attempts failed; retrying later");
            }
            let wanted = settler.wanted.swap(false, Ordering::Relaxed);
            if quiet || wanted || settler.order.pending() >= super::ui_order::SETTLE_AT {
                if let Err(e) = super::ui_order::settle(&db).await {
                    tracing::warn!(error = %e, "ordering results for the web UI failed; retrying later");
                }
            }
            settler.wake.notified().await;
            quiet = false;
            while settler.cases.pending() < super::case_last::SETTLE_AT
                && !settler.wanted.load(Ordering::Relaxed)
            {
                if tokio::time::timeout(SETTLE_QUIET, settler.wake.notified())
                    .await
                    .is_err()
                {
                    quiet = true;
                    break;
                }
            }
        }
    })
}

//! Group commit on SQLite: the ingest writes (a batch of results, a request's
//! attachments) that queue for the one writer connection while it is busy
//! run together in one transaction and are answered after that transaction
//! commits.
//!
//! Why: a commit appends every page it dirtied to the WAL, and a batch of
//! results dirties pages all over the launch's indexes (uuids, test keys and
//! names are in no order). Requests that arrive while another one is being
//! written (the client's next batch, a chunk's attachments, twenty job runs
//! uploading at once) used to be as many commits, each writing most of those
//! pages again; one commit writes each page once. Nothing waits for company:
//! a group starts with the first write queued and takes, each time a member
//! is done, whatever queued meanwhile (also while the group runs: the
//! batches the client sent while the ones before were written), and commits
//! when nothing more is queued or it is full. A lone request starts at once
//! and commits at once, as before.
//!
//! The guarantees stay each request's own:
//! * **Nothing is acknowledged before it is durable**: every member is
//!   answered after the group's `COMMIT`.
//! * **One request's failure is its own**: a member whose work fails is
//!   answered with its error and leaves nothing behind; the others go on.
//!   Members run straight in the group's transaction, without a savepoint
//!   each: a savepoint copies every page its member changes into a journal
//!   (in memory, see `Db::connect`) in case it is rolled back, which is
//!   about a tenth of the writer's work for an upload that never fails.
//!   When a member fails there, its writes are mixed with the others', so
//!   the transaction is rolled back and the members that worked are run
//!   again ("replayed"; their work is idempotent and kept for that) in a new
//!   transaction, each in a savepoint this time, as are the members of the
//!   groups that start within [`SAVEPOINTS_AFTER_A_FAILURE`]: requests that
//!   keep failing cost the others one replay per that time at most, not one
//!   per failure. Only a failure that leaves the transaction unusable (the
//!   database full; a savepoint that cannot be rolled back; a failed
//!   commit) fails the whole group: nothing of it was kept, and every member
//!   is told so (503, retry), which is what the client does with any
//!   unacknowledged batch.
//! * **A client that goes away changes nothing for the others**: the work
//!   runs in the group's own task, which a dropped request cannot cancel
//!   (its writes are idempotent; a re-send finds them).
//!
//! PostgreSQL has many connections and row-level locks: there each request
//! keeps its own transaction ([`grouped`] runs the work inline).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use futures::FutureExt;
use sqlx::{AnyConnection, AnyPool, Connection};
use tokio::sync::{mpsc, oneshot};

use super::{Db, Recent};
use crate::error::{ServerError, ServerResult};

/// The most work (results, attachment rows) one group takes: bounds the
/// transaction (its WAL pages) and how long its first member waits.
pub(crate) const MAX_GROUP_WEIGHT: usize = 4000;
/// The most requests one group takes.
pub(crate) const MAX_GROUP_MEMBERS: usize = 32;
/// After a member failed, groups give each member a savepoint for this long
/// (see the module documentation).
pub(crate) const SAVEPOINTS_AFTER_A_FAILURE: Duration = Duration::from_secs(10);

/// How a group ended, as its members are told.
#[derive(Debug, Clone)]
enum Outcome {
    Committed,
    /// The database is full: nothing of the group was kept.
    Full(String),
    /// The transaction could not go on or commit: nothing of it was kept.
    Failed,
}

/// A member's work: run in its group's transaction (again when the group is
/// replayed); what it answers is kept by the member for its answer.
type Work = Box<dyn for<'c> FnMut(&'c mut AnyConnection) -> BoxFuture<'c, ServerResult<()>> + Send>;

struct Job {
    weight: usize,
    work: Work,
    /// Answers the member, once: `Ok` once its group committed, or an error.
    /// It is handed the work too, so that what the work holds (a batch of
    /// decoded results) is freed by the member's task, not the writer.
    answer: Box<dyn FnOnce(ServerResult<()>, Work) + Send>,
}

impl Job {
    /// Answers the member with how its group ended.
    fn answer(self, outcome: &Outcome) {
        self.reply(match outcome {
            Outcome::Committed => Ok(()),
            other => Err(member_error(other)),
        })
    }

    /// Answers the member with `result`.
    fn reply(self, result: ServerResult<()>) {
        (self.answer)(result, self.work)
    }
}

/// The queue to the group writer (SQLite only).
#[derive(Clone)]
pub(crate) struct Groups {
    tx: mpsc::UnboundedSender<Job>,
    counts: Arc<Counts>,
}

/// What the group writer did (`/metrics`, tests).
#[derive(Debug, Default)]
pub(crate) struct Counts {
    /// Writes queued.
    pub(crate) queued: AtomicUsize,
    /// Writes the group writer took from the queue.
    pub(crate) taken: AtomicUsize,
    /// Groups run (each one transaction, or two when it was replayed).
    pub(crate) groups: AtomicUsize,
    /// Groups rolled back and run again after a member failed in them.
    pub(crate) replayed: AtomicUsize,
}

impl Counts {
    /// Writes queued, taken, groups run and groups replayed, read together.
    pub(crate) fn read(&self) -> (usize, usize, usize, usize) {
        (
            self.queued.load(Ordering::Relaxed),
            self.taken.load(Ordering::Relaxed),
            self.groups.load(Ordering::Relaxed),
            self.replayed.load(Ordering::Relaxed),
        )
    }
}

impl Groups {
    /// Starts the group writer on `pool` (the one writer connection), on a
    /// thread of its own; it ends when the last [`Db`] holding this queue is
    /// dropped. `recent` is the [`Db`]'s: what a rolled-back group
    /// remembered there is forgotten, so its replay writes it.
    ///
    /// Its own thread, not a task of the server's runtime: a group's work
    /// hands each statement to the connection's SQLite thread and goes on
    /// when it is answered, dozens of times per member. As a task it was
    /// queued behind whatever the runtime's workers were doing at each of
    /// those turns (decoding the next batches, their stored JSON), and the
    /// one writer, the serial part of an upload, waited
    /// (docs/ingest-profile.md, "The writer kept busy").
    pub(crate) fn start(pool: AnyPool, recent: Arc<Recent>) -> std::io::Result<Self> {
        let (tx, rx) = mpsc::unbounded_channel();
        let counts = Arc::new(Counts::default());
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let writer = Writer {
            pool,
            recent,
            counts: counts.clone(),
            last_failure: None,
        };
        std::thread::Builder::new()
            .name("onelaunch-writer".into())
            .spawn(move || runtime.block_on(writer.run(rx)))?;
        Ok(Groups { tx, counts })
    }

    pub(crate) fn counts(&self) -> &Counts {
        &self.counts
    }
}

/// Runs `work` in a write transaction: on SQLite in the current group's
/// (see the module documentation), on PostgreSQL in its own. `weight` is how
/// much it writes (results, rows), for the group's bound. On SQLite the
/// work may run more than once (a replay after another member failed: the
/// first run's writes were rolled back); it must be idempotent, as every
/// ingest write is. Answers the value of its last run once it is committed.
pub(crate) async fn grouped<T, F>(db: &Db, weight: usize, mut work: F) -> ServerResult<T>
where
    T: Send + 'static,
    F: for<'c> FnMut(&'c mut AnyConnection) -> BoxFuture<'c, ServerResult<T>> + Send + 'static,
{
    // Only SQLite has a group writer.
    let groups = match &db.groups {
        Some(g) => g,
        None => {
            let mut tx = db.write.begin().await?;
            let value = work(&mut tx).await?;
            tx.commit().await?;
            return Ok(value);
        }
    };
    let (answer, answered) = oneshot::channel::<(ServerResult<T>, Work)>();
    // The value of the work's last run, until it is answered.
    let value: Arc<Mutex<Option<T>>> = Arc::default();
    let kept = value.clone();
    let job = Job {
        weight: weight.max(1),
        work: Box::new(move |conn| {
            let run = work(conn);
            let kept = kept.clone();
            async move {
                let v = run.await?;
                *kept.lock().unwrap_or_else(|e| e.into_inner()) = Some(v);
                Ok(())
            }
            .boxed()
        }),
        answer: Box::new(move |result: ServerResult<()>, work: Work| {
            let value = value.lock().unwrap_or_else(|e| e.into_inner()).take();
            let result = result.and_then(|()| value.ok_or_else(|| member_error(&Outcome::Failed)));
            let _ = answer.send((result, work));
        }),
    };
    groups.counts.queued.fetch_add(1, Ordering::Relaxed);
    if groups.tx.send(job).is_err() {
        return Err(member_error(&Outcome::Failed));
    }
    // The sender is dropped unanswered only if the writer panicked. The
    // work is dropped here, with what it holds.
    match answered.await {
        Ok((result, _work)) => result,
        Err(_) => Err(member_error(&Outcome::Failed)),
    }
}

/// What a member's work must be followed by, when it did not work.
enum Failure {
    /// Its own error (answered to it); the transaction can go on once its
    /// writes are undone.
    Member(ServerError),
    /// The database is full: the transaction cannot go on.
    Full(ServerError),
    /// The work panicked: the transaction cannot be trusted.
    Panicked,
}

/// Runs a member's work on `conn` (the group's transaction or a savepoint in it).
async fn run_member(job: &mut Job, conn: &mut AnyConnection) -> Result<(), Failure> {
    match std::panic::AssertUnwindSafe((job.work)(conn))
        .catch_unwind()
        .await
    {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e @ ServerError::StorageFull(_))) => Err(Failure::Full(e)),
        Ok(Err(e)) => Err(Failure::Member(e)),
        Err(_) => {
            tracing::error!("an ingest write panicked; its group is rolled back");
            Err(Failure::Panicked)
        }
    }
}

/// What a member did in a group, and what the group must do next.
enum Step {
    /// It worked: it waits for the commit.
    Done,
    /// It failed alone, with this error, and nothing of it is left.
    Refused(ServerError),
    /// It failed with this error, its writes among the others': roll back
    /// and replay them.
    Replay(ServerError),
    /// The group cannot go on: it ends with this outcome. The member is
    /// answered with its own error, if it has one, or with the outcome.
    Broken(Outcome, Option<ServerError>),
}

/// The group writer and what it remembers between groups.
struct Writer {
    pool: AnyPool,
    recent: Arc<Recent>,
    counts: Arc<Counts>,
    /// When a member last failed (savepoints for a while after).
    last_failure: Option<Instant>,
}

impl Writer {
    /// A group for the first write queued, again.
    async fn run(mut self, mut rx: mpsc::UnboundedReceiver<Job>) {
        while let Some(first) = rx.recv().await {
            self.counts.taken.fetch_add(1, Ordering::Relaxed);
            self.group(first, &mut rx).await;
        }
    }

    /// One group: one transaction, one commit. Its members are `first`,
    /// then, each time a member is done, the next write queued meanwhile,
    /// until none is queued or the group is full ([`MAX_GROUP_WEIGHT`],
    /// [`MAX_GROUP_MEMBERS`]). A member that fails without a savepoint has
    /// the transaction rolled back and the others replayed in a new one,
    /// with savepoints. After a failure that ends the group, what is still
    /// queued waits for the next group. The group is counted before its
    /// members are answered, so whoever holds an answer sees it counted.
    async fn group(&mut self, first: Job, rx: &mut mpsc::UnboundedReceiver<Job>) {
        let (mut weight, mut members) = (first.weight, 1);
        // Members to run (again) before any new one is taken.
        let mut pending = VecDeque::from([first]);
        // Members whose work is done in the current transaction.
        let mut done: Vec<Job> = Vec::new();
        let mut savepoints = self
            .last_failure
            .is_some_and(|t| t.elapsed() < SAVEPOINTS_AFTER_A_FAILURE);
        let outcome = 'group: loop {
            let mut tx = match self.pool.begin().await {
                Ok(tx) => tx,
                Err(e) => break outcome_of(e),
            };
            // The next member: one to run again, or whatever has queued by
            // now, within the group's bounds.
            while let Some(mut job) = pending.pop_front().or_else(|| {
                if weight >= MAX_GROUP_WEIGHT || members >= MAX_GROUP_MEMBERS {
                    return None;
                }
                let job = rx.try_recv().ok()?;
                weight += job.weight;
                members += 1;
                self.counts.taken.fetch_add(1, Ordering::Relaxed);
                Some(job)
            }) {
                let step = if savepoints {
                    in_savepoint(&mut job, &mut tx).await
                } else {
                    match run_member(&mut job, &mut tx).await {
                        Ok(()) => Step::Done,
                        Err(Failure::Member(e)) => Step::Replay(e),
                        Err(Failure::Full(e)) => Step::Broken(full(), Some(e)),
                        Err(Failure::Panicked) => Step::Broken(Outcome::Failed, None),
                    }
                };
                match step {
                    Step::Done => done.push(job),
                    Step::Refused(e) => {
                        self.last_failure = Some(Instant::now());
                        job.reply(Err(e));
                    }
                    Step::Replay(e) => {
                        self.last_failure = Some(Instant::now());
                        self.counts.replayed.fetch_add(1, Ordering::Relaxed);
                        tracing::debug!(
                            members = done.len(),
                            "a member of a write group failed; the others run again"
                        );
                        let rolled_back = tx.rollback().await;
                        self.recent.forget();
                        job.reply(Err(e));
                        if let Err(e) = rolled_back {
                            break 'group outcome_of(e);
                        }
                        savepoints = true;
                        pending = done.drain(..).chain(pending.drain(..)).collect();
                        continue 'group;
                    }
                    Step::Broken(outcome, own) => {
                        let _ = tx.rollback().await;
                        self.recent.forget();
                        match own {
                            Some(e) => job.reply(Err(e)),
                            None => done.push(job),
                        }
                        break 'group outcome;
                    }
                }
            }
            break match tx.commit().await {
                Ok(()) => Outcome::Committed,
                Err(e) => {
                    self.recent.forget();
                    outcome_of(e)
                }
            };
        };
        self.counts.groups.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(members, weight, "write group");
        for job in done.into_iter().chain(pending) {
            job.answer(&outcome);
        }
    }
}

/// Runs a member in a savepoint of `tx`: a failure of its own is rolled
/// back to the savepoint, and the group goes on.
async fn in_savepoint(job: &mut Job, tx: &mut AnyConnection) -> Step {
    let mut part = match tx.begin().await {
        Ok(part) => part,
        // This member was not run: answered with the others.
        Err(e) => return Step::Broken(outcome_of(e), None),
    };
    match run_member(job, &mut part).await {
        Ok(()) => match part.commit().await {
            Ok(()) => Step::Done,
            Err(e) => Step::Broken(outcome_of(e), None),
        },
        Err(Failure::Member(e)) => match part.rollback().await {
            Ok(()) => Step::Refused(e),
            Err(re) => Step::Broken(outcome_of(re), Some(e)),
        },
        Err(Failure::Full(e)) => {
            drop(part);
            Step::Broken(full(), Some(e))
        }
        Err(Failure::Panicked) => {
            drop(part);
            Step::Broken(Outcome::Failed, None)
        }
    }
}

fn full() -> Outcome {
    Outcome::Full("database: no space left for a write".into())
}

/// What a member of a group that did not commit is answered.
fn member_error(outcome: &Outcome) -> ServerError {
    match outcome {
        Outcome::Full(detail) => ServerError::StorageFull(detail.clone()),
        _ => ServerError::Busy(
            "the write this request was part of could not be committed: nothing of it was kept; retry"
                .into(),
        ),
    }
}

/// The outcome a database error gives a group, logged once for all members.
fn outcome_of(e: sqlx::Error) -> Outcome {
    match ServerError::from(e) {
        ServerError::StorageFull(detail) => Outcome::Full(detail),
        other => {
            tracing::error!(error = %other, "a group of ingest writes failed; nothing of it was kept");
            Outcome::Failed
        }
    }
}

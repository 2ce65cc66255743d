//! Group commit on SQLite: the ingest writes (a batch of results, a request's
//! attachments) that queue for the one writer connection while it is busy
//! run together in one transaction, each inside its own savepoint, and are
//! answered after that transaction commits.
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
//! * **One request's failure is its own**: a member whose work fails is rolled
//!   back to its savepoint and answered with its error; the others go on.
//!   Only a failure that leaves the transaction unusable (the database full;
//!   a savepoint that cannot be rolled back; a failed commit) fails the whole
//!   group: nothing of it was kept, and every member is told so (503, retry),
//!   which is what the client does with any unacknowledged batch.
//! * **A client that goes away changes nothing for the others**: the work
//!   runs in the group's own task, which a dropped request cannot cancel
//!   (its writes are idempotent; a re-send finds them).
//!
//! PostgreSQL has many connections and row-level locks: there each request
//! keeps its own transaction ([`grouped`] runs the work inline).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use futures::future::BoxFuture;
use futures::FutureExt;
use sqlx::{AnyConnection, AnyPool, Connection};
use tokio::sync::{mpsc, oneshot};

use super::Db;
use crate::error::{ServerError, ServerResult};

/// The most work (results, attachment rows) one group takes: bounds the
/// transaction (its WAL pages) and how long its first member waits.
pub(crate) const MAX_GROUP_WEIGHT: usize = 4000;
/// The most requests one group takes.
pub(crate) const MAX_GROUP_MEMBERS: usize = 32;

/// How a group ended, as its members are told.
#[derive(Debug, Clone)]
enum Outcome {
    Committed,
    /// The database is full: nothing of the group was kept.
    Full(String),
    /// The transaction could not go on or commit: nothing of it was kept.
    Failed,
}

/// A member's answer, sent once the group's outcome is known.
type Reply = Box<dyn FnOnce(&Outcome) + Send>;

/// What a member's work left behind.
enum Ran {
    /// It worked; its answer waits for the commit.
    Done(Reply),
    /// It failed and was answered with its error; `fatal` when the error
    /// leaves the transaction unusable (the database is full).
    Failed { fatal: bool },
}

type Work = Box<dyn for<'c> FnOnce(&'c mut AnyConnection) -> BoxFuture<'c, Ran> + Send>;

struct Job {
    weight: usize,
    work: Work,
    /// Answers the member without running it (its group broke before it).
    unrun: Reply,
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
    /// Groups run (each one transaction).
    pub(crate) groups: AtomicUsize,
}

impl Counts {
    /// Writes queued, taken, and groups run, read together.
    pub(crate) fn read(&self) -> (usize, usize, usize) {
        (
            self.queued.load(Ordering::Relaxed),
            self.taken.load(Ordering::Relaxed),
            self.groups.load(Ordering::Relaxed),
        )
    }
}

impl Groups {
    /// Starts the group writer on `pool` (the one writer connection), on a
    /// thread of its own; it ends when the last [`Db`] holding this queue is
    /// dropped.
    ///
    /// Its own thread, not a task of the server's runtime: a group's work
    /// hands each statement to the connection's SQLite thread and goes on
    /// when it is answered, dozens of times per member. As a task it was
    /// queued behind whatever the runtime's workers were doing at each of
    /// those turns (decoding the next batches, their stored JSON), and the
    /// one writer, the serial part of an upload, waited
    /// (docs/ingest-profile.md, "The writer kept busy").
    pub(crate) fn start(pool: AnyPool) -> std::io::Result<Self> {
        let (tx, rx) = mpsc::unbounded_channel();
        let counts = Arc::new(Counts::default());
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let writer_counts = counts.clone();
        std::thread::Builder::new()
            .name("onelaunch-writer".into())
            .spawn(move || runtime.block_on(run(pool, rx, writer_counts)))?;
        Ok(Groups { tx, counts })
    }

    pub(crate) fn counts(&self) -> &Counts {
        &self.counts
    }
}

/// Runs `work` in a write transaction: on SQLite in a savepoint of the
/// current group's (see the module documentation), on PostgreSQL in its own.
/// `weight` is how much it writes (results, rows), for the group's bound.
/// Answers the work's value once it is committed.
pub(crate) async fn grouped<T, F>(db: &Db, weight: usize, work: F) -> ServerResult<T>
where
    T: Send + 'static,
    F: for<'c> FnOnce(&'c mut AnyConnection) -> BoxFuture<'c, ServerResult<T>> + Send + 'static,
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
    let (answer, answered) = oneshot::channel::<ServerResult<T>>();
    // Held by the work and by the answer of a member never run: whichever
    // comes first takes it.
    let answer = Arc::new(std::sync::Mutex::new(Some(answer)));
    let unrun_answer = answer.clone();
    let job = Job {
        weight: weight.max(1),
        work: Box::new(move |conn| {
            async move {
                let answer = take(&answer);
                match work(conn).await {
                    Ok(value) => Ran::Done(Box::new(move |outcome: &Outcome| {
                        if let Some(answer) = answer {
                            let _ = answer.send(match outcome {
                                Outcome::Committed => Ok(value),
                                other => Err(member_error(other)),
                            });
                        }
                    })),
                    Err(e) => {
                        let fatal = matches!(e, ServerError::StorageFull(_));
                        if let Some(answer) = answer {
                            let _ = answer.send(Err(e));
                        }
                        Ran::Failed { fatal }
                    }
                }
            }
            .boxed()
        }),
        unrun: Box::new(move |outcome: &Outcome| {
            if let Some(answer) = take(&unrun_answer) {
                let _ = answer.send(Err(member_error(outcome)));
            }
        }),
    };
    groups.counts.queued.fetch_add(1, Ordering::Relaxed);
    if groups.tx.send(job).is_err() {
        return Err(member_error(&Outcome::Failed));
    }
    // The sender is dropped unanswered only if the work panicked.
    answered
        .await
        .unwrap_or_else(|_| Err(member_error(&Outcome::Failed)))
}

/// The answer's sender, once.
fn take<A>(slot: &std::sync::Mutex<Option<A>>) -> Option<A> {
    slot.lock().unwrap_or_else(|e| e.into_inner()).take()
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

/// The group writer: a group for the first write queued, again.
async fn run(pool: AnyPool, mut rx: mpsc::UnboundedReceiver<Job>, counts: Arc<Counts>) {
    while let Some(first) = rx.recv().await {
        counts.taken.fetch_add(1, Ordering::Relaxed);
        run_group(&pool, first, &mut rx, &counts).await;
    }
}

/// One group: one transaction, a savepoint per member, one commit. Its
/// members are `first`, then, each time a member is done, the next write
/// queued meanwhile, until none is queued or the group is full
/// ([`MAX_GROUP_WEIGHT`], [`MAX_GROUP_MEMBERS`]). After a failure that ends
/// the group, what is still queued waits for the next group. The group is
/// counted before its members are answered, so whoever holds an answer sees
/// it counted.
async fn run_group(
    pool: &AnyPool,
    first: Job,
    rx: &mut mpsc::UnboundedReceiver<Job>,
    counts: &Counts,
) {
    let mut replies: Vec<Reply> = Vec::new();
    let (mut weight, mut members) = (first.weight, 1);
    let mut first = Some(first);
    // The next member: the first, then whatever has queued by the time the
    // one before it is done, within the group's bounds.
    let mut next = || -> Option<Job> {
        if let Some(job) = first.take() {
            return Some(job);
        }
        if weight >= MAX_GROUP_WEIGHT || members >= MAX_GROUP_MEMBERS {
            return None;
        }
        let job = rx.try_recv().ok()?;
        weight += job.weight;
        members += 1;
        counts.taken.fetch_add(1, Ordering::Relaxed);
        Some(job)
    };
    // The first member, when the group could not start.
    let mut unrun = None;
    let outcome = match pool.begin().await {
        Err(e) => {
            unrun = next();
            outcome_of(e)
        }
        Ok(mut tx) => {
            let mut broken = None;
            while let Some(job) = next() {
                let mut part = match tx.begin().await {
                    Ok(part) => part,
                    Err(e) => {
                        broken = Some(outcome_of(e));
                        // This member was not run: answered with the others.
                        replies.push(job.unrun);
                        break;
                    }
                };
                let ran = std::panic::AssertUnwindSafe((job.work)(&mut part))
                    .catch_unwind()
                    .await;
                match ran {
                    Ok(Ran::Done(reply)) => match part.commit().await {
                        Ok(()) => replies.push(reply),
                        Err(e) => {
                            replies.push(reply);
                            broken = Some(outcome_of(e));
                            break;
                        }
                    },
                    Ok(Ran::Failed { fatal: false }) => {
                        if let Err(e) = part.rollback().await {
                            broken = Some(outcome_of(e));
                            break;
                        }
                    }
                    Ok(Ran::Failed { fatal: true }) => {
                        drop(part);
                        broken = Some(Outcome::Full("database: no space left for a write".into()));
                        break;
                    }
                    Err(_) => {
                        tracing::error!("an ingest write panicked; its group is rolled back");
                        drop(part);
                        broken = Some(Outcome::Failed);
                        break;
                    }
                }
            }
            match broken {
                Some(outcome) => {
                    let _ = tx.rollback().await;
                    outcome
                }
                None => match tx.commit().await {
                    Ok(()) => Outcome::Committed,
                    Err(e) => outcome_of(e),
                },
            }
        }
    };
    counts.groups.fetch_add(1, Ordering::Relaxed);
    tracing::debug!(members, weight, "write group");
    replies.extend(unrun.map(|job| job.unrun));
    for reply in replies {
        reply(&outcome);
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

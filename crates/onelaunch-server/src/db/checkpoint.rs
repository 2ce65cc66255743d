//! SQLite: checkpoints of the WAL off the writer's path.
//!
//! A checkpoint copies the pages the WAL holds back into the database file
//! and syncs it. Run by the writer (SQLite's `wal_autocheckpoint`), it stops
//! every write for as long as it takes: during a large upload, about a tenth
//! of the upload's time, while the other core waited
//! (docs/ingest-profile.md, "Checkpoints beside the writer"). Here a
//! connection of its own runs a `PASSIVE` checkpoint at most every
//! [`PAUSE`] after the writer's connection comes back to its pool from any
//! write ([`Checkpoints::committed`], called by the pool's `after_release`):
//! it copies what was committed by then, beside the writer, which goes on
//! writing.
//!
//! The WAL starts over from its beginning only when a write transaction
//! begins with every frame copied back. Under a steady stream of commits
//! that moment may not come; the writer then still checkpoints itself once
//! the WAL holds [`super::WAL_BACKSTOP_BYTES`], copying only what the last
//! checkpoint here left, and the WAL starts over. What a crash leaves to
//! replay and the WAL file's size on disk are bounded by that backstop
//! (`journal_size_limit` brings a larger file back to it when the WAL
//! starts over; below it the file is not cut, which would cost the writer a
//! sync each time). Durability is
//! unchanged: the same commits, and a checkpoint syncs the WAL before it
//! copies it.

use std::sync::atomic::{AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use sqlx::any::AnyConnectOptions;
use sqlx::AnyConnection;
use sqlx::{ConnectOptions, Row};
use tokio::sync::mpsc;
use tokio::time::Instant;

/// Least time between two checkpoints: at the writer's pace during an
/// upload (about 150 MB of WAL a second on the benchmark's machine), about
/// what `wal_autocheckpoint` let accumulate before ([`super::WAL_CHECKPOINT_BYTES`]),
/// so a page rewritten by many commits is still copied back once for them.
pub(crate) const PAUSE: Duration = Duration::from_millis(250);

/// What the checkpointer did, for `/metrics` and tests.
#[derive(Debug, Default)]
pub(crate) struct Counts {
    /// Times the writer's connection came back ([`Checkpoints::committed`]).
    pub(crate) commits: AtomicU64,
    /// `commits` as read when the last checkpoint began: that checkpoint
    /// covers every write that came back by then.
    pub(crate) covered: AtomicU64,
    /// Checkpoints run.
    pub(crate) runs: AtomicUsize,
    /// Checkpoints that failed (the writer's own checkpoint still bounds the WAL).
    pub(crate) failures: AtomicUsize,
    /// Frames the WAL held at the last checkpoint, and how many of them
    /// were in the database file after it.
    pub(crate) last_frames: AtomicI64,
    pub(crate) last_copied: AtomicI64,
}

/// The writer's side: says that something may have been committed.
#[derive(Debug, Clone)]
pub(crate) struct Checkpoints {
    wake: mpsc::Sender<()>,
    counts: Arc<Counts>,
}

impl Checkpoints {
    /// The writer's connection came back after a write: a checkpoint is due
    /// within [`PAUSE`].
    pub(crate) fn committed(&self) {
        self.counts.commits.fetch_add(1, Ordering::Relaxed);
        // A full channel already holds a wake-up.
        let _ = self.wake.try_send(());
    }

    pub(crate) fn counts(&self) -> &Counts {
        &self.counts
    }
}

/// The checkpointer's side of [`channel`], for [`start`].
pub(crate) struct Woken {
    woken: mpsc::Receiver<()>,
    counts: Arc<Counts>,
}

/// The writer's side, to be told of writes from its first connection on,
/// and the checkpointer's, started once the database is ready.
pub(crate) fn channel() -> (Checkpoints, Woken) {
    let (wake, woken) = mpsc::channel(1);
    let counts = Arc::new(Counts::default());
    (
        Checkpoints {
            wake,
            counts: counts.clone(),
        },
        Woken { woken, counts },
    )
}

/// Opens the checkpointer's connection to the database of `opts` and starts
/// it. It stops when every [`Checkpoints`] is dropped.
pub(crate) async fn start(opts: &AnyConnectOptions, woken: Woken) -> Result<(), sqlx::Error> {
    let conn = opts.connect().await?;
    tokio::spawn(run(conn, woken));
    Ok(())
}

async fn run(mut conn: AnyConnection, woken: Woken) {
    let Woken { mut woken, counts } = woken;
    let mut next = Instant::now();
    while woken.recv().await.is_some() {
        tokio::time::sleep_until(next).await;
        next = Instant::now() + PAUSE;
        let covering = counts.commits.load(Ordering::Relaxed);
        // PASSIVE: copies what no reader still needs from the WAL, without
        // waiting for readers or the writer, who go on meanwhile.
        let row = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
            .fetch_one(&mut conn)
            .await;
        counts.runs.fetch_add(1, Ordering::Relaxed);
        match row.and_then(|r| Ok((r.try_get::<i64, _>(1)?, r.try_get::<i64, _>(2)?))) {
            Ok((frames, copied)) => {
                counts.last_frames.store(frames, Ordering::Relaxed);
                counts.last_copied.store(copied, Ordering::Relaxed);
                counts.covered.store(covering, Ordering::Relaxed);
            }
            Err(e) => {
                counts.failures.fetch_add(1, Ordering::Relaxed);
                tracing::warn!("WAL checkpoint failed (the writer checkpoints later): {e}");
            }
        }
    }
}

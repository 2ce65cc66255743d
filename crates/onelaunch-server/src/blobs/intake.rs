//! The server's intake budgets, shared between projects: the blob store's
//! (bodies streaming to disk, bytes of result files held in memory) and, by
//! the same [`Budget`], JSON bodies in memory and result batches in decoded
//! form (`ingest::limits`).
//!
//! Each budget bounds what the whole server holds, and a request keeps its share
//! for as long as its body takes to arrive. A project token that sends its
//! bodies as slowly as a connection allows would, with one budget for all,
//! hold every share and leave the other projects' uploads waiting until they
//! are answered 503 `busy`. So the requests of one project (all its tokens
//! together) hold at most half of each budget: the other projects always have
//! the other half, and a project's own requests beyond its half wait for its
//! own shares, as they waited for the server's before. Admin tokens share one
//! half likewise, and so do requests no token was checked for yet.
//!
//! Both parts of a share are waited for within the same time
//! (`INTAKE_WAIT`), first the sender's half, then the server's budget; both
//! queues serve in order of arrival.
//!
//! A request that learns its size as its bytes arrive (a body without a
//! length, the files of one multipart request) takes its share in pieces.
//! Requests that each hold part of what they need and wait for the rest can
//! wait for each other until all are refused; so only one request at a time
//! waits for more while it holds some ([`Budget::grow`]), and another that
//! finds no room then is refused at once and gives back what it held.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::{Stream, StreamExt};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

use super::Buffered;

use crate::error::{ServerError, ServerResult};

fn busy() -> ServerError {
    ServerError::Busy("the server is receiving as many uploads as it takes at once; retry".into())
}

/// Who sends a body.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Sender {
    /// An admin token (admins share one half).
    Admin,
    /// A token of this project (all of a project's tokens share its half).
    Project(i64),
    /// A request no token was checked for yet (they share one half).
    Stranger,
}

impl Sender {
    /// The sender of a request authorised for `project` (`None`: an admin
    /// token).
    pub(crate) fn of(project: Option<i64>) -> Self {
        project.map_or(Sender::Admin, Sender::Project)
    }

    /// An admin token.
    #[cfg(test)]
    pub(crate) fn admin() -> Self {
        Sender::Admin
    }
}

/// Entries of projects holding nothing are dropped past this many.
const KEEP_IDLE: usize = 256;

/// One intake budget of `total` units, of which one project holds at most
/// half ([`Budget::project_cap`]).
#[derive(Debug, Clone)]
pub(crate) struct Budget {
    all: Arc<Semaphore>,
    cap: u32,
    /// The strangers' cap, when it is less than [`Budget::cap`].
    stranger_cap: u32,
    projects: Arc<Mutex<HashMap<Sender, Arc<Semaphore>>>>,
    /// Held by the one request that waits for more while it holds some.
    growing: Arc<tokio::sync::Mutex<()>>,
}

/// A share of a [`Budget`], given back when dropped.
#[derive(Debug)]
pub(crate) struct Share {
    sender: OwnedSemaphorePermit,
    all: OwnedSemaphorePermit,
}

impl Share {
    /// One share holding both (of the same budget and sender).
    pub(crate) fn merge(&mut self, other: Share) {
        self.all.merge(other.all);
        self.sender.merge(other.sender);
    }
}

impl Budget {
    pub(crate) fn new(total: usize) -> Self {
        let total = u32::try_from(total).unwrap_or(u32::MAX >> 3);
        let cap = (total / 2).max(1);
        Budget {
            all: Arc::new(Semaphore::new(total as usize)),
            cap,
            stranger_cap: cap,
            projects: Arc::default(),
            growing: Arc::default(),
        }
    }

    /// [`Budget::new`], where requests no token was checked for hold at most
    /// a quarter.
    pub(crate) fn strangers_quarter(total: usize) -> Self {
        let mut budget = Budget::new(total);
        budget.stranger_cap = (budget.cap / 2).max(1);
        budget
    }

    /// What `sender`'s requests hold at most at once.
    fn cap_of(&self, sender: Sender) -> u32 {
        match sender {
            Sender::Stranger => self.stranger_cap,
            _ => self.cap,
        }
    }

    /// The most of this budget one project's requests hold at once.
    #[cfg(test)]
    pub(crate) fn project_cap(&self) -> u32 {
        self.cap
    }

    /// `n` units for `sender`, waited for at most `wait` in all (then 503
    /// `busy`). A sender's share is at most its half: a request larger than
    /// that takes the whole half.
    pub(crate) async fn share(
        &self,
        sender: Sender,
        n: u32,
        wait: Duration,
    ) -> ServerResult<Share> {
        let until = Instant::now() + wait;
        let n = n.min(self.cap_of(sender));
        let own = self.of_sender(sender);
        let sender = within(until, own.acquire_many_owned(n)).await?;
        let all = within(until, self.all.clone().acquire_many_owned(n)).await?;
        Ok(Share { sender, all })
    }

    /// `n` more units for a request of `sender` that holds a share of this
    /// budget already (see the module documentation): at once when they are
    /// free; else the first such request waits as [`Budget::share`] does,
    /// and any other is refused at once with 503 `busy` and `refused`.
    pub(crate) async fn grow(
        &self,
        sender: Sender,
        n: u32,
        wait: Duration,
        refused: &str,
    ) -> ServerResult<Share> {
        if let Some(share) = self.try_share(sender, n) {
            return Ok(share);
        }
        let Ok(_turn) = self.growing.clone().try_lock_owned() else {
            return Err(ServerError::Busy(refused.to_string()));
        };
        self.share(sender, n, wait).await
    }

    /// `n` units for `sender` if they are free now.
    pub(crate) fn try_share(&self, sender: Sender, n: u32) -> Option<Share> {
        let n = n.min(self.cap_of(sender));
        let sender = self.of_sender(sender).try_acquire_many_owned(n).ok()?;
        let all = self.all.clone().try_acquire_many_owned(n).ok()?;
        Some(Share { sender, all })
    }

    /// Units of the whole budget not held now.
    #[cfg(test)]
    pub(crate) fn available(&self) -> usize {
        self.all.available_permits()
    }

    fn of_sender(&self, id: Sender) -> Arc<Semaphore> {
        let mut projects = self.projects.lock().unwrap_or_else(|e| e.into_inner());
        if projects.len() >= KEEP_IDLE && !projects.contains_key(&id) {
            // A semaphore another holds a clone of is held or waited for.
            projects.retain(|_, s| Arc::strong_count(s) > 1);
        }
        projects
            .entry(id)
            .or_insert_with(|| Arc::new(Semaphore::new(self.cap_of(id) as usize)))
            .clone()
    }
}

impl super::BlobStore {
    /// Reads a body into memory (a result file parsed on the server), taking
    /// its share of [`super::MAX_BUFFERED`] as it grows; past the first share, or
    /// when its request is `holding` shares of files before it, as
    /// [`Budget::grow`] gives them.
    pub(crate) async fn buffer<S, B, E>(
        &self,
        sender: Sender,
        mut chunks: S,
        holding: bool,
    ) -> ServerResult<Buffered>
    where
        S: Stream<Item = Result<B, E>> + Unpin,
        B: AsRef<[u8]>,
        ServerError: From<E>,
    {
        let mut bytes = Vec::new();
        let mut share: Option<Share> = None;
        let mut held_kib = 0usize;
        while let Some(chunk) = chunks.next().await {
            let chunk = chunk?;
            bytes.extend_from_slice(chunk.as_ref());
            let need_kib = bytes.len().div_ceil(1024);
            if need_kib > held_kib {
                let more = u32::try_from(need_kib - held_kib).map_err(|_| busy())?;
                let more = if holding || share.is_some() {
                    let why = "the server is busy reading other result files: send them again";
                    self.buffered.grow(sender, more, self.wait, why).await?
                } else {
                    self.buffered.share(sender, more, self.wait).await?
                };
                match &mut share {
                    Some(s) => s.merge(more),
                    None => share = Some(more),
                }
                held_kib = need_kib;
            }
        }
        Ok(Buffered {
            bytes,
            _share: share,
        })
    }

    /// KiB of result files the store could still hold in memory.
    #[cfg(test)]
    pub(crate) fn buffered_available(&self) -> usize {
        self.buffered.available()
    }
}

impl super::Buffered {
    /// Its share without its bytes: what they were decoded into stays
    /// counted while it is held.
    pub(crate) fn into_share(self) -> Option<Share> {
        self._share
    }
}

/// `acquire` until `until`, 503 `busy` past it.
async fn within(
    until: Instant,
    acquire: impl std::future::Future<Output = Result<OwnedSemaphorePermit, tokio::sync::AcquireError>>,
) -> ServerResult<OwnedSemaphorePermit> {
    tokio::time::timeout_at(until, acquire)
        .await
        .map_err(|_| busy())?
        .map_err(|_| busy())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Projects that hold nothing are forgotten once many were seen; one that
    /// holds a share keeps its entry (and its count).
    #[tokio::test]
    async fn idle_projects_are_forgotten_held_ones_kept() {
        let budget = Budget::new(8);
        let wait = Duration::from_millis(50);
        let held = budget.share(Sender::of(Some(0)), 4, wait).await.unwrap();
        for id in 1..(KEEP_IDLE as i64 * 2) {
            drop(budget.share(Sender::of(Some(id)), 1, wait).await.unwrap());
        }
        let kept = budget.projects.lock().unwrap().len();
        assert!(kept <= KEEP_IDLE, "{kept} entries");
        assert!(budget
            .projects
            .lock()
            .unwrap()
            .contains_key(&Sender::Project(0)));
        let e = budget
            .share(Sender::of(Some(0)), 1, wait)
            .await
            .unwrap_err();
        assert!(matches!(e, crate::error::ServerError::Busy(_)), "{e}");
        drop(held);
        assert!(budget.share(Sender::of(Some(0)), 4, wait).await.is_ok());
        assert_eq!(budget.available(), 8);
    }
}

//! The blob store's own tests: concurrent writes, damage, failed streams,
//! the reserve, stale temporary files; which bodies stay in memory for the
//! database (`Stored::inline`).

use super::*;

/// A store that writes every body to a file, however small (the tests of
/// the files themselves).
fn files(dir: &Path) -> BlobStore {
    let mut store = BlobStore::new(dir).unwrap();
    store.inline_max = 0;
    store
}

fn blob_files(dir: &Path) -> usize {
    let mut n = 0;
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        if e.file_type().unwrap().is_dir() {
            n += blob_files(&e.path());
        } else if valid_sha(&e.file_name().to_string_lossy()) {
            n += 1;
        }
    }
    n
}

#[tokio::test]
async fn a_small_body_stays_in_memory_and_a_larger_one_is_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let store = BlobStore::new(dir.path()).unwrap();
    let one = |b: &[u8]| futures::stream::iter([Ok::<_, ServerError>(b.to_vec())]);
    let small = vec![1u8; INLINE_MAX];
    let stored = store.receive(Sender::admin(), one(&small)).await.unwrap();
    assert_eq!(stored.inline(), Some(small.as_slice()));
    assert_eq!(stored.sha256, hex::encode(Sha256::digest(&small)));
    assert_eq!(stored.len, small.len() as u64);
    assert_eq!(blob_files(dir.path()), 0, "no file for a small body");
    assert!(store.get_file(&stored.sha256).await.unwrap().is_none());
    // One byte more, in two chunks: a file, as before.
    let large = vec![2u8; INLINE_MAX + 1];
    let chunks = futures::stream::iter([
        Ok::<_, ServerError>(large[..10].to_vec()),
        Ok(large[10..].to_vec()),
    ]);
    let stored = store.receive(Sender::admin(), chunks).await.unwrap();
    assert_eq!(stored.inline(), None);
    assert_eq!(blob_files(dir.path()), 1);
    assert_eq!(
        store.get_file(&stored.sha256).await.unwrap().unwrap(),
        large
    );
}

#[tokio::test]
async fn small_bodies_past_the_memory_budget_are_written_to_files() {
    let dir = tempfile::tempdir().unwrap();
    let store = BlobStore::new(dir.path()).unwrap();
    let one = |b: Vec<u8>| futures::stream::iter([Ok::<_, ServerError>(b)]);
    // Hold the whole budget but 64 KiB: one small body fits, the next not.
    let _held = store
        .inline_budget
        .clone()
        .try_acquire_many_owned((INLINE_BUDGET / 1024 - 64) as u32)
        .unwrap();
    let a = store
        .receive(Sender::admin(), one(vec![3u8; 40_000]))
        .await
        .unwrap();
    assert!(a.inline().is_some());
    let b = store
        .receive(Sender::admin(), one(vec![4u8; 40_000]))
        .await
        .unwrap();
    assert_eq!(b.inline(), None, "over the budget: a file");
    assert_eq!(
        store.get_file(&b.sha256).await.unwrap().unwrap(),
        vec![4u8; 40_000]
    );
    // The budget comes back when the held body is dropped (recorded).
    drop(a);
    let c = store
        .receive(Sender::admin(), one(vec![5u8; 40_000]))
        .await
        .unwrap();
    assert!(c.inline().is_some());
}

fn tmp_files(dir: &Path) -> usize {
    let mut n = 0;
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        if e.file_type().unwrap().is_dir() {
            n += tmp_files(&e.path());
        } else if e.file_name().to_string_lossy().ends_with(".tmp") {
            n += 1;
        }
    }
    n
}

async fn read_all(v: Verified) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::new();
    let mut body = v.body;
    while let Some(c) = body.next().await {
        out.extend_from_slice(&c?);
    }
    Ok(out)
}

#[tokio::test]
async fn concurrent_puts_of_the_same_bytes_all_succeed() {
    let dir = tempfile::tempdir().unwrap();
    let store = files(dir.path());
    let tasks: Vec<_> = (0..32)
        .map(|_| {
            let s = store.clone();
            tokio::spawn(async move { s.put(b"same bytes").await })
        })
        .collect();
    let mut shas = std::collections::BTreeSet::new();
    for t in tasks {
        shas.insert(t.await.unwrap().unwrap());
    }
    assert_eq!(shas.len(), 1);
    let sha = shas.into_iter().next().unwrap();
    assert_eq!(store.get_file(&sha).await.unwrap().unwrap(), b"same bytes");
    assert_eq!(tmp_files(dir.path()), 0);
}

#[tokio::test]
async fn a_damaged_copy_is_refused_and_healed_by_storing_it_again() {
    let dir = tempfile::tempdir().unwrap();
    let store = files(dir.path());
    let bytes = vec![7u8; 18_337];
    let sha = store.put(&bytes).await.unwrap();
    let v = store.open_file(&sha).await.unwrap().unwrap();
    assert_eq!(v.len, bytes.len() as u64);
    assert_eq!(read_all(v).await.unwrap(), bytes);
    std::fs::write(store.path_of(&sha), &bytes[..100]).unwrap();
    let e = store.open_file(&sha).await.unwrap_err();
    assert!(matches!(e, ServerError::ContentDamaged(_)), "{e}");
    assert!(matches!(
        store.get_file(&sha).await,
        Err(ServerError::ContentDamaged(_))
    ));
    assert_eq!(store.put(&bytes).await.unwrap(), sha);
    let v = store.open_file(&sha).await.unwrap().unwrap();
    assert_eq!(read_all(v).await.unwrap(), bytes);
}

#[tokio::test]
async fn a_failed_stream_leaves_no_temporary_file() {
    let dir = tempfile::tempdir().unwrap();
    let store = files(dir.path());
    let parts = futures::stream::iter([
        Ok(&b"first part"[..]),
        Err(ServerError::bad("client went away")),
    ]);
    assert!(store.receive(Sender::admin(), parts).await.is_err());
    assert_eq!(tmp_files(dir.path()), 0);
    // A request dropped mid-body (the client disconnected) too.
    let pending =
        futures::stream::iter([Ok::<_, ServerError>(&b"x"[..])]).chain(futures::stream::pending());
    let r = tokio::time::timeout(
        Duration::from_millis(200),
        store.receive(Sender::admin(), pending),
    )
    .await;
    assert!(r.is_err());
    assert_eq!(tmp_files(dir.path()), 0);
}

#[tokio::test]
async fn below_the_reserve_a_body_is_refused_read_to_its_end_and_not_kept() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = files(dir.path());
    store.min_free = u64::MAX;
    let read = std::sync::Arc::new(AtomicU64::new(0));
    let seen = read.clone();
    let parts = futures::stream::iter([&b"one"[..], &b"two"[..], &b"three"[..]]).map(move |c| {
        seen.fetch_add(1, Ordering::Relaxed);
        Ok::<_, ServerError>(c)
    });
    let e = store.receive(Sender::admin(), parts).await.unwrap_err();
    assert!(matches!(e, ServerError::StorageFull(_)), "{e}");
    assert_eq!(e.status(), 503);
    assert_eq!(read.load(Ordering::Relaxed), 3, "the body is drained");
    assert_eq!(tmp_files(dir.path()), 0);
    // Space back (no reserve): the same store takes it.
    store.min_free = 0;
    assert!(store.put(b"one").await.is_ok());
}

#[test]
fn stale_temporary_files_are_removed_at_start() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("ab")).unwrap();
    let old = dir.path().join("ab/.abc.1.2.tmp");
    let fresh = dir.path().join(".incoming.1.3.tmp");
    let blob = dir.path().join("ab/abcd");
    for p in [&old, &fresh, &blob] {
        std::fs::write(p, b"x").unwrap();
    }
    let f = std::fs::File::options().write(true).open(&old).unwrap();
    f.set_modified(std::time::SystemTime::now() - 2 * STALE_TMP)
        .unwrap();
    drop(f);
    BlobStore::new(dir.path()).unwrap();
    assert!(!old.exists());
    assert!(fresh.exists() && blob.exists());
}

#[tokio::test]
async fn full_streams_answer_busy_after_the_wait() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = files(dir.path());
    store.wait = Duration::from_millis(50);
    let half = MAX_STREAMS as u32 / 2;
    let _admins = store.streams.share(Sender::admin(), half, store.wait).await;
    let _others = store
        .streams
        .share(Sender::of(Some(1)), half, store.wait)
        .await;
    assert_eq!(store.streams.available(), 0);
    let one = futures::stream::iter([Ok::<_, ServerError>(&b"x"[..])]);
    let e = store.receive(Sender::of(Some(2)), one).await.unwrap_err();
    assert!(matches!(e, ServerError::Busy(_)), "{e}");
}

/// `n` bodies of `sender` that send one byte and then nothing, each holding
/// its stream until aborted.
async fn stalled(
    store: &BlobStore,
    sender: Sender,
    n: usize,
) -> Vec<tokio::task::JoinHandle<ServerResult<Stored>>> {
    let before = store.streams.available();
    let tasks = (0..n)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move {
                let body = futures::stream::iter([Ok::<_, ServerError>(&b"x"[..])])
                    .chain(futures::stream::pending());
                store.receive(sender, Box::pin(body)).await
            })
        })
        .collect();
    while store.streams.available() > before - n {
        tokio::task::yield_now().await;
    }
    tasks
}

fn tiny() -> impl Stream<Item = Result<&'static [u8], ServerError>> + Unpin {
    futures::stream::iter([Ok::<_, ServerError>(&b"tiny"[..])])
}

/// A project token whose bodies never end holds at most half of the
/// streams: its next body waits and is answered `busy`, while another
/// project's is stored at once. Two such projects hold them all.
#[tokio::test]
async fn a_project_holds_at_most_half_of_the_streams() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = files(dir.path());
    store.wait = Duration::from_millis(100);
    let (one, two, three) = (
        Sender::of(Some(1)),
        Sender::of(Some(2)),
        Sender::of(Some(3)),
    );
    let half = store.streams.project_cap() as usize;
    assert_eq!(half, MAX_STREAMS / 2);

    let hostile = stalled(&store, one, half).await;
    let e = store.receive(one, tiny()).await.unwrap_err();
    assert!(matches!(e, ServerError::Busy(_)), "{e}");
    let stored = store.receive(two, tiny()).await.unwrap();
    assert_eq!(
        store.get_file(&stored.sha256).await.unwrap().unwrap(),
        b"tiny"
    );
    assert!(store.receive(Sender::admin(), tiny()).await.is_ok());

    // The server's bound stays: with a second project's half held, a third
    // project and an admin wait.
    let second = stalled(&store, two, half).await;
    assert_eq!(store.streams.available(), 0);
    for sender in [three, Sender::admin()] {
        let e = store.receive(sender, tiny()).await.unwrap_err();
        assert!(matches!(e, ServerError::Busy(_)), "{e}");
    }

    // Bodies that end give their streams back.
    for t in hostile.into_iter().chain(second) {
        t.abort();
        assert!(t.await.unwrap_err().is_cancelled());
    }
    assert_eq!(store.streams.available(), MAX_STREAMS);
    assert!(store.receive(one, tiny()).await.is_ok());
}

/// The same rule for result files held in memory: a project holding its
/// half of the bytes waits, another project's file is read.
#[tokio::test]
async fn a_project_holds_at_most_half_of_the_buffered_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = files(dir.path());
    store.wait = Duration::from_millis(100);
    let (one, two) = (Sender::of(Some(1)), Sender::of(Some(2)));
    let cap = store.buffered.project_cap();
    assert_eq!(cap as usize, MAX_BUFFERED / 1024 / 2);
    let _held = store.buffered.share(one, cap, store.wait).await.unwrap();
    let e = store.buffer(one, tiny(), false).await.unwrap_err();
    assert!(matches!(e, ServerError::Busy(_)), "{e}");
    assert_eq!(
        store.buffer(two, tiny(), false).await.unwrap().bytes,
        b"tiny"
    );
}

/// Requests of one project that each read several result files into memory
/// (one multipart request of `/upload/file`), their sizes learnt as they
/// arrive, more of them at once than its half holds: none waits for the
/// others until the wait runs out. One waits for more while holding; another
/// that finds no room is refused at once, saying why; sent again, each one
/// is read, and every share comes back.
#[tokio::test]
async fn requests_reading_many_files_at_once_do_not_wait_each_other_out() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = files(dir.path());
    // 64 KiB, a project's half 32: eight requests of two 6 KiB files.
    store.buffered = Budget::new(64);
    store.wait = Duration::from_secs(30);
    let sender = Sender::of(Some(1));
    let file = || {
        futures::stream::iter((0..6).map(|_| Ok::<_, ServerError>(vec![b'r'; 1024]))).then(
            |piece| async move {
                tokio::task::yield_now().await;
                piece
            },
        )
    };
    let request = |store: BlobStore| async move {
        let first = store.buffer(sender, Box::pin(file()), false).await?;
        let second = store.buffer(sender, Box::pin(file()), true).await?;
        Ok::<_, ServerError>(first.bytes.len() + second.bytes.len())
    };
    let mut left = 8;
    let mut rounds = 0;
    while left > 0 {
        rounds += 1;
        assert!(
            rounds <= 50,
            "{left} requests still refused after 50 rounds"
        );
        let tasks: Vec<_> = (0..left)
            .map(|_| tokio::spawn(request(store.clone())))
            .collect();
        for t in tasks {
            match t.await.unwrap() {
                Ok(read) => {
                    assert_eq!(read, 12 * 1024);
                    left -= 1;
                }
                Err(ServerError::Busy(why)) => assert!(
                    why.contains("reading other result files"),
                    "refused after waiting out the budget, not at once: {why}"
                ),
                Err(e) => panic!("{e}"),
            }
        }
    }
    assert_eq!(store.buffered_available(), 64);
}

#[tokio::test]
async fn removal_frees_an_unreferenced_blob_and_restores_a_referenced_one() {
    let dir = tempfile::tempdir().unwrap();
    let store = files(dir.path());
    let sha = store.put(b"bytes").await.unwrap();
    // Referenced again between the rename and the second question: back.
    let kept = store
        .remove_unreferenced(&sha, || async { Ok(true) })
        .await
        .unwrap();
    assert_eq!(kept, None);
    assert_eq!(
        store.get_file(&sha).await.unwrap().as_deref(),
        Some(&b"bytes"[..])
    );
    let freed = store
        .remove_unreferenced(&sha, || async { Ok(false) })
        .await
        .unwrap();
    assert_eq!(freed, Some(5));
    assert_eq!(store.get_file(&sha).await.unwrap(), None);
    assert_eq!(tmp_files(dir.path()), 0);
    // Gone already: nothing to do.
    let again = store
        .remove_unreferenced(&sha, || async { Ok(false) })
        .await
        .unwrap();
    assert_eq!(again, None);
}

#[tokio::test]
async fn a_blob_removed_before_its_row_is_recorded_comes_back() {
    let dir = tempfile::tempdir().unwrap();
    let store = files(dir.path());
    let one = futures::stream::iter([Ok::<_, ServerError>(&b"racing"[..])]);
    // The upload has stored the bytes, its row is not committed yet ...
    let stored = store.receive(Sender::admin(), one).await.unwrap();
    // ... when a deletion sees no reference and removes the file.
    let freed = store
        .remove_unreferenced(&stored.sha256, || async { Ok(false) })
        .await
        .unwrap();
    assert_eq!(freed, Some(6));
    assert_eq!(store.get_file(&stored.sha256).await.unwrap(), None);
    // The upload's row is committed; dropping what it stored relinks it.
    let sha = stored.sha256.clone();
    drop(stored);
    assert_eq!(
        store.get_file(&sha).await.unwrap().as_deref(),
        Some(&b"racing"[..])
    );
    assert_eq!(tmp_files(dir.path()), 0);
}

#[tokio::test]
async fn the_same_bytes_again_keep_the_stored_copy_and_hold_it_until_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let store = files(dir.path());
    let sha = store.put(b"seen before").await.unwrap();
    let path = store.path_of(&sha);
    let inode = |p: &Path| {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata(p).unwrap().ino()
    };
    let first = inode(&path);
    // The same bytes again: the file stays (same inode), held while the
    // second upload's row is on its way.
    let one = futures::stream::iter([Ok::<_, ServerError>(&b"seen before"[..])]);
    let again = store.receive(Sender::admin(), one).await.unwrap();
    assert_eq!(again.sha256, sha);
    assert_eq!(inode(&path), first);
    assert_eq!(tmp_files(dir.path()), 1, "the hold");
    // A deletion that sees no reference removes it; the hold brings it back.
    let freed = store
        .remove_unreferenced(&sha, || async { Ok(false) })
        .await
        .unwrap();
    assert_eq!(freed, Some(11));
    drop(again);
    assert_eq!(
        store.get_file(&sha).await.unwrap().as_deref(),
        Some(&b"seen before"[..])
    );
    assert_eq!(tmp_files(dir.path()), 0);
}

#[tokio::test]
async fn a_copy_damaged_in_place_is_replaced_by_the_same_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let store = files(dir.path());
    let bytes = vec![3u8; 4096];
    let sha = store.put(&bytes).await.unwrap();
    // Same length, one byte changed: not the bytes that arrive next.
    let mut damaged = bytes.clone();
    damaged[100] = 4;
    std::fs::write(store.path_of(&sha), &damaged).unwrap();
    assert!(matches!(
        store.get_file(&sha).await,
        Err(ServerError::ContentDamaged(_))
    ));
    assert_eq!(store.put(&bytes).await.unwrap(), sha);
    assert_eq!(store.get_file(&sha).await.unwrap().unwrap(), bytes);
    assert_eq!(tmp_files(dir.path()), 0);
}

#[tokio::test]
async fn a_body_larger_than_one_buffer_streams_to_disk_and_is_stored_whole() {
    let dir = tempfile::tempdir().unwrap();
    let store = files(dir.path());
    // Five chunks of 100 KiB: past the one-buffer path after the third.
    let chunks: Vec<Vec<u8>> = (0..5u8).map(|i| vec![i; 100 * 1024]).collect();
    let whole: Vec<u8> = chunks.concat();
    let parts = futures::stream::iter(chunks.iter().map(|c| Ok::<_, ServerError>(&c[..])));
    let stored = store.receive(Sender::admin(), parts).await.unwrap();
    assert_eq!(stored.len, whole.len() as u64);
    assert_eq!(stored.sha256, hex::encode(Sha256::digest(&whole)));
    drop(stored);
    let sha = hex::encode(Sha256::digest(&whole));
    assert_eq!(store.get_file(&sha).await.unwrap().unwrap(), whole);
    assert_eq!(tmp_files(dir.path()), 0);
    // The same, failing after it spilled to disk, leaves nothing behind.
    let failing = futures::stream::iter(chunks.iter().map(|c| Ok::<_, ServerError>(&c[..])))
        .chain(futures::stream::iter([Err(ServerError::bad("gone"))]));
    assert!(store.receive(Sender::admin(), failing).await.is_err());
    assert_eq!(tmp_files(dir.path()), 0);
}

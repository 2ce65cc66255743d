//! Database access: one portable SQL dialect over `sqlx::Any`, so the same
//! queries run on SQLite (embedded default) and PostgreSQL.
//!
//! Rules that keep the dialect portable: `$N` placeholders, `RETURNING id`,
//! `ON CONFLICT … DO NOTHING`, integer flags instead of booleans, timestamps as
//! epoch milliseconds, JSON stored as text, no `SUM` without a cast.
//! Invariants (one job per uid, one job run per uid, one result per uuid in a
//! launch) are enforced by unique constraints, not by in-process locks.

use std::str::FromStr;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, Executor, Row};

use crate::error::{ServerError, ServerResult};

pub(crate) mod backup;
pub(crate) mod case_last;
pub(crate) mod checkpoint;
pub(crate) mod combine;
pub(crate) mod gate;
pub(crate) mod globals;
pub(crate) mod group;
pub(crate) mod health;
pub(crate) mod job_configs;
pub(crate) mod job_runs;
pub(crate) mod launches;
pub(crate) mod lifecycle;
pub(crate) mod manual;
pub mod migrate;
pub(crate) mod plans;
pub(crate) mod projects;
pub(crate) mod reruns;
pub(crate) mod result_rows;
pub(crate) mod result_views;
pub(crate) mod results;
pub(crate) mod server_runs;
pub(crate) mod sessions;
pub(crate) mod settle;
pub(crate) mod small_blobs;
pub(crate) mod test_cases;
pub(crate) mod tokens;
pub(crate) mod ui_order;
pub(crate) mod ui_sessions;
pub(crate) mod ui_views;
pub(crate) mod views;

/// Which engine a database URL points at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Backend {
    Sqlite,
    Postgres,
}

/// Connection pools. On SQLite all writes go through a single connection (SQLite
/// has one writer anyway; this avoids `SQLITE_BUSY` under load) and reads use a
/// small pool in WAL mode. On PostgreSQL both are the same pool.
#[derive(Clone)]
pub(crate) struct Db {
    pub read: AnyPool,
    pub write: AnyPool,
    pub backend: Backend,
    /// Key for secrets stored encrypted (set by the server at start).
    pub secret_key: Option<std::sync::Arc<crate::secrets::SecretKey>>,
    /// Once-a-second writes this process made lately ([`Recent`]).
    pub(crate) recent: std::sync::Arc<Recent>,
    /// The group writer of ingest writes (SQLite; [`group`]).
    pub(crate) groups: Option<group::Groups>,
    /// Checkpoints of the WAL beside the writer (SQLite; [`checkpoint`]).
    pub(crate) checkpoints: Option<checkpoint::Checkpoints>,
    /// What uploads left for later: test cases' queued attempts and the web
    /// UI's order ([`settle`]).
    pub(crate) settler: std::sync::Arc<settle::Settler>,
}

/// Writes that move a row's time forward at most once a second (a launch's
/// activity, a session's last sighting), remembered by this process so that
/// a request within that second skips the statement instead of sending one
/// that changes nothing. The statements keep their own once-a-second
/// condition, so other replicas (each with its own memory) stay correct. A
/// write remembered here whose transaction then failed is written again by
/// the next request a second later, or at once after a group of ingest
/// writes rolled back ([`Recent::forget`]: its replay writes it again).
#[derive(Debug, Default)]
pub(crate) struct Recent {
    launches: std::sync::Mutex<std::collections::HashMap<i64, i64>>,
    sessions: std::sync::Mutex<std::collections::HashMap<i64, i64>>,
}

impl Recent {
    /// Most rows remembered before the ones older than a second are dropped.
    const MAX: usize = 4096;

    fn due(map: &std::sync::Mutex<std::collections::HashMap<i64, i64>>, id: i64) -> bool {
        let now = now_ms();
        let mut m = map.lock().unwrap_or_else(|e| e.into_inner());
        if m.get(&id).is_some_and(|t| now - t < 1000 && now >= *t) {
            return false;
        }
        if m.len() >= Self::MAX {
            m.retain(|_, t| now - *t < 1000);
        }
        m.insert(id, now);
        true
    }

    /// True when this process has not moved the launch's activity time
    /// within the last second (and now counts it as moved).
    pub(crate) fn launch_due(&self, launch_id: i64) -> bool {
        Self::due(&self.launches, launch_id)
    }

    /// The same for a session's last sighting.
    pub(crate) fn session_due(&self, session_id: i64) -> bool {
        Self::due(&self.sessions, session_id)
    }

    /// Forgets every write remembered: a transaction that made some of them
    /// was rolled back (a group of ingest writes, [`group`]), and whatever
    /// runs next writes them again.
    pub(crate) fn forget(&self) {
        for map in [&self.launches, &self.sessions] {
            map.lock().unwrap_or_else(|e| e.into_inner()).clear();
        }
    }
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Db")
            .field("backend", &self.backend)
            .finish()
    }
}

/// Removes the password from a database URL for display.
pub(crate) fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("redacted"));
            u.to_string()
        }
        _ => url.to_string(),
    }
}

/// Placeholders of a statement whose parameters are each bound once, in the
/// order they appear in its text (multi-row statements).
///
/// PostgreSQL gets `$1, $2, …`; SQLite gets anonymous `?`. For a named or
/// numbered parameter (`$N`, `?N`) the SQLite driver asks SQLite for every
/// parameter's name to place its argument, and SQLite finds a name by walking
/// the list of all of them: the square of the parameter count, 3.4 million
/// steps for a 2,600-parameter batch of results, a fifth of the server's CPU
/// in the ingest profile (docs/ingest-profile.md). Anonymous parameters have
/// no name and are placed by position.
#[derive(Debug)]
pub(crate) struct Placeholders {
    sqlite: bool,
    n: usize,
}

impl Placeholders {
    /// Placeholders for the backend behind a connection.
    pub(crate) fn of(conn: &sqlx::AnyConnection) -> Placeholders {
        Placeholders {
            sqlite: conn.backend_name() == "SQLite",
            n: 0,
        }
    }

    /// The next parameter.
    pub(crate) fn next(&mut self) -> String {
        self.n += 1;
        if self.sqlite {
            "?".to_string()
        } else {
            format!("${}", self.n)
        }
    }

    /// The next `n` parameters, separated by commas.
    pub(crate) fn list(&mut self, n: usize) -> String {
        if self.sqlite {
            self.n += n;
            let mut s = "?, ".repeat(n);
            s.truncate(s.len().saturating_sub(2));
            return s;
        }
        let p: Vec<String> = (0..n).map(|_| self.next()).collect();
        p.join(", ")
    }

    /// `n` rows of `cols` parameters each: `(?, ?), (?, ?)`.
    pub(crate) fn rows(&mut self, n: usize, cols: usize) -> String {
        let rows: Vec<String> = (0..n).map(|_| format!("({})", self.list(cols))).collect();
        rows.join(", ")
    }
}

/// The text of a multi-row statement, built once per statement, backend and
/// row count and kept for the process: a batch of 100 results used to format
/// its statements' placeholder lists again (2 % of the server's instructions
/// per result, `scripts/ingest-instructions`). `build` gets fresh
/// placeholders for the connection's backend and the row count; `name`
/// identifies the statement (its text must depend on nothing else). The
/// row counts are bounded by the callers' chunk sizes, so the cache is too;
/// it is emptied if it ever holds more than [`SHAPED_MAX`] texts.
pub(crate) fn shaped(
    conn: &sqlx::AnyConnection,
    name: &'static str,
    rows: usize,
    build: impl FnOnce(Placeholders, usize) -> String,
) -> std::sync::Arc<str> {
    type Texts = std::collections::HashMap<(&'static str, bool, usize), std::sync::Arc<str>>;
    static TEXTS: std::sync::LazyLock<std::sync::Mutex<Texts>> =
        std::sync::LazyLock::new(Default::default);
    let p = Placeholders::of(conn);
    let key = (name, p.sqlite, rows);
    if let Some(t) = TEXTS.lock().unwrap_or_else(|e| e.into_inner()).get(&key) {
        return t.clone();
    }
    let text: std::sync::Arc<str> = build(p, rows).into();
    let mut texts = TEXTS.lock().unwrap_or_else(|e| e.into_inner());
    if texts.len() >= SHAPED_MAX {
        texts.clear();
    }
    texts.insert(key, text.clone());
    text
}

/// How a multi-row insert of an upload begins: on SQLite `INSERT OR FAIL`.
///
/// A statement that writes several rows and may fail halfway keeps, in a
/// statement journal, the first image of every page it changes, so that it
/// can be undone alone; SQLite's default for a `NOT NULL` column (`ABORT`)
/// makes every multi-row insert such a statement. `OR FAIL` stops at a
/// failing row and keeps the rows before it, and needs no journal: the
/// caller's transaction is rolled back when a statement fails (the group
/// writer's replay, `group`), so nothing of a failed statement is kept
/// either way. 2% of the instructions of a result once the owner keys were
/// gone (docs/ingest-profile.md, "Owner keys and statement journals").
/// PostgreSQL has no such clause (nor such a journal).
pub(crate) fn insert_or_fail(sqlite: bool) -> &'static str {
    if sqlite {
        "INSERT OR FAIL"
    } else {
        "INSERT"
    }
}

/// A multi-row statement whose arguments have room for all `values` it
/// binds. `sqlx::query` starts with no room and doubles it as values are
/// bound, copying every value bound so far each time: a 200-row insert of
/// results binds 3,600 values through eleven such copies, the largest share
/// of the server's `realloc` copies after the decoder's
/// (docs/ingest-profile.md, "Arguments with room").
pub(crate) fn with_room<'q>(
    sql: &'q str,
    values: usize,
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>> {
    use sqlx::Arguments;
    let mut args = sqlx::any::AnyArguments::default();
    args.reserve(values, 0);
    sqlx::query_with(sql, args)
}

/// The size of a new SQLite database's pages (see `Db::connect`).
pub(crate) const PAGE_SIZE: i64 = 16384;

/// About what one of [`checkpoint`]'s checkpoints copies during an upload
/// (it was the writer's `wal_autocheckpoint` before they ran beside it).
pub(crate) const WAL_CHECKPOINT_BYTES: i64 = 40 << 20;

/// How much WAL the SQLite writer lets grow before it checkpoints itself
/// (its `wal_autocheckpoint`, in pages of the database's size: 10,240 of a
/// new database's 16 KiB, 40,960 of an older one's 4 KiB), and the size
/// the WAL file is brought back to when it starts over from a larger one
/// (`journal_size_limit`). Checkpoints are [`checkpoint`]'s work; this
/// bounds the WAL when they cannot start it over.
pub(crate) const WAL_BACKSTOP_BYTES: i64 = 4 * WAL_CHECKPOINT_BYTES;

/// Most statement texts [`shaped`] keeps.
pub(crate) const SHAPED_MAX: usize = 4096;

/// SQLite: the largest id `table` ever had (0 for none), read inside a
/// write transaction before it inserts into `table`. The table's ids come
/// from `AUTOINCREMENT`, so every row inserted after this call has a larger
/// id; and the transaction holds SQLite's one write lock from its first
/// write to its commit (a write by another connection in between fails it
/// with `SQLITE_BUSY`), so no other writer's row can come between: the rows
/// with a larger id are the ones the transaction inserted. Lets an insert
/// go without `RETURNING`, which SQLite runs as a trigger program per row
/// (`result_rows::insert_results`, `test_cases::upsert_cases`).
pub(crate) async fn last_id(
    conn: &mut sqlx::AnyConnection,
    table: &'static str,
) -> ServerResult<onelaunch_api::Id> {
    Ok(
        sqlx::query("SELECT COALESCE(MAX(seq), 0) AS last FROM sqlite_sequence WHERE name = $1")
            .bind(table)
            .fetch_optional(&mut *conn)
            .await?
            .map(|r| get_i64(&r, "last"))
            .transpose()?
            .unwrap_or(0),
    )
}

pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

impl Db {
    /// Connects and runs migrations.
    pub(crate) async fn connect(url: &str) -> ServerResult<Db> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Backend::Postgres
        } else {
            return Err(ServerError::Config(format!(
                "unsupported database URL {}: expected sqlite://… or postgres://…",
                redact_url(url)
            )));
        };
        let opts = AnyConnectOptions::from_str(url)
            .map_err(|e| ServerError::Config(format!("database URL: {e}")))?;
        let (read, write, checkpoints) = match backend {
            Backend::Sqlite => {
                let (checkpoints, woken) = checkpoint::channel();
                let wake = checkpoints.clone();
                // SQLite's pools hand out connections untested: a ping is a
                // round trip to the connection's worker thread that cannot
                // find anything wrong with a file (a dead worker fails the
                // statement itself), and it doubled the thread switches of
                // every statement run on a pool (docs/ingest-profile.md).
                let write = AnyPoolOptions::new()
                    .max_connections(1)
                    .test_before_acquire(false)
                    .acquire_timeout(Duration::from_secs(120))
                    // After a write failed for lack of space, the writer is
                    // closed, not reused: SQLite may have rolled the
                    // transaction back itself, and the driver's idea of it
                    // would then be wrong (a later "commit" into a
                    // transaction that never ends). A fresh connection
                    // starts clean.
                    //
                    // Each time the writer comes back, whatever it wrote
                    // is due for a checkpoint beside it ([`checkpoint`]).
                    .after_release(move |_, _| {
                        wake.committed();
                        Box::pin(async { Ok(!crate::error::take_db_full()) })
                    })
                    .after_connect(|conn, _| {
                        Box::pin(async move {
                            // The writer's page cache holds the pages every
                            // batch touches (the indexes of results and test
                            // cases): at SQLite's default 2 MiB it re-read
                            // them from the file on each batch once a launch
                            // passed a few thousand results. 32 MiB holds the
                            // indexes of a 100,000-result launch; 64 MiB was
                            // no faster at 20,000 or 100,000 results (a page
                            // past the cache is read back from the kernel's
                            // cache) and held 37 MiB more at the peak
                            // (docs/ingest-profile.md, "What the writer's page
                            // cache held"). 16 MiB took 14-20 MiB off the
                            // peak but made a next run into a filled database
                            // 3-5% slower ("Twenty job runs' memory").
                            // Pages are allocated as used, so a small
                            // database stays small.
                            //
                            // A new database is made of 16 KiB pages, not
                            // SQLite's 4 KiB: a commit is written to the WAL
                            // a frame (a write and a checksum) per page, a
                            // checkpoint copies it back the same way, and a
                            // batch of results changes pages all over the
                            // launch's indexes; with pages four times as
                            // large there are a quarter as many of each, and
                            // the b-trees are shallower. 100,000 results: 16%
                            // less time, 20% less server CPU
                            // (docs/ingest-profile.md, "Larger pages"). A
                            // database that exists keeps its page size (only
                            // a `VACUUM` changes it); the setting must come
                            // before WAL, which fixes it.
                            //
                            // A checkpoint copies every page the WAL holds
                            // back into the database and syncs it. Each batch
                            // of results rewrites index pages all over the
                            // launch's indexes (uuids and test keys are
                            // random), so the same pages come back batch
                            // after batch: checkpointing every 40 MiB of WAL
                            // instead of SQLite's 1,000 pages copies each of
                            // them once for ten times as many batches.
                            // 100,000 results: 17% fewer bytes written, 12%
                            // less server CPU (docs/ingest-profile.md).
                            // Those checkpoints run beside the writer
                            // ([`checkpoint`], woken by `after_release`
                            // above); the writer's own waits for four times
                            // as much WAL, and finds most of it copied
                            // already.
                            //
                            // A savepoint ([`group`], after a failure) or a
                            // statement that may fail halfway keeps the first
                            // image of every page it changes in a
                            // sub-journal. Past 64 KiB that journal went to a
                            // temporary file: every page of a batch was
                            // written there once more, next to the WAL. In
                            // memory it is a copy, dropped when the savepoint
                            // is released or the statement ends.
                            // A sort or grouping the writer cannot take from
                            // an index also stays in memory: its size is that
                            // of the rows the statement sorts.
                            conn.execute(
                                format!(
                                    "PRAGMA page_size={PAGE_SIZE}; \
                                     PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; \
                                     PRAGMA busy_timeout=10000; PRAGMA foreign_keys=ON; \
                                     PRAGMA cache_size=-32768; PRAGMA temp_store=MEMORY;"
                                )
                                .as_str(),
                            )
                            .await?;
                            let page = get_i64(
                                &sqlx::query("PRAGMA page_size")
                                    .fetch_one(&mut *conn)
                                    .await?,
                                "page_size",
                            )
                            .map_err(|e| sqlx::Error::Protocol(e.to_string()))?;
                            conn.execute(
                                format!(
                                    "PRAGMA wal_autocheckpoint={}; \
                                     PRAGMA journal_size_limit={WAL_BACKSTOP_BYTES};",
                                    WAL_BACKSTOP_BYTES / page.max(512)
                                )
                                .as_str(),
                            )
                            .await?;
                            Ok(())
                        })
                    })
                    .connect_with(opts.clone())
                    .await?;
                // Migrate through the writer before readers open the file.
                sqlx::migrate!("./migrations/sqlite")
                    .run(&write)
                    .await
                    .map_err(|e| ServerError::Config(format!("migration failed: {e}")))?;
                checkpoint::start(&opts, woken).await?;
                let read = AnyPoolOptions::new()
                    .max_connections(4)
                    .test_before_acquire(false)
                    .acquire_timeout(Duration::from_secs(60))
                    .after_connect(|conn, _| {
                        Box::pin(async move {
                            conn.execute("PRAGMA busy_timeout=10000;").await?;
                            Ok(())
                        })
                    })
                    .connect_with(opts)
                    .await?;
                (read, write, Some(checkpoints))
            }
            Backend::Postgres => {
                let pool = AnyPoolOptions::new()
                    .max_connections(16)
                    .acquire_timeout(Duration::from_secs(60))
                    .connect_with(opts)
                    .await?;
                sqlx::migrate!("./migrations/postgres")
                    .run(&pool)
                    .await
                    .map_err(|e| ServerError::Config(format!("migration failed: {e}")))?;
                (pool.clone(), pool, None)
            }
        };
        let recent: std::sync::Arc<Recent> = Default::default();
        let groups = match backend {
            Backend::Sqlite => Some(group::Groups::start(write.clone(), recent.clone()).map_err(
                |e| ServerError::Config(format!("cannot start the database writer thread: {e}")),
            )?),
            _ => None,
        };
        Ok(Db {
            read,
            write,
            backend,
            secret_key: None,
            recent,
            groups,
            checkpoints,
            settler: Default::default(),
        })
    }
}

impl Db {
    /// Encrypts a secret for storage.
    pub(crate) fn seal(&self, plaintext: &str) -> ServerResult<String> {
        self.secret_key
            .as_ref()
            .map(|k| k.seal(plaintext))
            .ok_or_else(|| ServerError::Config("no secret key loaded".into()))
    }

    /// Decrypts a stored secret.
    pub(crate) fn open(&self, stored: &str) -> ServerResult<String> {
        match &self.secret_key {
            Some(k) => k.open(stored),
            None => Err(ServerError::Config("no secret key loaded".into())),
        }
    }
}

/// Reads a nullable text column.
pub(crate) fn opt_str(row: &sqlx::any::AnyRow, col: &str) -> Option<String> {
    row.try_get::<Option<String>, _>(col).ok().flatten()
}

/// Reads a nullable integer column.
pub(crate) fn opt_i64(row: &sqlx::any::AnyRow, col: &str) -> Option<i64> {
    row.try_get::<Option<i64>, _>(col).ok().flatten()
}

pub(crate) fn get_i64(row: &sqlx::any::AnyRow, col: &str) -> ServerResult<i64> {
    Ok(row.try_get::<i64, _>(col)?)
}

pub(crate) fn get_str(row: &sqlx::any::AnyRow, col: &str) -> ServerResult<String> {
    Ok(row.try_get::<String, _>(col)?)
}
// ---------------------------------------------------------------- text bounds

/// Bounds on text columns; longer values are cut, never refused. Requests are
/// bounded before they get here (`ingest::limits`); these keep every column
/// bounded whatever the caller.; longer values are cut, never refused.
pub(crate) const MAX_NAME: usize = 1_000;

pub(crate) const MAX_TEXT: usize = 256 * 1024;

/// Largest stored JSON of one result or fixture (its `body`), after long
/// texts are cut.
pub(crate) const MAX_STORED_JSON: usize = 8 * 1024 * 1024;

/// The 413 for a result or fixture whose stored JSON is over
/// [`MAX_STORED_JSON`]; `what` names it (`results[3] (uuid "…")`).
pub(crate) fn too_large(what: String, len: usize) -> ServerError {
    ServerError::PayloadTooLarge(format!(
        "{what}: {len} bytes of JSON after cutting long texts; the limit is {MAX_STORED_JSON} bytes"
    ))
}

/// [`too_large`] for `results[index]` of a request, named by its uuid too:
/// the one message of the size check before ingest (`ingest::limits`) and
/// of the insert (`result_rows`).
pub(crate) fn result_too_large(index: usize, uuid: &str, len: usize) -> ServerError {
    too_large(format!("results[{index}] (uuid {:?})", cut(uuid, 255)), len)
}

pub(crate) fn clip(s: &str, max: usize) -> String {
    cut(s, max).to_string()
}

/// An owned text [`cut_in_place`] cuts: a `String`, or a `CompactString`
/// (the wire types' short texts, held inline).
pub(crate) trait OwnedText: std::ops::Deref<Target = str> {
    fn truncate_to(&mut self, len: usize);
    fn shrink(&mut self);
}

impl OwnedText for String {
    fn truncate_to(&mut self, len: usize) {
        self.truncate(len);
    }
    fn shrink(&mut self) {
        self.shrink_to_fit();
    }
}

impl OwnedText for onelaunch_api::CompactString {
    fn truncate_to(&mut self, len: usize) {
        self.truncate(len);
    }
    fn shrink(&mut self) {
        self.shrink_to_fit();
    }
}

/// [`clip`] in place: `s` keeps [`cut`]'s prefix. A text that was cut
/// gives its spare room back, as a fresh copy would (a decoded result waits
/// for the writer holding its strings).
pub(crate) fn cut_in_place(s: &mut impl OwnedText, max: usize) {
    if s.len() > max {
        let end = cut(s, max).len();
        s.truncate_to(end);
        s.shrink();
    }
}

/// [`clip`] of a string the caller owns: cut in place, not copied.
pub(crate) fn clipped(mut s: String, max: usize) -> String {
    cut_in_place(&mut s, max);
    s
}

/// [`clip`] without a copy: the longest prefix of at most `max` bytes
/// that ends on a character boundary.
pub(crate) fn cut(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// [`cut`] of an optional text.
pub(crate) fn cut_opt(s: &Option<impl AsRef<str>>, max: usize) -> Option<&str> {
    s.as_ref().map(|s| cut(s.as_ref(), max))
}

pub(crate) fn clip_opt(s: &Option<impl AsRef<str>>, max: usize) -> Option<String> {
    s.as_ref().map(|s| clip(s.as_ref(), max))
}

#[cfg(test)]
mod recent_tests {
    use super::Recent;

    #[test]
    fn a_row_is_due_once_a_second_and_rows_are_independent() {
        let r = Recent::default();
        assert!(r.launch_due(1));
        assert!(!r.launch_due(1), "again within the second");
        assert!(r.launch_due(2), "another launch");
        assert!(r.session_due(1), "sessions are counted apart from launches");
        assert!(!r.session_due(1));
        std::thread::sleep(std::time::Duration::from_millis(1050));
        assert!(r.launch_due(1), "a second later");
    }
}

#[cfg(test)]
mod placeholder_tests {
    use super::{clip, clipped, cut, cut_in_place, Placeholders};

    #[test]
    fn rows_number_postgresql_parameters_in_order_and_leave_sqlite_anonymous() {
        let mut pg = Placeholders {
            sqlite: false,
            n: 0,
        };
        assert_eq!(pg.next(), "$1");
        assert_eq!(pg.rows(2, 3), "($2, $3, $4), ($5, $6, $7)");
        assert_eq!(pg.next(), "$8");
        let mut lite = Placeholders { sqlite: true, n: 0 };
        assert_eq!(lite.rows(2, 3), "(?, ?, ?), (?, ?, ?)");
        assert_eq!(lite.list(1), "?");
        assert_eq!(lite.rows(0, 3), "");
    }

    #[test]
    fn a_statement_with_room_binds_all_its_values_without_growing() {
        use sqlx::Execute;
        let mut q = super::with_room("INSERT …", 3600);
        fn room<'q>(
            q: &mut sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>,
        ) -> (usize, usize) {
            let args = q.take_arguments().unwrap().unwrap();
            (args.values.0.len(), args.values.0.capacity())
        }
        for row in 0..200i64 {
            for column in 0..18 {
                q = if column % 2 == 0 {
                    q.bind(row)
                } else {
                    q.bind("text")
                };
            }
        }
        assert_eq!(room(&mut q), (3600, 3600), "bound, room");
        let mut plain = sqlx::query::<sqlx::Any>("INSERT …").bind(1i64);
        assert!(room(&mut plain).1 < 3600, "no room without asking");
    }

    #[test]
    fn cut_ends_on_a_character_boundary() {
        assert_eq!(cut("abc", 5), "abc");
        assert_eq!(cut("abc", 2), "ab");
        assert_eq!(cut("aé", 2), "a", "é is two bytes");
        assert_eq!(clipped("abc".into(), 5), "abc");
        assert_eq!(clipped("aé".into(), 2), "a");
        assert_eq!(clipped("aéb".into(), 3), clip("aéb", 3));
        let mut s = String::from("aéb");
        cut_in_place(&mut s, 2);
        assert_eq!(s, "a");
    }
}

//! Read queries of the pages. Every list is paginated in SQL (LIMIT/OFFSET),
//! every per-row figure of a list is computed for the whole page in one
//! grouped query, so a page costs a handful of queries whatever the launch size.
//! Counts follow the API's rule: each test once, by its latest attempt.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use onelaunch_api::{self as api, Id};
use sqlx::any::AnyArguments;
use sqlx::{Any, Row};

use crate::db::launches::{launch_from, LaunchRow, LATEST, LAUNCH_COLS};
use crate::db::{get_i64, get_str, opt_i64, Db};
use crate::error::ServerResult;

/// A value bound to a query built at run time.
#[derive(Clone, Debug)]
pub(crate) enum Arg {
    I(i64),
    S(String),
}

pub(super) fn bind_all<'q>(
    mut q: sqlx::query::Query<'q, Any, AnyArguments<'q>>,
    args: &[Arg],
) -> sqlx::query::Query<'q, Any, AnyArguments<'q>> {
    for a in args {
        q = match a {
            Arg::I(v) => q.bind(*v),
            Arg::S(s) => q.bind(s.clone()),
        };
    }
    q
}

/// Conditions joined with AND and their arguments, numbered `$1…`.
#[derive(Default, Clone)]
pub(super) struct Where {
    pub(super) conds: Vec<String>,
    pub(super) args: Vec<Arg>,
}

impl Where {
    /// Adds a condition; `?` in it stands for the next argument.
    pub(super) fn add(&mut self, cond: &str, arg: Option<Arg>) {
        match arg {
            Some(a) => {
                self.args.push(a);
                self.conds
                    .push(cond.replace('?', &format!("${}", self.args.len())));
            }
            None => self.conds.push(cond.to_string()),
        }
    }
    pub(super) fn sql(&self) -> String {
        if self.conds.is_empty() {
            "1 = 1".into()
        } else {
            self.conds.join(" AND ")
        }
    }
    pub(super) fn next(&self) -> usize {
        self.args.len() + 1
    }
}

/// `%text%` for `LIKE … ESCAPE '\'`, lower-cased.
pub(crate) fn contains_pattern(text: &str) -> String {
    let mut p = String::from("%");
    for c in text.to_lowercase().chars() {
        if matches!(c, '%' | '_' | '\\') {
            p.push('\\');
        }
        p.push(c);
    }
    p.push('%');
    p
}

/// Counts in the order statuses are shown, zeros included.
pub(crate) fn ordered(map: &HashMap<String, i64>) -> Vec<(String, i64)> {
    api::STATUSES
        .iter()
        .map(|s| (s.to_string(), map.get(*s).copied().unwrap_or(0)))
        .collect()
}

pub(super) fn ids_list(first: usize, n: usize) -> String {
    (first..first + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

// ---------------------------------------------------------------- projects

pub(crate) async fn projects(db: &Db, only: Option<Id>) -> ServerResult<Vec<(Id, String)>> {
    Ok(crate::db::projects::list_projects(db, only)
        .await?
        .into_iter()
        .map(|p| (p.id, p.name))
        .collect())
}

// ---------------------------------------------------------------- launches

/// Which launches the list shows.
#[derive(Default, Debug, Clone)]
pub(crate) struct LaunchFilter {
    pub text: Option<String>,
    pub tag: Option<String>,
    /// `Some(true)` closed only, `Some(false)` open only.
    pub closed: Option<bool>,
}

pub(crate) struct LaunchItem {
    pub launch: LaunchRow,
    pub counts: Vec<(String, i64)>,
    pub job_runs: i64,
    pub missing: i64,
}

pub(crate) async fn list_launches(
    db: &Db,
    project_id: Id,
    f: &LaunchFilter,
    page: i64,
    size: i64,
) -> ServerResult<(Vec<LaunchItem>, i64)> {
    let mut w = Where::default();
    w.add("project_id = ?", Some(Arg::I(project_id)));
    if let Some(t) = f.text.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
        w.add(
            "LOWER(name) LIKE ? ESCAPE '\\'",
            Some(Arg::S(contains_pattern(t))),
        );
    }
    if let Some(tag) = f.tag.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
        // Tags are stored as a JSON array of strings: match one whole element.
        let quoted = serde_json::to_string(tag).unwrap_or_default();
        w.add(
            "LOWER(tags) LIKE ? ESCAPE '\\'",
            Some(Arg::S(contains_pattern(&quoted))),
        );
    }
    if let Some(c) = f.closed {
        w.add("closed = ?", Some(Arg::I(c as i64)));
    }
    let total: i64 = bind_all(
        sqlx::query(&format!(
            "SELECT COUNT(*) AS n FROM launches WHERE {}",
            w.sql()
        )),
        &w.args,
    )
    .fetch_one(&db.read)
    .await?
    .try_get("n")?;
    let n = w.next();
    let mut args = w.args.clone();
    args.push(Arg::I(size));
    args.push(Arg::I(page * size));
    let rows = bind_all(
        sqlx::query(&format!(
            "SELECT {LAUNCH_COLS} FROM launches WHERE {} ORDER BY id DESC LIMIT ${n} OFFSET ${}",
            w.sql(),
            n + 1
        )),
        &args,
    )
    .fetch_all(&db.read)
    .await?;
    let launches: Vec<LaunchRow> = rows.iter().map(launch_from).collect::<Result<_, _>>()?;
    if launches.is_empty() {
        return Ok((Vec::new(), total));
    }
    let ids: Vec<Arg> = launches.iter().map(|l| Arg::I(l.id)).collect();
    let list = ids_list(1, ids.len());
    let launch_ids: Vec<Id> = launches.iter().map(|l| l.id).collect();
    let overviews = overviews(db, &launch_ids).await?;
    let runs = bind_all(
        sqlx::query(&format!(
            "SELECT r.launch_id AS launch_id, COUNT(*) AS n, \
             COUNT(CASE WHEN r.stage <> 'finished' AND NOT EXISTS \
               (SELECT 1 FROM test_results t WHERE t.job_run_id = r.id) THEN 1 END) AS missing \
             FROM job_runs r WHERE r.launch_id IN ({list}) GROUP BY r.launch_id"
        )),
        &ids,
    )
    .fetch_all(&db.read)
    .await?;
    let mut run_counts: HashMap<Id, (i64, i64)> = HashMap::new();
    for r in &runs {
        run_counts.insert(
            get_i64(r, "launch_id")?,
            (get_i64(r, "n")?, get_i64(r, "missing")?),
        );
    }
    let items = launches
        .into_iter()
        .map(|l| {
            let (job_runs, missing) = run_counts.get(&l.id).copied().unwrap_or((0, 0));
            LaunchItem {
                counts: overviews
                    .get(&l.id)
                    .map(|o| o.counts.clone())
                    .unwrap_or_else(|| ordered(&HashMap::new())),
                job_runs,
                missing,
                launch: l,
            }
        })
        .collect();
    Ok((items, total))
}

/// How many results each launch holds and its highest result id. Results are
/// only ever added (or deleted with their launch), so this pair changes
/// whenever anything a launch's overview adds up does. Launches without
/// results are left out.
pub(crate) async fn marks(db: &Db, launch_ids: &[Id]) -> ServerResult<HashMap<Id, (i64, i64)>> {
    let mut mark: HashMap<Id, (i64, i64)> = HashMap::new();
    if launch_ids.is_empty() {
        return Ok(mark);
    }
    let ids: Vec<Arg> = launch_ids.iter().map(|i| Arg::I(*i)).collect();
    // Two index lookups per launch: a count over (launch_id, …) and the last
    // entry of (launch_id, id); asked together, SQLite would scan for both.
    let rows = bind_all(
        sqlx::query(&format!(
            "SELECT l.id AS launch_id, \
             (SELECT COUNT(*) FROM test_results t WHERE t.launch_id = l.id) AS n, \
             (SELECT COALESCE(MAX(t.id), 0) FROM test_results t WHERE t.launch_id = l.id) AS m \
             FROM launches l WHERE l.id IN ({})",
            ids_list(1, ids.len())
        )),
        &ids,
    )
    .fetch_all(&db.read)
    .await?;
    for r in &rows {
        let n = get_i64(r, "n")?;
        if n > 0 {
            mark.insert(get_i64(r, "launch_id")?, (n, get_i64(r, "m")?));
        }
    }
    Ok(mark)
}

/// The overviews of launches, from `ui_launch_stats` when the launch's
/// results did not change since they were computed. Stale or missing ones are
/// computed now and stored in the background, so a page never waits for the
/// database writer.
pub(crate) async fn overviews(db: &Db, launch_ids: &[Id]) -> ServerResult<HashMap<Id, Overview>> {
    let mark = marks(db, launch_ids).await?;
    overviews_at(db, launch_ids, &mark).await
}

/// [`overviews`] with the launches' [`marks`] already read.
async fn overviews_at(
    db: &Db,
    launch_ids: &[Id],
    mark: &HashMap<Id, (i64, i64)>,
) -> ServerResult<HashMap<Id, Overview>> {
    let mut out: HashMap<Id, Overview> = HashMap::new();
    if launch_ids.is_empty() {
        return Ok(out);
    }
    let ids: Vec<Arg> = launch_ids.iter().map(|i| Arg::I(*i)).collect();
    let list = ids_list(1, ids.len());
    let cached = bind_all(
        sqlx::query(&format!(
            "SELECT launch_id, results, max_result_id, overview FROM ui_launch_stats \
             WHERE launch_id IN ({list})"
        )),
        &ids,
    )
    .fetch_all(&db.read)
    .await?;
    for r in &cached {
        let id = get_i64(r, "launch_id")?;
        let state = (get_i64(r, "results")?, get_i64(r, "max_result_id")?);
        if mark.get(&id) == Some(&state) {
            // An overview stored by an older version (other fields) is
            // computed again.
            if let Ok(o) = serde_json::from_str(&get_str(r, "overview")?) {
                out.insert(id, o);
            }
        }
    }
    let mut fresh = Vec::new();
    for id in launch_ids {
        if out.contains_key(id) {
            continue;
        }
        let o = overview(db, *id).await?;
        if let Some(m) = mark.get(id) {
            fresh.push((*id, *m, serde_json::to_string(&o).unwrap_or_default()));
        }
        out.insert(*id, o);
    }
    if !fresh.is_empty() {
        let db = db.clone();
        tokio::spawn(async move {
            let now = crate::db::now_ms();
            for (id, (n, m), json) in fresh {
                let r = sqlx::query(
                    "INSERT INTO ui_launch_stats (launch_id, results, max_result_id, overview, computed_ms) \
                     VALUES ($1, $2, $3, $4, $5) ON CONFLICT (launch_id) DO UPDATE SET \
                     results = excluded.results, max_result_id = excluded.max_result_id, \
                     overview = excluded.overview, computed_ms = excluded.computed_ms",
                )
                .bind(id)
                .bind(n)
                .bind(m)
                .bind(json)
                .bind(now)
                .execute(&db.write)
                .await;
                if let Err(e) = r {
                    tracing::warn!(launch = id, error = %e, "cannot store a launch overview");
                }
            }
        });
    }
    Ok(out)
}

/// The overview of one launch (see [`overviews`]).
pub(crate) async fn overview_cached(db: &Db, launch_id: Id) -> ServerResult<Overview> {
    Ok(overviews(db, &[launch_id])
        .await?
        .remove(&launch_id)
        .unwrap_or_default())
}

/// The [`fingerprint`] and the overview of one launch, from one look at its
/// results (the fingerprint is read first: a change racing with the
/// overview is seen again on the next look).
pub(crate) async fn launch_state(db: &Db, launch_id: Id) -> ServerResult<(String, Overview)> {
    let mark = marks(db, &[launch_id]).await?;
    let fp = fingerprint_at(db, launch_id, mark.get(&launch_id).copied()).await?;
    let o = overviews_at(db, &[launch_id], &mark)
        .await?
        .remove(&launch_id)
        .unwrap_or_default();
    Ok((fp, o))
}

/// Everything the launch page says about its results: counts of the latest
/// attempts (whole launch, per job run, manual), how many results are
/// stored, the time they span, when each job run last reported, and how many
/// results each (automated or manual, job run, status) holds, which is what
/// a page of the results list is cut from.
#[derive(Debug, Default, Clone, serde::Serialize, serde::Deserialize)]
pub(crate) struct Overview {
    pub counts: Vec<(String, i64)>,
    /// Latest attempts (tests) and all stored results (attempts).
    pub tests: i64,
    pub results: i64,
    /// Latest attempts recorded by hand.
    pub manual_tests: i64,
    pub first_start: Option<i64>,
    pub last_stop: Option<i64>,
    pub last_result_ms: Option<i64>,
    pub job_runs: HashMap<Id, (HashMap<String, i64>, i64)>,
    /// No default: an overview stored before this field is computed again.
    pub groups: Vec<ResultGroup>,
}

/// The results of a launch with one (manual, job run, status).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub(crate) struct ResultGroup {
    pub manual: bool,
    pub job_run: Option<Id>,
    pub status: String,
    /// Stored results (every attempt) and latest attempts.
    pub results: i64,
    pub tests: i64,
}

pub(crate) async fn overview(db: &Db, launch_id: Id) -> ServerResult<Overview> {
    // Every stored result: one pass over the index of `ui_results`, plus (a
    // launch receiving results) the rows of those above its mark, an id range
    // (`ui_order::tail_from`).
    let tail = super::ui_order::tail_from(db, launch_id).await?;
    let per_group = |source: &str, cond: &str| {
        format!(
            "SELECT t.manual AS manual, t.job_run_id AS job_run_id, t.status AS status, COUNT(*) AS n, \
             MIN(t.start_ms) AS first_start, MAX(t.stop_ms) AS last_stop, MAX(t.created_ms) AS last_created \
             FROM {source} t WHERE t.launch_id = $1{cond} GROUP BY t.manual, t.job_run_id, t.status"
        )
    };
    let in_order = per_group(
        "ui_results",
        if tail.is_some() {
            " AND t.result_id <= $2"
        } else {
            ""
        },
    );
    let mut q = sqlx::query(&in_order).bind(launch_id);
    if let Some(mark) = tail {
        q = q.bind(mark);
    }
    let mut all = q.fetch_all(&db.read).await?;
    if let Some(mark) = tail {
        all.extend(
            sqlx::query(&per_group("test_results", " AND t.id > $2"))
                .bind(launch_id)
                .bind(mark)
                .fetch_all(&db.read)
                .await?,
        );
    }
    // The superseded attempts: only a test stored more than once has one, so
    // the later-attempt lookup runs for those tests' results only. (The
    // CROSS JOIN keeps SQLite's join order: tests first, then their results
    // through the index on (launch_id, test_key).)
    let old = sqlx::query(&format!(
        "SELECT r.manual AS manual, r.job_run_id AS job_run_id, r.status AS status, COUNT(*) AS n \
         FROM test_results r WHERE r.id IN (SELECT t.id FROM \
           (SELECT k.test_key AS test_key FROM test_results k WHERE k.launch_id = $1 \
            GROUP BY k.test_key HAVING COUNT(*) > 1) d \
           CROSS JOIN test_results t WHERE t.launch_id = $1 AND t.test_key = d.test_key AND NOT ({LATEST})) \
         GROUP BY r.manual, r.job_run_id, r.status"
    ))
    .bind(launch_id)
    .fetch_all(&db.read)
    .await?;
    let key = |r: &sqlx::any::AnyRow| -> ServerResult<(bool, Option<Id>, String)> {
        Ok((
            get_i64(r, "manual")? != 0,
            opt_i64(r, "job_run_id"),
            get_str(r, "status")?,
        ))
    };
    let mut superseded: HashMap<(bool, Option<Id>, String), i64> = HashMap::new();
    for r in &old {
        superseded.insert(key(r)?, get_i64(r, "n")?);
    }
    // A group's (count, first start, last stop, last stored), its two parts
    // (ordered and newer) added up.
    type Part = (i64, Option<i64>, Option<i64>, Option<i64>);
    let mut parts: BTreeMap<(bool, Option<Id>, String), Part> = BTreeMap::new();
    for r in &all {
        let e = parts.entry(key(r)?).or_insert((0, None, None, None));
        e.0 += get_i64(r, "n")?;
        e.1 = match (e.1, opt_i64(r, "first_start")) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        e.2 = e.2.max(opt_i64(r, "last_stop"));
        e.3 = e.3.max(opt_i64(r, "last_created"));
    }
    let mut o = Overview::default();
    let mut counts: HashMap<String, i64> = HashMap::new();
    for ((manual, job_run, status), (n, first_start, last_stop, last)) in parts {
        let old = superseded
            .get(&(manual, job_run, status.clone()))
            .copied()
            .unwrap_or(0);
        let tests = n - old;
        o.results += n;
        o.first_start = match (o.first_start, first_start) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        o.last_stop = o.last_stop.max(last_stop);
        o.last_result_ms = o.last_result_ms.max(last);
        if let Some(j) = job_run {
            let e = o.job_runs.entry(j).or_default();
            e.1 = e.1.max(last.unwrap_or(0));
            if tests > 0 {
                *e.0.entry(status.clone()).or_default() += tests;
            }
        }
        o.tests += tests;
        if tests > 0 {
            *counts.entry(status.clone()).or_default() += tests;
        }
        if manual {
            o.manual_tests += tests;
        }
        o.groups.push(ResultGroup {
            manual,
            job_run,
            status,
            results: n,
            tests,
        });
    }
    o.counts = ordered(&counts);
    o.groups.sort_by_key(|g| group_order(g.job_run, &g.status));
    Ok(o)
}

/// Where a status comes in a job run's results: failures first.
pub(super) fn status_rank(status: &str) -> u8 {
    match status {
        "failed" => 0,
        "broken" => 1,
        "unknown" => 2,
        "skipped" => 3,
        _ => 4,
    }
}

/// The order of the results list's groups: by job run (results outside any
/// job run last), then failures first; within a group by name.
pub(super) fn group_order(job_run: Option<Id>, status: &str) -> (bool, Option<Id>, u8, String) {
    (
        job_run.is_none(),
        job_run,
        status_rank(status),
        status.to_string(),
    )
}

/// The environment the launch's uploads and its run reported: name → values.
pub(crate) async fn launch_environment(
    db: &Db,
    launch_id: Id,
) -> ServerResult<BTreeMap<String, BTreeSet<String>>> {
    let mut env: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut add = |text: &str| {
        if let Ok(items) = serde_json::from_str::<Vec<api::KeyValue>>(text) {
            for kv in items {
                if !api::is_secret_name(&kv.key) {
                    env.entry(kv.key).or_default().insert(kv.value);
                }
            }
        }
    };
    for r in sqlx::query(
        "SELECT environment FROM server_runs WHERE launch_id = $1 \
         UNION ALL SELECT environment FROM sessions WHERE launch_id = $1",
    )
    .bind(launch_id)
    .fetch_all(&db.read)
    .await?
    {
        add(&get_str(&r, "environment")?);
    }
    Ok(env)
}

/// A cheap value that changes whenever anything shown on the launch page does.
pub(crate) async fn fingerprint(db: &Db, launch_id: Id) -> ServerResult<String> {
    let mark = marks(db, &[launch_id]).await?;
    fingerprint_at(db, launch_id, mark.get(&launch_id).copied()).await
}

/// [`fingerprint`] with the launch's [`marks`] already read.
async fn fingerprint_at(db: &Db, launch_id: Id, mark: Option<(i64, i64)>) -> ServerResult<String> {
    let (n, m) = mark.unwrap_or((0, 0));
    let r = sqlx::query(
        "SELECT (SELECT COUNT(*) FROM job_runs WHERE launch_id = $1) AS jr, \
         (SELECT COALESCE(MAX(modified_ms), 0) FROM job_runs WHERE launch_id = $1) AS jm, \
         (SELECT COALESCE(MAX(closed), 0) FROM launches WHERE id = $1) AS c",
    )
    .bind(launch_id)
    .fetch_one(&db.read)
    .await?;
    Ok(format!(
        "{n}-{m}-{}-{}-{}",
        get_i64(&r, "jr")?,
        get_i64(&r, "jm")?,
        get_i64(&r, "c")?
    ))
}

// ---------------------------------------------------------------- job runs

/// A job run as the launch page shows it.
pub(crate) struct JobRunView {
    pub run: crate::db::job_runs::JobRunRow,
    pub counts: Vec<(String, i64)>,
    /// When its last result arrived.
    pub last_result_ms: Option<i64>,
}

impl JobRunView {
    /// Scheduled or started, and nothing reported yet.
    pub(crate) fn missing(&self) -> bool {
        self.run.result_count == 0 && self.run.stage != api::stage::FINISHED
    }
    /// The last sign of life: a result, or a start/stop.
    pub(crate) fn last_report_ms(&self) -> i64 {
        self.last_result_ms.unwrap_or(0).max(self.run.modified_ms)
    }
}

pub(crate) async fn job_run_views(
    db: &Db,
    launch_id: Id,
    o: &Overview,
) -> ServerResult<Vec<JobRunView>> {
    let runs = crate::db::job_runs::launch_job_runs(db, launch_id).await?;
    let empty = HashMap::new();
    Ok(runs
        .into_iter()
        .map(|run| {
            let (counts, last) = o
                .job_runs
                .get(&run.id)
                .map(|(c, l)| (c, Some(*l)))
                .unwrap_or((&empty, None));
            JobRunView {
                counts: ordered(counts),
                last_result_ms: last,
                run,
            }
        })
        .collect())
}

pub(crate) use super::result_views::*;

//! Read queries of the results of a launch: a page of results (cut from the
//! stored overview's group sizes, read through `ui_results`), one
//! result's head, a test's attempts. Split from `views.rs`, whose helpers
//! (`Where`, `bind_all`, the group order) they share.

use std::collections::HashMap;

use onelaunch_api::{self as api, Id};

use super::views::*;
use crate::db::launches::LATEST;
use crate::db::{get_i64, get_str, opt_i64, opt_str, Db};
use crate::error::ServerResult;

/// `name` or `full_name` of the rows aliased `alias` contain the
/// (lower-cased, escaped) pattern of argument `$n`.
fn names_like(alias: &str, n: usize) -> String {
    format!(
        "(LOWER({alias}.name) LIKE ${n} ESCAPE '\\' OR LOWER(COALESCE({alias}.full_name, '')) LIKE ${n} ESCAPE '\\')"
    )
}

/// [`LATEST`] for a row `u` of `ui_results`: no later attempt of its test
/// in the launch, found through `test_results_key` without reading the
/// result's own row.
const LATEST_IN_ORDER: &str = crate::db::launches::no_later_attempt!("u", "u.result_id", "x");

/// Which results of a launch a list shows.
#[derive(Default, Debug, Clone)]
pub(crate) struct ResultFilter {
    pub job_run: Option<Id>,
    pub status: Option<String>,
    pub text: Option<String>,
    /// Include superseded attempts.
    pub retries: bool,
    /// Manual results (outside job runs) instead of automated ones.
    pub manual: bool,
}

pub(crate) struct ResultLine {
    pub id: Id,
    pub job_run_id: Option<Id>,
    pub name: String,
    pub full_name: Option<String>,
    pub status: String,
    pub message: Option<String>,
    pub duration_ms: Option<i64>,
    pub retry: bool,
    pub attachments: i64,
}

/// One page of a launch's results, in the order of [`group_order`] and by
/// name within a group, and how many results the filter keeps in all.
///
/// The page is cut from the groups' sizes: from the overview `o` when one is
/// given and no text is searched, else counted now. Then only the groups the
/// page touches are read, each through the index of `ui_results` from the
/// page's first row on, so page 1 of a launch of 100,000 tests reads about
/// 100 results and a deep page at most the rest of one group
/// ([`super::ui_order`]; the results of a launch newer than its order are
/// sorted in the query and merged into that walk).
pub(crate) async fn results(
    db: &Db,
    launch_id: Id,
    f: &ResultFilter,
    page: i64,
    size: i64,
    o: Option<&Overview>,
) -> ServerResult<(Vec<ResultLine>, i64)> {
    let status = f
        .status
        .as_deref()
        .filter(|s| api::STATUSES.contains(s))
        .map(str::to_string);
    let text = f.text.as_deref().map(str::trim).filter(|t| !t.is_empty());
    // What every group's rows are read with.
    let mut w = Where::default();
    w.add("t.launch_id = ?", Some(Arg::I(launch_id)));
    w.add("t.manual = ?", Some(Arg::I(f.manual as i64)));
    // A text search tests the names in `ui_results` (narrow rows) for the
    // settled results, and in `test_results` for those above the mark; the
    // same argument serves both.
    let mut text_in_order: Option<String> = None;
    if let Some(t) = text {
        let n = w.next();
        w.args.push(Arg::S(contains_pattern(t)));
        w.conds.push(names_like("t", n));
        text_in_order = Some(names_like("u", n));
    }
    if !f.retries {
        w.add(LATEST, None);
    }
    // The same conditions on the rows of `ui_results` (same arguments).
    let mut u_base = vec!["u.launch_id = $1".to_string(), "u.manual = $2".to_string()];
    u_base.extend(text_in_order);
    if !f.retries {
        u_base.push(LATEST_IN_ORDER.to_string());
    }
    // Whether the launch has results above the web UI's order, read before
    // the groups are counted or walked.
    let tail = super::ui_order::tail_from(db, launch_id).await?;
    let mut groups: Vec<(Option<Id>, String, i64)> = match (o, text) {
        (Some(o), None) => o
            .groups
            .iter()
            .filter(|g| {
                g.manual == f.manual
                    && f.job_run.is_none_or(|j| g.job_run == Some(j))
                    && status.as_ref().is_none_or(|s| &g.status == s)
            })
            .map(|g| {
                let n = if f.retries { g.results } else { g.tests };
                (g.job_run, g.status.clone(), n)
            })
            .collect(),
        _ => {
            let mut c = w.clone();
            let mut cu = u_base.clone();
            if let Some(j) = f.job_run {
                cu.push(format!("u.job_run_id = ${}", c.next()));
                c.add("t.job_run_id = ?", Some(Arg::I(j)));
            }
            if let Some(s) = &status {
                cu.push(format!("u.status = ${}", c.next()));
                c.add("t.status = ?", Some(Arg::S(s.clone())));
            }
            let sql = if text.is_none() {
                // Without a text: every row of the launch counts.
                format!(
                    "SELECT t.job_run_id AS job_run_id, t.status AS status, COUNT(*) AS n \
                     FROM test_results t WHERE {} GROUP BY t.job_run_id, t.status",
                    c.sql()
                )
            } else {
                // A text search reads the names in `ui_results` (up to the
                // mark; the rows above it from `test_results`, as a page
                // does), never a settled result's own row.
                let (bound, newer) = match tail {
                    None => (String::new(), String::new()),
                    Some(mark) => {
                        let m = c.next();
                        c.args.push(Arg::I(mark));
                        (
                            format!(" AND u.result_id <= ${m}"),
                            format!(
                                " UNION ALL SELECT t.job_run_id AS job_run_id, t.status AS status, \
                                 COUNT(*) AS n FROM test_results t WHERE t.id > ${m} AND {} \
                                 GROUP BY t.job_run_id, t.status",
                                c.sql()
                            ),
                        )
                    }
                };
                format!(
                    "SELECT u.job_run_id AS job_run_id, u.status AS status, COUNT(*) AS n \
                     FROM ui_results u WHERE {}{bound} GROUP BY u.job_run_id, u.status{newer}",
                    cu.join(" AND ")
                )
            };
            let rows = bind_all(sqlx::query(&sql), &c.args)
                .fetch_all(&db.read)
                .await?;
            // The two parts of a search may each count a group.
            let mut counted: Vec<(Option<Id>, String, i64)> = Vec::new();
            for r in &rows {
                let (job_run, status, n) = (
                    opt_i64(r, "job_run_id"),
                    get_str(r, "status")?,
                    get_i64(r, "n")?,
                );
                match counted.iter_mut().find(|g| g.0 == job_run && g.1 == status) {
                    Some(g) => g.2 += n,
                    None => counted.push((job_run, status, n)),
                }
            }
            counted
        }
    };
    groups.retain(|g| g.2 > 0);
    groups.sort_by_key(|g| group_order(g.0, &g.1));
    let total: i64 = groups.iter().map(|g| g.2).sum();
    // The groups the page touches, each read from its first row on the page.
    let mut order: Vec<Id> = Vec::new();
    let mut skip = page.saturating_mul(size);
    for (job_run, status, n) in &groups {
        let want = size - order.len() as i64;
        if want <= 0 {
            break;
        }
        if skip >= *n {
            skip -= n;
            continue;
        }
        let mut g = w.clone();
        // The group in `ui_results` (same arguments as on `test_results`).
        let mut in_order = u_base.clone();
        match job_run {
            Some(j) => {
                in_order.push(format!("u.job_run_id = ${}", g.next()));
                g.add("t.job_run_id = ?", Some(Arg::I(*j)));
            }
            None => {
                in_order.push("u.job_run_id IS NULL".into());
                g.add("t.job_run_id IS NULL", None);
            }
        }
        in_order.push(format!("u.status = ${}", g.next()));
        g.add("t.status = ?", Some(Arg::S(status.clone())));
        let k = g.next();
        let mut args = g.args.clone();
        args.push(Arg::I(want.min(n - skip)));
        args.push(Arg::I(skip));
        // Through `ui_results`: its index walks the group by name from the
        // page's first row and stops after the page; a row it skips is
        // tested there (its name, its later attempts through
        // `test_results_key`), so no result's own row is read before the
        // page's. For a launch with results above the mark, those (an id
        // range, sorted: what arrived since the last settle) are merged
        // into that walk: SQLite runs a compound `ORDER BY` as a merge of
        // its two ordered parts, so the settled part is still read from the
        // page's first row. The mark was read before the launch's newest
        // id, and `ui_results` holds at least every result up to it, so each
        // result is in exactly one part.
        let sql = match tail {
            None => format!(
                "SELECT u.result_id AS id FROM ui_results u \
                 WHERE {} ORDER BY u.name, u.result_id LIMIT ${k} OFFSET ${}",
                in_order.join(" AND "),
                k + 1
            ),
            Some(mark) => {
                let m = k + 2;
                args.push(Arg::I(mark));
                format!(
                    "SELECT u.name AS name, u.result_id AS id FROM ui_results u \
                     WHERE {} AND u.result_id <= ${m} \
                     UNION ALL SELECT t.name AS name, t.id AS id FROM test_results t \
                     WHERE t.id > ${m} AND {} \
                     ORDER BY 1, 2 LIMIT ${k} OFFSET ${}",
                    in_order.join(" AND "),
                    g.sql(),
                    k + 1,
                )
            }
        };
        let rows = bind_all(sqlx::query(&sql), &args)
            .fetch_all(&db.read)
            .await?;
        for r in &rows {
            order.push(get_i64(r, "id")?);
        }
        skip = 0;
    }
    if order.is_empty() {
        return Ok((Vec::new(), total));
    }
    let id_args: Vec<Arg> = order.iter().map(|i| Arg::I(*i)).collect();
    let rows = bind_all(
        sqlx::query(&format!(
            "SELECT t.id AS id, t.job_run_id AS job_run_id, t.name AS name, t.full_name AS full_name, \
             t.status AS status, SUBSTR(t.message, 1, 300) AS message, \
             COALESCE(t.duration_ms, t.stop_ms - t.start_ms) AS duration_ms, \
             CASE WHEN {LATEST} THEN 0 ELSE 1 END AS retry, \
             (SELECT COUNT(*) FROM attachments a WHERE a.test_result_id = t.id) AS attachments \
             FROM test_results t WHERE t.id IN ({})",
            ids_list(1, id_args.len())
        )),
        &id_args,
    )
    .fetch_all(&db.read)
    .await?;
    let mut by_id: HashMap<Id, ResultLine> = HashMap::with_capacity(rows.len());
    for r in &rows {
        let id = get_i64(r, "id")?;
        by_id.insert(
            id,
            ResultLine {
                id,
                job_run_id: opt_i64(r, "job_run_id"),
                name: get_str(r, "name")?,
                full_name: opt_str(r, "full_name"),
                status: get_str(r, "status")?,
                message: opt_str(r, "message"),
                duration_ms: opt_i64(r, "duration_ms"),
                retry: get_i64(r, "retry")? != 0,
                attachments: get_i64(r, "attachments")?,
            },
        );
    }
    Ok((
        order.iter().filter_map(|id| by_id.remove(id)).collect(),
        total,
    ))
}

/// One stored result with what its page needs besides the body.
pub(crate) struct ResultHead {
    pub id: Id,
    pub project_id: Id,
    pub launch_id: Id,
    pub launch_name: String,
    pub job_run_id: Option<Id>,
    pub test_key: String,
    pub name: String,
    pub full_name: Option<String>,
    pub status: String,
    pub message: Option<String>,
    pub trace: Option<String>,
    pub start_ms: Option<i64>,
    pub stop_ms: Option<i64>,
    pub duration_ms: Option<i64>,
    pub manual: bool,
    pub created_ms: i64,
}

pub(crate) async fn result_head(db: &Db, id: Id) -> ServerResult<Option<ResultHead>> {
    let r = sqlx::query(
        "SELECT t.id AS id, t.project_id AS project_id, t.launch_id AS launch_id, l.name AS launch_name, \
         t.job_run_id AS job_run_id, t.test_key AS test_key, t.name AS name, t.full_name AS full_name, \
         t.status AS status, t.message AS message, t.trace AS trace, t.start_ms AS start_ms, \
         t.stop_ms AS stop_ms, t.duration_ms AS duration_ms, t.manual AS manual, t.created_ms AS created_ms \
         FROM test_results t JOIN launches l ON l.id = t.launch_id WHERE t.id = $1",
    )
    .bind(id)
    .fetch_optional(&db.read)
    .await?;
    let Some(r) = r else { return Ok(None) };
    Ok(Some(ResultHead {
        id: get_i64(&r, "id")?,
        project_id: get_i64(&r, "project_id")?,
        launch_id: get_i64(&r, "launch_id")?,
        launch_name: get_str(&r, "launch_name")?,
        job_run_id: opt_i64(&r, "job_run_id"),
        test_key: get_str(&r, "test_key")?,
        name: get_str(&r, "name")?,
        full_name: opt_str(&r, "full_name"),
        status: get_str(&r, "status")?,
        message: opt_str(&r, "message"),
        trace: opt_str(&r, "trace"),
        start_ms: opt_i64(&r, "start_ms"),
        stop_ms: opt_i64(&r, "stop_ms"),
        duration_ms: opt_i64(&r, "duration_ms"),
        manual: get_i64(&r, "manual")? != 0,
        created_ms: get_i64(&r, "created_ms")?,
    }))
}

/// Every attempt of a test in a launch (same test key), oldest first.
pub(crate) struct Attempt {
    pub id: Id,
    pub status: String,
    pub start_ms: Option<i64>,
    pub duration_ms: Option<i64>,
    pub job_run_id: Option<Id>,
    pub created_ms: i64,
}

pub(crate) async fn attempts(db: &Db, launch_id: Id, test_key: &str) -> ServerResult<Vec<Attempt>> {
    let rows = sqlx::query(
        "SELECT id, status, start_ms, COALESCE(duration_ms, stop_ms - start_ms) AS duration_ms, \
         job_run_id, created_ms FROM test_results WHERE launch_id = $1 AND test_key = $2 \
         ORDER BY COALESCE(start_ms, 0), id LIMIT 200",
    )
    .bind(launch_id)
    .bind(test_key)
    .fetch_all(&db.read)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(Attempt {
                id: get_i64(r, "id")?,
                status: get_str(r, "status")?,
                start_ms: opt_i64(r, "start_ms"),
                duration_ms: opt_i64(r, "duration_ms"),
                job_run_id: opt_i64(r, "job_run_id"),
                created_ms: get_i64(r, "created_ms")?,
            })
        })
        .collect()
}

//! Server-led launches: the server defines the scope, creates one launch with
//! one job run per executor job, triggers the jobs on their build servers, and
//! each job reports back into its job run (`ALLURE_JOB_RUN_ID`).
//!
//! - **Test cases** are learned from uploads ([`track_test_cases`], called by
//!   `store::ingest_results` in the same transaction). A case's identity is its
//!   `ALLURE_ID` (or `AS_ID`) label, else `testCaseId`, else `fullName`, else
//!   name. The job whose job run last uploaded a result of it is its default
//!   executor; cases without one are manual.
//! - **Jobs** (learned from uploads) get a configuration: "can run tests", a
//!   build-server integration (`github`, `gitlab`, `jenkins`, `command`) with a
//!   write-only credential, and parameters.
//! - **Test plans** select cases explicitly and/or by a filter; per-plan
//!   executor overrides change which job runs which case.
//! - **Runs** check every executor job's prerequisites, then create the launch,
//!   the job runs (stage `scheduled`, uid `plan-<launch id>`) and their test
//!   plans in one transaction, and trigger the jobs. A failed trigger marks its
//!   job run `run_failure` with the provider's answer; the others go on.
//! - **Manual results** go into the launch outside any job run (flag `manual`).
//!
//! Storage follows `store.rs`: portable SQL over `sqlx::Any`, invariants as
//! unique constraints and transactions.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use axum::extract::{Path, RawQuery, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use onelaunch_api::{self as api, Id};
use serde_json::{json, Value};
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use crate::auth::Auth;
use crate::db::{get_i64, get_str, now_ms, opt_i64, opt_str, Db};
use crate::error::{ServerError, ServerResult};
use crate::routes::ApiJson;
use crate::store::{self, clip, MAX_NAME};
use crate::AppState;

/// Labels that change from run to run and say nothing about the test.
const VOLATILE_LABELS: [&str; 2] = ["host", "thread"];
/// How long one provider request may take.
const TRIGGER_TIMEOUT: Duration = Duration::from_secs(20);
/// Longest provider answer kept in a job run's error message.
const ERROR_BODY_CHARS: usize = 300;
/// Stderr lines of a failed `command` kept in the error message.
const COMMAND_TAIL_LINES: usize = 20;
/// Most test cases one request may name.
const MAX_CASE_IDS: usize = 10 * crate::limits::MAX_LIST;

/// Refuses a list longer than `max`, naming the field.
fn at_most(field: &str, len: usize, max: usize) -> ServerResult<()> {
    if len > max {
        return Err(ServerError::bad(format!(
            "field `{field}` has {len} entries; at most {max} are accepted"
        )));
    }
    Ok(())
}

// ================================================================ test cases

/// The `ALLURE_ID` label value (allure-pytest writes it as `as_id`).
fn allure_id_of(labels: &[api::LabelDto]) -> Option<String> {
    ["ALLURE_ID", "AS_ID"].iter().find_map(|name| {
        labels
            .iter()
            .find(|l| l.name.eq_ignore_ascii_case(name))
            .map(|l| l.value.trim().to_string())
            .filter(|v| !v.is_empty())
    })
}

fn non_empty(s: &Option<String>) -> Option<&str> {
    s.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

/// A result's test-case identity: `ALLURE_ID`, else `testCaseId`, else
/// `fullName`, else name.
pub fn identity_of(r: &api::UploadTestResult) -> String {
    let id = if let Some(a) = allure_id_of(&r.labels) {
        format!("allure:{a}")
    } else if let Some(t) = non_empty(&r.test_case_id) {
        format!("tcid:{t}")
    } else if let Some(f) = non_empty(&r.full_name) {
        format!("full:{f}")
    } else {
        format!("name:{}", r.name.trim())
    };
    clip(&id, 2048)
}

/// Labels worth keeping on a test case (for filters): trimmed, without the
/// volatile ones, without repeats.
fn case_labels(labels: &[api::LabelDto]) -> Vec<api::LabelDto> {
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for l in labels {
        let name = clip(l.name.trim(), 255);
        let value = clip(l.value.trim(), 1024);
        if name.is_empty()
            || VOLATILE_LABELS
                .iter()
                .any(|v| v.eq_ignore_ascii_case(&name))
        {
            continue;
        }
        if seen.insert((name.clone(), value.clone())) {
            out.push(api::LabelDto { name, value });
        }
    }
    out
}

/// What one result (or manual entry) says about its test case.
struct CaseUpdate {
    identity: String,
    allure_id: Option<String>,
    name: String,
    full_name: Option<String>,
    labels: Vec<api::LabelDto>,
    status: &'static str,
    start: i64,
    result_id: Id,
    job_id: Option<Id>,
}

/// Replaces the label rows of the given cases (multi-row statements).
async fn write_labels(
    conn: &mut AnyConnection,
    replaced: &[Id],
    rows: &[(Id, api::LabelDto)],
) -> ServerResult<()> {
    for chunk in replaced.chunks(500) {
        let params: Vec<String> = (1..=chunk.len()).map(|i| format!("${i}")).collect();
        let sql = format!(
            "DELETE FROM test_case_labels WHERE test_case_id IN ({})",
            params.join(", ")
        );
        let mut q = sqlx::query(&sql);
        for id in chunk {
            q = q.bind(*id);
        }
        q.execute(&mut *conn).await?;
    }
    for chunk in rows.chunks(300) {
        let values: Vec<String> = (0..chunk.len())
            .map(|i| format!("(${}, ${}, ${})", 3 * i + 1, 3 * i + 2, 3 * i + 3))
            .collect();
        let sql = format!(
            "INSERT INTO test_case_labels (test_case_id, name, value) VALUES {} \
             ON CONFLICT (test_case_id, name, value) DO NOTHING",
            values.join(", ")
        );
        let mut q = sqlx::query(&sql);
        for (id, l) in chunk {
            q = q.bind(*id).bind(l.name.as_str()).bind(l.value.as_str());
        }
        q.execute(&mut *conn).await?;
    }
    Ok(())
}

/// Test cases written by one upsert statement.
const UPSERT_ROWS: usize = 100;

/// Creates or updates the test cases of `updates` (at most one per identity,
/// in identity order, so concurrent transactions lock rows in the same order).
/// Returns their ids in the same order.
///
/// One multi-row `INSERT … ON CONFLICT (project_id, identity) DO UPDATE` per
/// chunk: the unique index finds a known case whatever the planner believes
/// about the table. A lookup by `identity IN (…)` would be planned from
/// statistics, which lag behind a table one large launch fills within
/// seconds; planned on a small table, it filters every case of the project on
/// each batch. The conflict arm locks the row and works on its latest
/// version, so a case created concurrently is updated, never missed.
///
/// The statement leaves `labels` alone, so it answers the stored labels of a
/// known case: only cases whose labels changed get them (and their label
/// rows) rewritten. A case whose `created_ms` is this statement's time was
/// created by it (or, in the same millisecond, with the same labels) and gets
/// its label rows, inserted idempotently.
async fn upsert_cases(
    conn: &mut AnyConnection,
    project_id: Id,
    updates: &[CaseUpdate],
) -> ServerResult<Vec<Id>> {
    const COLS: usize = 9;
    // The last status follows the latest start time (compared with the stored row).
    const NEWER: &str = "COALESCE(test_cases.last_start_ms, 0) <= excluded.last_start_ms";
    let now = now_ms();
    let labels: Vec<String> = updates
        .iter()
        .map(|u| serde_json::to_string(&u.labels).unwrap_or_else(|_| "[]".into()))
        .collect();
    // identity -> (id, stored labels, created_ms)
    let mut stored: HashMap<String, (Id, String, i64)> = HashMap::with_capacity(updates.len());
    for (chunk, chunk_labels) in updates.chunks(UPSERT_ROWS).zip(labels.chunks(UPSERT_ROWS)) {
        let values: Vec<String> = (0..chunk.len())
            .map(|i| {
                let p: Vec<String> = (0..COLS)
                    .map(|c| format!("${}", 3 + i * COLS + c))
                    .collect();
                format!("($1, {}, $2, $2)", p.join(", "))
            })
            .collect();
        let sql = format!(
            "INSERT INTO test_cases (project_id, identity, allure_id, name, full_name, labels, last_status, \
             last_start_ms, last_result_id, job_id, created_ms, modified_ms) VALUES {} \
             ON CONFLICT (project_id, identity) DO UPDATE SET name = excluded.name, \
             full_name = COALESCE(excluded.full_name, test_cases.full_name), \
             allure_id = COALESCE(excluded.allure_id, test_cases.allure_id), \
             last_status = CASE WHEN {NEWER} THEN excluded.last_status ELSE test_cases.last_status END, \
             last_result_id = CASE WHEN {NEWER} THEN excluded.last_result_id ELSE test_cases.last_result_id END, \
             last_start_ms = CASE WHEN {NEWER} THEN excluded.last_start_ms ELSE test_cases.last_start_ms END, \
             job_id = COALESCE(excluded.job_id, test_cases.job_id), modified_ms = excluded.modified_ms \
             RETURNING id, identity, labels, created_ms",
            values.join(", ")
        );
        let mut q = sqlx::query(&sql).bind(project_id).bind(now);
        for (u, labels_json) in chunk.iter().zip(chunk_labels) {
            q = q
                .bind(u.identity.as_str())
                .bind(u.allure_id.as_deref())
                .bind(u.name.as_str())
                .bind(u.full_name.as_deref())
                .bind(labels_json.as_str())
                .bind(u.status)
                .bind(u.start)
                .bind(u.result_id)
                .bind(u.job_id);
        }
        for r in q.fetch_all(&mut *conn).await? {
            stored.insert(
                get_str(&r, "identity")?,
                (
                    get_i64(&r, "id")?,
                    get_str(&r, "labels")?,
                    get_i64(&r, "created_ms")?,
                ),
            );
        }
    }
    let mut ids = Vec::with_capacity(updates.len());
    let mut replaced = Vec::new();
    let mut rows = Vec::new();
    for (u, labels_json) in updates.iter().zip(&labels) {
        let (id, old_labels, created_ms) = stored.remove(&u.identity).ok_or_else(|| {
            ServerError::Conflict(format!(
                "test case {:?} changed concurrently; retry",
                u.identity
            ))
        })?;
        if old_labels != *labels_json {
            sqlx::query("UPDATE test_cases SET labels = $1 WHERE id = $2")
                .bind(labels_json.as_str())
                .bind(id)
                .execute(&mut *conn)
                .await?;
            replaced.push(id);
            rows.extend(u.labels.iter().map(|l| (id, l.clone())));
        } else if created_ms == now {
            rows.extend(u.labels.iter().map(|l| (id, l.clone())));
        }
        ids.push(id);
    }
    write_labels(conn, &replaced, &rows).await?;
    Ok(ids)
}

/// Keeps the test cases of freshly stored results up to date: called by
/// `store::ingest_results` inside its transaction with the results it
/// inserted (`(result id, result)`). A result uploaded through a job run makes
/// that run's job the case's default executor, and moves a `scheduled` job run
/// to `in_progress`.
pub async fn track_test_cases(
    conn: &mut AnyConnection,
    session: &store::SessionRow,
    results: &[(Id, &api::UploadTestResult)],
) -> ServerResult<()> {
    if results.is_empty() {
        return Ok(());
    }
    let now = now_ms();
    let job_id = match session.job_run_id {
        Some(run) => {
            let row = sqlx::query("SELECT job_id, stage FROM job_runs WHERE id = $1")
                .bind(run)
                .fetch_optional(&mut *conn)
                .await?;
            match row {
                Some(row) => {
                    if get_str(&row, "stage")? == api::stage::SCHEDULED {
                        sqlx::query(
                            "UPDATE job_runs SET stage = $1, modified_ms = $2 WHERE id = $3 AND stage = $4",
                        )
                        .bind(api::stage::IN_PROGRESS)
                        .bind(now)
                        .bind(run)
                        .bind(api::stage::SCHEDULED)
                        .execute(&mut *conn)
                        .await?;
                    }
                    Some(get_i64(&row, "job_id")?)
                }
                None => None,
            }
        }
        None => None,
    };
    // One update per test case: its latest attempt in this batch.
    let mut latest: BTreeMap<String, (i64, Id, &api::UploadTestResult)> = BTreeMap::new();
    for (id, r) in results {
        let start = r.start.or(r.stop).unwrap_or(now);
        let key = identity_of(r);
        match latest.get(&key) {
            Some((s, i, _)) if (*s, *i) > (start, *id) => {}
            _ => {
                latest.insert(key, (start, *id, r));
            }
        }
    }
    let mut updates = Vec::with_capacity(latest.len());
    for (identity, (start, result_id, r)) in latest {
        let name = clip(r.name.trim(), MAX_NAME);
        let full_name = non_empty(&r.full_name).map(|f| clip(f, 4096));
        updates.push(CaseUpdate {
            identity,
            allure_id: allure_id_of(&r.labels).map(|a| clip(&a, 255)),
            name: if name.is_empty() {
                full_name.clone().unwrap_or_else(|| r.uuid.clone())
            } else {
                name
            },
            full_name,
            labels: case_labels(&r.labels),
            status: api::normalize_status(r.status.as_deref()),
            start,
            result_id,
            job_id,
        });
    }
    upsert_cases(conn, session.project_id, &updates).await?;
    Ok(())
}

/// A stored test case with its default executor.
#[derive(Debug, Clone)]
pub struct CaseRow {
    pub id: Id,
    pub project_id: Id,
    pub name: String,
    pub full_name: Option<String>,
    pub allure_id: Option<String>,
    pub labels: Vec<api::LabelDto>,
    pub last_status: Option<String>,
    pub job_id: Option<Id>,
    pub job_name: Option<String>,
    pub job_type: Option<String>,
    pub job_url: Option<String>,
    pub created_ms: i64,
    pub modified_ms: i64,
}

const CASE_SELECT: &str = "SELECT c.id AS id, c.project_id AS project_id, c.name AS name, \
     c.full_name AS full_name, c.allure_id AS allure_id, c.labels AS labels, \
     c.last_status AS last_status, c.job_id AS job_id, j.name AS job_name, j.ci_type AS job_type, \
     j.url AS job_url, c.created_ms AS created_ms, c.modified_ms AS modified_ms \
     FROM test_cases c LEFT JOIN jobs j ON j.id = c.job_id";

fn case_from(r: &AnyRow) -> ServerResult<CaseRow> {
    Ok(CaseRow {
        id: get_i64(r, "id")?,
        project_id: get_i64(r, "project_id")?,
        name: get_str(r, "name")?,
        full_name: opt_str(r, "full_name"),
        allure_id: opt_str(r, "allure_id"),
        labels: serde_json::from_str(&get_str(r, "labels")?).unwrap_or_default(),
        last_status: opt_str(r, "last_status"),
        job_id: opt_i64(r, "job_id"),
        job_name: opt_str(r, "job_name"),
        job_type: opt_str(r, "job_type"),
        job_url: opt_str(r, "job_url"),
        created_ms: get_i64(r, "created_ms")?,
        modified_ms: get_i64(r, "modified_ms")?,
    })
}

impl CaseRow {
    pub fn to_dto(&self) -> api::TestCaseDto {
        api::TestCaseDto {
            id: self.id,
            project_id: self.project_id,
            name: self.name.clone(),
            full_name: self.full_name.clone(),
            allure_id: self.allure_id.clone(),
            automated: self.job_id.is_some(),
            job: self.job_id.map(|id| api::JobSummary {
                id,
                name: self.job_name.clone().unwrap_or_default(),
                kind: self.job_type.clone(),
                url: self.job_url.clone(),
            }),
            last_status: self.last_status.clone(),
            labels: self.labels.clone(),
            created_date: self.created_ms,
            last_modified_date: self.modified_ms,
        }
    }

    /// The plan entry of this case: the numeric `ALLURE_ID`, else the case id;
    /// the selector is the full name (allure-pytest's `fullName`), else the name.
    pub fn plan_entry(&self) -> (i64, String) {
        let id = self
            .allure_id
            .as_deref()
            .and_then(|a| a.parse::<i64>().ok())
            .unwrap_or(self.id);
        let selector = self.full_name.clone().unwrap_or_else(|| self.name.clone());
        (id, selector)
    }

    fn executor_case(&self, source: &str) -> api::ExecutorCase {
        api::ExecutorCase {
            id: self.id,
            name: self.name.clone(),
            full_name: self.full_name.clone(),
            allure_id: self.allure_id.clone(),
            source: source.to_string(),
        }
    }
}

/// A value bound to a dynamically built query.
enum Bind {
    Int(i64),
    Text(String),
}

fn bind_all<'q>(
    mut q: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>,
    binds: &[Bind],
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>> {
    for b in binds {
        q = match b {
            Bind::Int(v) => q.bind(*v),
            Bind::Text(s) => q.bind(s.clone()),
        };
    }
    q
}

/// A name pattern as a `LIKE` pattern (escape `\`): a glob when it contains
/// `*` or `?`, otherwise a substring; lower-cased (matched against `LOWER(…)`).
fn like_pattern(pattern: &str) -> String {
    let glob = pattern.contains(['*', '?']);
    let mut out = String::new();
    if !glob {
        out.push('%');
    }
    for ch in pattern.to_lowercase().chars() {
        match ch {
            '\\' | '%' | '_' => {
                out.push('\\');
                out.push(ch);
            }
            '*' if glob => out.push('%'),
            '?' if glob => out.push('_'),
            c => out.push(c),
        }
    }
    if !glob {
        out.push('%');
    }
    out
}

fn status_list() -> String {
    api::STATUSES.join(", ")
}

/// Checks a filter; `field` names it in messages (`filter`, `query`).
fn validate_filter(f: &api::TestCaseFilter, field: &str) -> ServerResult<()> {
    at_most(
        &format!("{field}.labels"),
        f.labels.len(),
        crate::limits::MAX_LIST,
    )?;
    at_most(
        &format!("{field}.status"),
        f.status.len(),
        api::STATUSES.len(),
    )?;
    for (i, l) in f.labels.iter().enumerate() {
        if l.name.trim().is_empty() {
            return Err(ServerError::bad(format!(
                "{field}.labels[{i}].name must not be empty (expected NAME=VALUE)"
            )));
        }
    }
    for s in &f.status {
        if !api::STATUSES.contains(&s.trim().to_ascii_lowercase().as_str()) {
            return Err(ServerError::bad(format!(
                "{field}.status: unknown status {s:?}; expected one of {}",
                status_list()
            )));
        }
    }
    Ok(())
}

/// The `WHERE` conditions of a filter over `test_cases c`, with parameters
/// numbered from `next`.
fn filter_sql(f: &api::TestCaseFilter, next: &mut usize, binds: &mut Vec<Bind>) -> Vec<String> {
    let mut conds = Vec::new();
    let mut param = |b: Bind, binds: &mut Vec<Bind>| {
        binds.push(b);
        *next += 1;
        format!("${}", *next - 1)
    };
    for l in &f.labels {
        let n = param(Bind::Text(l.name.trim().to_lowercase()), binds);
        let v = param(Bind::Text(l.value.trim().to_string()), binds);
        conds.push(format!(
            "EXISTS (SELECT 1 FROM test_case_labels l WHERE l.test_case_id = c.id \
             AND LOWER(l.name) = {n} AND l.value = {v})"
        ));
    }
    if let Some(p) = f
        .name_pattern
        .as_deref()
        .map(str::trim)
        .filter(|p| !p.is_empty())
    {
        let n = param(Bind::Text(like_pattern(p)), binds);
        conds.push(format!(
            "(LOWER(c.name) LIKE {n} ESCAPE '\\' OR LOWER(COALESCE(c.full_name, '')) LIKE {n} ESCAPE '\\')"
        ));
    }
    if !f.status.is_empty() {
        let list: Vec<String> = f
            .status
            .iter()
            .map(|s| param(Bind::Text(s.trim().to_ascii_lowercase()), binds))
            .collect();
        conds.push(format!("c.last_status IN ({})", list.join(", ")));
    }
    conds
}

/// Test cases of a project matching a filter, by id; `None` size = all.
pub async fn list_cases(
    db: &Db,
    project_id: Id,
    filter: &api::TestCaseFilter,
    page: Option<(i64, i64)>,
) -> ServerResult<(Vec<CaseRow>, i64)> {
    let mut binds = vec![Bind::Int(project_id)];
    let mut next = 2;
    let mut conds = vec!["c.project_id = $1".to_string()];
    conds.extend(filter_sql(filter, &mut next, &mut binds));
    let where_ = conds.join(" AND ");
    let total: i64 = bind_all(
        sqlx::query(&format!(
            "SELECT COUNT(*) AS n FROM test_cases c WHERE {where_}"
        )),
        &binds,
    )
    .fetch_one(&db.read)
    .await?
    .try_get("n")?;
    let mut sql = format!("{CASE_SELECT} WHERE {where_} ORDER BY c.id");
    if let Some((page, size)) = page {
        sql.push_str(&format!(" LIMIT ${} OFFSET ${}", next, next + 1));
        binds.push(Bind::Int(size));
        binds.push(Bind::Int(page * size));
    }
    let rows = bind_all(sqlx::query(&sql), &binds)
        .fetch_all(&db.read)
        .await?;
    let cases = rows.iter().map(case_from).collect::<ServerResult<_>>()?;
    Ok((cases, total))
}

pub async fn get_case(db: &Db, id: Id) -> ServerResult<Option<CaseRow>> {
    let r = sqlx::query(&format!("{CASE_SELECT} WHERE c.id = $1"))
        .bind(id)
        .fetch_optional(&db.read)
        .await?;
    r.as_ref().map(case_from).transpose()
}

/// Test cases by id, all in `project_id`; `field` names the list in errors.
async fn cases_by_ids(
    db: &Db,
    project_id: Id,
    ids: &[Id],
    field: &str,
) -> ServerResult<Vec<CaseRow>> {
    at_most(field, ids.len(), MAX_CASE_IDS)?;
    let wanted: BTreeSet<Id> = ids.iter().copied().collect();
    let mut found = BTreeMap::new();
    let all: Vec<Id> = wanted.iter().copied().collect();
    for chunk in all.chunks(500) {
        let params: Vec<String> = (0..chunk.len()).map(|i| format!("${}", i + 2)).collect();
        let binds: Vec<Bind> = std::iter::once(Bind::Int(project_id))
            .chain(chunk.iter().map(|i| Bind::Int(*i)))
            .collect();
        let sql = format!(
            "{CASE_SELECT} WHERE c.project_id = $1 AND c.id IN ({})",
            params.join(", ")
        );
        for r in bind_all(sqlx::query(&sql), &binds)
            .fetch_all(&db.read)
            .await?
        {
            let c = case_from(&r)?;
            found.insert(c.id, c);
        }
    }
    if let Some(missing) = wanted.iter().find(|i| !found.contains_key(i)) {
        return Err(ServerError::bad(format!(
            "{field}: test case {missing} not found in project {project_id}"
        )));
    }
    Ok(found.into_values().collect())
}

// ================================================================ jobs

/// The stored configuration of a job.
#[derive(Clone, Default)]
struct JobConfig {
    can_run: bool,
    integration: Option<api::IntegrationSettings>,
    credential: Option<String>,
    parameters: Vec<api::ParameterDto>,
}

impl std::fmt::Debug for JobConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JobConfig")
            .field("can_run", &self.can_run)
            .field("integration", &self.integration)
            .field(
                "credential",
                &self.credential.as_ref().map(|_| "<redacted>"),
            )
            .field("parameters", &self.parameters)
            .finish()
    }
}

impl JobConfig {
    fn integration_dto(&self) -> Option<api::IntegrationDto> {
        self.integration.as_ref().map(|s| api::IntegrationDto {
            kind: s.kind.clone(),
            url: s.url.clone(),
            repository: s.repository.clone(),
            workflow: s.workflow.clone(),
            git_ref: s.git_ref.clone(),
            project: s.project.clone(),
            job_path: s.job_path.clone(),
            username: s.username.clone(),
            command: s.command.clone(),
            has_credential: self.credential.is_some(),
        })
    }
}

pub(crate) async fn get_job(db: &Db, id: Id) -> ServerResult<Option<store::JobRow>> {
    let r = sqlx::query(
        "SELECT id, project_id, uid, name, url, ci_type, parameters FROM jobs WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(&db.read)
    .await?;
    Ok(match r {
        Some(r) => Some(store::JobRow {
            id: get_i64(&r, "id")?,
            project_id: get_i64(&r, "project_id")?,
            uid: get_str(&r, "uid")?,
            name: get_str(&r, "name")?,
            url: opt_str(&r, "url"),
            ci_type: opt_str(&r, "ci_type"),
            parameters: serde_json::from_str(&get_str(&r, "parameters")?).unwrap_or_default(),
        }),
        None => None,
    })
}

async fn job_config(db: &Db, job_id: Id) -> ServerResult<JobConfig> {
    let r = sqlx::query(
        "SELECT can_run, integration, settings, credential, parameters FROM job_configs WHERE job_id = $1",
    )
    .bind(job_id)
    .fetch_optional(&db.read)
    .await?;
    let Some(r) = r else {
        return Ok(JobConfig::default());
    };
    let integration = match opt_str(&r, "integration") {
        Some(_) => serde_json::from_str(&get_str(&r, "settings")?).ok(),
        None => None,
    };
    Ok(JobConfig {
        can_run: get_i64(&r, "can_run")? != 0,
        integration,
        credential: opt_str(&r, "credential").map(|c| db.open(&c)).transpose()?,
        parameters: serde_json::from_str(&get_str(&r, "parameters")?).unwrap_or_default(),
    })
}

// Prerequisite messages (sent with the code `prerequisite_missing`).

fn problem_never(who: &str) -> String {
    format!(
        "{who} has never uploaded results from its pipeline: run the pipeline once \
         with `onelaunch upload` so the server knows the job works"
    )
}

fn problem_open(who: &str, launch_id: Id) -> String {
    format!(
        "{who} has uploaded results only into launches that are still open: finish launch \
         {launch_id} (`onelaunch launch close {launch_id}`) so the job counts as proven"
    )
}

fn problem_no_integration(job_id: Id, who: &str) -> String {
    format!(
        "{who} has no build-server integration: configure one with `onelaunch job configure \
         {job_id} --integration github|gitlab|jenkins|command …` (PATCH /api/job/{job_id})"
    )
}

fn problem_cannot_run(job_id: Id, who: &str) -> String {
    format!(
        "{who} is not allowed to run tests: enable it with \
         `onelaunch job configure {job_id} --can-run-tests true`"
    )
}

/// Why the server cannot trigger a job now; one distinct message per missing
/// prerequisite, each naming the job and how to fix it.
async fn job_problems(db: &Db, job: &store::JobRow, cfg: &JobConfig) -> ServerResult<Vec<String>> {
    let who = format!("job {} ({})", job.id, job.name);
    let mut out = Vec::new();
    let confirmed: i64 = sqlx::query(
        "SELECT COUNT(*) AS n FROM job_runs r JOIN launches l ON l.id = r.launch_id \
         WHERE r.job_id = $1 AND l.closed = 1 \
         AND EXISTS (SELECT 1 FROM test_results t WHERE t.job_run_id = r.id)",
    )
    .bind(job.id)
    .fetch_one(&db.read)
    .await?
    .try_get("n")?;
    if confirmed == 0 {
        let open = sqlx::query(
            "SELECT r.launch_id AS launch_id FROM job_runs r WHERE r.job_id = $1 \
             AND EXISTS (SELECT 1 FROM test_results t WHERE t.job_run_id = r.id) \
             ORDER BY r.id DESC LIMIT 1",
        )
        .bind(job.id)
        .fetch_optional(&db.read)
        .await?;
        out.push(match open {
            Some(r) => problem_open(&who, get_i64(&r, "launch_id")?),
            None => problem_never(&who),
        });
    }
    if cfg.integration.is_none() {
        out.push(problem_no_integration(job.id, &who));
    }
    if !cfg.can_run {
        out.push(problem_cannot_run(job.id, &who));
    }
    Ok(out)
}

pub(crate) async fn job_config_dto(
    db: &Db,
    job: &store::JobRow,
) -> ServerResult<api::JobConfigDto> {
    let cfg = job_config(db, job.id).await?;
    let problems = job_problems(db, job, &cfg).await?;
    Ok(api::JobConfigDto {
        id: job.id,
        external_id: job.uid.clone(),
        name: job.name.clone(),
        kind: job.ci_type.clone(),
        url: job.url.clone(),
        project_id: job.project_id,
        can_run_tests: cfg.can_run,
        integration: cfg.integration_dto(),
        parameters: cfg.parameters.clone(),
        problems,
    })
}

/// A variable name usable as a workflow input, pipeline variable, build
/// parameter and environment variable.
fn valid_var_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && name.len() <= 255
}

/// Parameters and run variables are shown by the API: secrets belong in the CI
/// system's own secret store (or the integration's write-only credential).
fn secret_refused(field: &str, name: &str) -> ServerError {
    ServerError::bad(format!(
        "{field} {:?} looks like a secret; values here are stored and shown, so keep secrets \
         in the CI system's secret store",
        name.trim()
    ))
}

fn validate_parameters(
    params: &[api::ParameterDto],
    field: &str,
) -> ServerResult<Vec<api::ParameterDto>> {
    at_most(field, params.len(), crate::limits::MAX_LIST)?;
    let mut out: Vec<api::ParameterDto> = Vec::new();
    for (i, p) in params.iter().enumerate() {
        let name = p.name.trim();
        if api::is_secret_name(name) {
            return Err(secret_refused(&format!("{field}[{i}].name"), name));
        }
        if !valid_var_name(name) {
            return Err(ServerError::bad(format!(
                "{field}[{i}].name {name:?} is not a valid variable name (letters, digits and _, not starting with a digit)"
            )));
        }
        let value = p
            .value
            .clone()
            .or_else(|| p.default_value.clone())
            .unwrap_or_default();
        out.retain(|o| o.name != name);
        out.push(api::ParameterDto {
            name: name.to_string(),
            value: Some(clip(&value, 4096)),
            default_value: None,
        });
    }
    Ok(out)
}

/// A trimmed, non-empty setting, cut to 16 KiB.
fn opt_trim(s: &Option<String>) -> Option<String> {
    non_empty(s).map(|v| clip(v, 16 * 1024))
}

fn require(s: &Option<String>, field: &str, kind: &str) -> ServerResult<String> {
    opt_trim(s).ok_or_else(|| {
        ServerError::bad(format!(
            "field `integration.{field}` is required for a {kind} integration"
        ))
    })
}

fn check_url(url: &Option<String>, required: bool, kind: &str) -> ServerResult<Option<String>> {
    match opt_trim(url) {
        None if required => Err(ServerError::bad(format!(
            "field `integration.url` is required for a {kind} integration"
        ))),
        None => Ok(None),
        Some(u) => match url::Url::parse(&u) {
            Ok(p) if matches!(p.scheme(), "http" | "https") && !p.cannot_be_a_base() => {
                Ok(Some(u.trim_end_matches('/').to_string()))
            }
            _ => Err(ServerError::bad(format!(
                "field `integration.url`: expected an http(s) base URL, got {u:?}"
            ))),
        },
    }
}

/// Validates integration settings; returns them normalised (only the fields of
/// the type) and the credential to store.
fn validate_integration(
    auth: &Auth,
    s: &api::IntegrationSettings,
    current: &JobConfig,
) -> ServerResult<(api::IntegrationSettings, Option<String>)> {
    let kind = s.kind.trim().to_ascii_lowercase();
    let given = opt_trim(&s.credential);
    let kept = match &current.integration {
        Some(c) if c.kind == kind => current.credential.clone(),
        _ => None,
    };
    let credential = given.or(kept);
    let need_credential = |what: &str| -> ServerResult<String> {
        credential.clone().ok_or_else(|| {
            ServerError::bad(format!(
                "field `integration.credential` ({what}) is required for a {kind} integration"
            ))
        })
    };
    let mut out = api::IntegrationSettings {
        kind: kind.clone(),
        ..Default::default()
    };
    match kind.as_str() {
        "github" => {
            let repo = require(&s.repository, "repository", &kind)?;
            let ok = repo.split('/').count() == 2
                && repo.split('/').all(|p| {
                    !p.is_empty()
                        && p.chars()
                            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
                });
            if !ok {
                return Err(ServerError::bad(format!(
                    "field `integration.repository`: expected owner/repo, got {repo:?}"
                )));
            }
            out.repository = Some(repo);
            out.workflow = Some(require(&s.workflow, "workflow", &kind)?);
            out.git_ref = Some(require(&s.git_ref, "ref", &kind)?);
            out.url = check_url(&s.url, false, &kind)?;
            let c = need_credential("a GitHub token allowed to dispatch workflows")?;
            return Ok((out, Some(c)));
        }
        "gitlab" => {
            out.project = Some(require(&s.project, "project", &kind)?);
            out.git_ref = Some(require(&s.git_ref, "ref", &kind)?);
            out.url = check_url(&s.url, false, &kind)?;
            let c = need_credential("a pipeline trigger token")?;
            return Ok((out, Some(c)));
        }
        "jenkins" => {
            out.url = check_url(&s.url, true, &kind)?;
            let path = require(&s.job_path, "jobPath", &kind)?;
            if path.split('/').all(|p| p.trim().is_empty()) {
                return Err(ServerError::bad(
                    "field `integration.jobPath`: expected folder/job names separated by /",
                ));
            }
            out.job_path = Some(path.trim_matches('/').to_string());
            out.username = opt_trim(&s.username);
            if out.username.is_some() {
                let c = need_credential("the Jenkins user's API token")?;
                return Ok((out, Some(c)));
            }
            return Ok((out, credential));
        }
        "command" => {
            auth.require_admin().map_err(|_| {
                ServerError::Forbidden(
                    "a `command` integration runs a command on the server host: it needs an admin token"
                        .into(),
                )
            })?;
            out.command = Some(require(&s.command, "command", &kind)?);
        }
        _ => {
            return Err(ServerError::bad(format!(
                "field `integration.type`: expected github, gitlab, jenkins or command, got {:?}",
                s.kind
            )))
        }
    }
    Ok((out, credential))
}

/// Applies a `PATCH` (absent = unchanged) or `PUT` (absent = unset).
pub(crate) async fn configure_job(
    db: &Db,
    auth: &Auth,
    job: &store::JobRow,
    update: &api::JobConfigUpdate,
    replace: bool,
) -> ServerResult<()> {
    let current = job_config(db, job.id).await?;
    let mut next = if replace {
        JobConfig::default()
    } else {
        current.clone()
    };
    if let Some(c) = update.can_run_tests {
        next.can_run = c;
    }
    match &update.integration {
        None => {}
        Some(None) => {
            next.integration = None;
            next.credential = None;
        }
        Some(Some(s)) => {
            let (settings, credential) = validate_integration(auth, s, &current)?;
            next.integration = Some(settings);
            next.credential = credential;
        }
    }
    if let Some(p) = &update.parameters {
        next.parameters = validate_parameters(p, "parameters")?;
    }
    let settings = next
        .integration
        .as_ref()
        .map(|s| serde_json::to_string(s).unwrap_or_else(|_| "{}".into()))
        .unwrap_or_else(|| "{}".into());
    sqlx::query(
        "INSERT INTO job_configs (job_id, can_run, integration, settings, credential, parameters, modified_ms) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (job_id) DO UPDATE SET \
         can_run = excluded.can_run, integration = excluded.integration, settings = excluded.settings, \
         credential = excluded.credential, parameters = excluded.parameters, modified_ms = excluded.modified_ms",
    )
    .bind(job.id)
    .bind(next.can_run as i64)
    .bind(next.integration.as_ref().map(|s| s.kind.clone()))
    .bind(settings)
    .bind(next.credential.as_deref().map(|c| db.seal(c)).transpose()?)
    .bind(serde_json::to_string(&next.parameters).unwrap_or_else(|_| "[]".into()))
    .bind(now_ms())
    .execute(&db.write)
    .await?;
    tracing::info!(
        job = job.id,
        integration = next
            .integration
            .as_ref()
            .map(|s| s.kind.as_str())
            .unwrap_or("none"),
        can_run = next.can_run,
        "job configured"
    );
    Ok(())
}

// ================================================================ test plans

#[derive(Debug, Clone)]
pub(crate) struct PlanRow {
    pub(crate) id: Id,
    pub(crate) project_id: Id,
    pub(crate) name: String,
    pub(crate) filter: Option<api::TestCaseFilter>,
    pub(crate) created_ms: i64,
}

fn plan_from(r: &AnyRow) -> ServerResult<PlanRow> {
    Ok(PlanRow {
        id: get_i64(r, "id")?,
        project_id: get_i64(r, "project_id")?,
        name: get_str(r, "name")?,
        filter: opt_str(r, "filter").and_then(|f| serde_json::from_str(&f).ok()),
        created_ms: get_i64(r, "created_ms")?,
    })
}

pub(crate) async fn get_plan(db: &Db, id: Id) -> ServerResult<Option<PlanRow>> {
    let r = sqlx::query(
        "SELECT id, project_id, name, filter, created_ms FROM test_plans WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(&db.read)
    .await?;
    r.as_ref().map(plan_from).transpose()
}

async fn plan_case_ids(db: &Db, plan_id: Id) -> ServerResult<Vec<Id>> {
    let rows = sqlx::query(
        "SELECT test_case_id FROM test_plan_cases WHERE plan_id = $1 ORDER BY test_case_id",
    )
    .bind(plan_id)
    .fetch_all(&db.read)
    .await?;
    rows.iter().map(|r| get_i64(r, "test_case_id")).collect()
}

/// The cases a plan selects now: its explicit cases and its filter's matches.
pub(crate) async fn plan_members(db: &Db, plan: &PlanRow) -> ServerResult<Vec<CaseRow>> {
    let mut out: BTreeMap<Id, CaseRow> = BTreeMap::new();
    let rows = sqlx::query(&format!(
        "{CASE_SELECT} WHERE c.id IN (SELECT p.test_case_id FROM test_plan_cases p WHERE p.plan_id = $1)"
    ))
    .bind(plan.id)
    .fetch_all(&db.read)
    .await?;
    for r in &rows {
        let c = case_from(r)?;
        out.insert(c.id, c);
    }
    if let Some(f) = plan.filter.as_ref().filter(|f| !f.is_empty()) {
        for c in list_cases(db, plan.project_id, f, None).await?.0 {
            out.insert(c.id, c);
        }
    }
    Ok(out.into_values().collect())
}

pub(crate) async fn plan_dto(
    db: &Db,
    plan: &PlanRow,
    with_cases: bool,
) -> ServerResult<api::TestPlanDto> {
    let cases = if with_cases {
        plan_members(db, plan)
            .await?
            .iter()
            .map(CaseRow::to_dto)
            .collect()
    } else {
        Vec::new()
    };
    Ok(api::TestPlanDto {
        id: plan.id,
        project_id: plan.project_id,
        name: plan.name.clone(),
        test_case_ids: plan_case_ids(db, plan.id).await?,
        filter: plan.filter.clone(),
        test_cases: cases,
        created_date: plan.created_ms,
    })
}

pub(crate) async fn create_plan(db: &Db, req: &api::TestPlanCreate) -> ServerResult<PlanRow> {
    let name = clip(req.name.trim(), MAX_NAME);
    if name.is_empty() {
        return Err(ServerError::bad("field `name` must not be empty"));
    }
    let filter = req.filter.clone().filter(|f| !f.is_empty());
    if let Some(f) = &filter {
        validate_filter(f, "filter")?;
    }
    if req.test_case_ids.is_empty() && filter.is_none() {
        return Err(ServerError::bad(
            "a test plan needs `testCaseIds` and/or a `filter` (labels, namePattern, status)",
        ));
    }
    cases_by_ids(db, req.project_id, &req.test_case_ids, "testCaseIds").await?;
    let now = now_ms();
    let mut tx = db.write.begin().await?;
    let id: i64 = sqlx::query(
        "INSERT INTO test_plans (project_id, name, filter, created_ms, modified_ms) \
         VALUES ($1, $2, $3, $4, $4) RETURNING id",
    )
    .bind(req.project_id)
    .bind(&name)
    .bind(
        filter
            .as_ref()
            .map(|f| serde_json::to_string(f).unwrap_or_default()),
    )
    .bind(now)
    .fetch_one(&mut *tx)
    .await?
    .try_get("id")?;
    for case in &req.test_case_ids {
        sqlx::query(
            "INSERT INTO test_plan_cases (plan_id, test_case_id) VALUES ($1, $2) \
             ON CONFLICT (plan_id, test_case_id) DO NOTHING",
        )
        .bind(id)
        .bind(*case)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    tracing::info!(plan = id, project = req.project_id, "test plan created");
    Ok(PlanRow {
        id,
        project_id: req.project_id,
        name,
        filter,
        created_ms: now,
    })
}

/// Who runs a case in a run: a job, or nobody (manual).
struct Assignment {
    case: CaseRow,
    job_id: Option<Id>,
    source: &'static str,
}

async fn assignments(
    db: &Db,
    plan_id: Option<Id>,
    cases: Vec<CaseRow>,
) -> ServerResult<Vec<Assignment>> {
    let mut overrides: HashMap<Id, Option<Id>> = HashMap::new();
    if let Some(p) = plan_id {
        for r in
            sqlx::query("SELECT test_case_id, job_id FROM test_plan_executors WHERE plan_id = $1")
                .bind(p)
                .fetch_all(&db.read)
                .await?
        {
            overrides.insert(get_i64(&r, "test_case_id")?, opt_i64(&r, "job_id"));
        }
    }
    Ok(cases
        .into_iter()
        .map(|case| match overrides.get(&case.id) {
            Some(job) => Assignment {
                job_id: *job,
                case,
                source: "override",
            },
            None => Assignment {
                job_id: case.job_id,
                case,
                source: "default",
            },
        })
        .collect())
}

fn job_summary(job: &store::JobRow) -> api::JobSummary {
    api::JobSummary {
        id: job.id,
        name: job.name.clone(),
        kind: job.ci_type.clone(),
        url: job.url.clone(),
    }
}

pub(crate) async fn executors_dto(db: &Db, plan: &PlanRow) -> ServerResult<api::ExecutorsDto> {
    let members = plan_members(db, plan).await?;
    let mut groups: BTreeMap<Id, Vec<api::ExecutorCase>> = BTreeMap::new();
    let mut manual = Vec::new();
    for a in assignments(db, Some(plan.id), members).await? {
        match a.job_id {
            Some(j) => groups
                .entry(j)
                .or_default()
                .push(a.case.executor_case(a.source)),
            None => manual.push(a.case.executor_case(a.source)),
        }
    }
    let mut jobs = Vec::new();
    for (job_id, test_cases) in groups {
        let job = get_job(db, job_id)
            .await?
            .map(|j| job_summary(&j))
            .unwrap_or(api::JobSummary {
                id: job_id,
                name: String::new(),
                kind: None,
                url: None,
            });
        jobs.push(api::ExecutorGroup { job, test_cases });
    }
    Ok(api::ExecutorsDto {
        plan_id: plan.id,
        jobs,
        manual,
    })
}

pub(crate) async fn override_executors(
    db: &Db,
    plan: &PlanRow,
    req: &api::ExecutorOverride,
) -> ServerResult<()> {
    let modes = [req.job_id.is_some(), req.manual, req.reset];
    if modes.iter().filter(|m| **m).count() != 1 {
        return Err(ServerError::bad(
            "set exactly one of `jobId` (run by that job), `manual: true` or `reset: true` (back to the default executor)",
        ));
    }
    if let Some(j) = req.job_id {
        match get_job(db, j).await? {
            Some(job) if job.project_id == plan.project_id => {}
            _ => {
                return Err(ServerError::bad(format!(
                    "field `jobId`: job {j} not found in project {}",
                    plan.project_id
                )))
            }
        }
    }
    let members: BTreeSet<Id> = plan_members(db, plan).await?.iter().map(|c| c.id).collect();
    let mut targets: BTreeSet<Id> = BTreeSet::new();
    at_most("testCaseIds", req.test_case_ids.len(), MAX_CASE_IDS)?;
    for id in &req.test_case_ids {
        if !members.contains(id) {
            return Err(ServerError::bad(format!(
                "testCaseIds: test case {id} is not in test plan {}",
                plan.id
            )));
        }
        targets.insert(*id);
    }
    if let Some(f) = req.filter.as_ref().filter(|f| !f.is_empty()) {
        validate_filter(f, "filter")?;
        for c in list_cases(db, plan.project_id, f, None).await?.0 {
            if members.contains(&c.id) {
                targets.insert(c.id);
            }
        }
    }
    if targets.is_empty() {
        return Err(ServerError::bad(
            "no test cases of the plan selected: give `testCaseIds` and/or a `filter` that matches some of them",
        ));
    }
    let now = now_ms();
    let mut tx = db.write.begin().await?;
    for case in &targets {
        if req.reset {
            sqlx::query("DELETE FROM test_plan_executors WHERE plan_id = $1 AND test_case_id = $2")
                .bind(plan.id)
                .bind(*case)
                .execute(&mut *tx)
                .await?;
        } else {
            sqlx::query(
                "INSERT INTO test_plan_executors (plan_id, test_case_id, job_id, modified_ms) \
                 VALUES ($1, $2, $3, $4) ON CONFLICT (plan_id, test_case_id) DO UPDATE \
                 SET job_id = excluded.job_id, modified_ms = excluded.modified_ms",
            )
            .bind(plan.id)
            .bind(*case)
            .bind(req.job_id)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
    }
    tx.commit().await?;
    tracing::info!(
        plan = plan.id,
        cases = targets.len(),
        "executors overridden"
    );
    Ok(())
}

// ================================================================ runs

/// A job run to trigger once the run is stored.
struct Trigger {
    job_run_id: Id,
    launch_id: Id,
    project_id: Id,
    settings: api::IntegrationSettings,
    credential: Option<String>,
    variables: Vec<(String, String)>,
}

fn validate_form(form: &api::LaunchForm) -> ServerResult<()> {
    if form.launch_name.trim().is_empty() {
        return Err(ServerError::bad("field `launchName` must not be empty"));
    }
    at_most("tags", form.tags.len(), crate::limits::MAX_LIST)?;
    at_most("issues", form.issues.len(), crate::limits::MAX_LIST)?;
    at_most(
        "environment",
        form.environment.len(),
        crate::limits::MAX_LIST,
    )?;
    for (i, kv) in form.environment.iter().enumerate() {
        if !valid_var_name(kv.key.trim()) {
            return Err(ServerError::bad(format!(
                "environment[{i}].key {:?} is not a valid variable name (letters, digits and _, not starting with a digit)",
                kv.key
            )));
        }
        if api::is_secret_name(kv.key.trim()) {
            return Err(secret_refused(&format!("environment[{i}].key"), &kv.key));
        }
    }
    for (i, issue) in form.issues.iter().enumerate() {
        if issue.trim().is_empty() {
            return Err(ServerError::bad(format!("issues[{i}] must not be empty")));
        }
    }
    Ok(())
}

fn issue_value(issue: &str) -> Value {
    let issue = clip(issue.trim(), 2048);
    if issue.starts_with("http://") || issue.starts_with("https://") {
        let name = issue
            .trim_end_matches('/')
            .rsplit('/')
            .next()
            .unwrap_or(&issue)
            .to_string();
        json!({ "name": name, "url": issue })
    } else {
        json!({ "name": issue })
    }
}

/// Runs cases: checks prerequisites, stores the launch, job runs and their
/// plans in one transaction, then triggers the jobs.
pub(crate) async fn run_cases(
    state: &AppState,
    project_id: Id,
    plan: Option<&PlanRow>,
    cases: Vec<CaseRow>,
    form: &api::LaunchForm,
) -> ServerResult<api::ServerRunDto> {
    validate_form(form)?;
    let db = &state.db;
    let request_id = non_empty(&form.request_id).map(|r| clip(r, 255));
    if let Some(rid) = &request_id {
        if let Some(launch) = run_by_request(db, project_id, rid).await? {
            return run_dto(state, launch).await;
        }
    }
    if cases.is_empty() {
        return Err(ServerError::bad(match plan {
            Some(p) => format!("test plan {} selects no test cases", p.id),
            None => "field `testCaseIds` must not be empty".to_string(),
        }));
    }
    let mut by_job: BTreeMap<Id, Vec<CaseRow>> = BTreeMap::new();
    let mut manual: Vec<Id> = Vec::new();
    for a in assignments(db, plan.map(|p| p.id), cases).await? {
        match a.job_id {
            Some(j) => by_job.entry(j).or_default().push(a.case),
            None => manual.push(a.case.id),
        }
    }
    // Prerequisites of every executor job; nothing is created when one fails.
    let mut jobs = Vec::new();
    let mut problems = Vec::new();
    for job_id in by_job.keys() {
        let job = get_job(db, *job_id)
            .await?
            .ok_or_else(|| ServerError::not_found("job", job_id))?;
        let cfg = job_config(db, job.id).await?;
        problems.extend(job_problems(db, &job, &cfg).await?);
        jobs.push((job, cfg));
    }
    if !problems.is_empty() {
        return Err(ServerError::PrerequisiteMissing(problems));
    }
    let environment: Vec<api::ParameterDto> = form
        .environment
        .iter()
        .map(|kv| api::ParameterDto {
            name: kv.key.trim().to_string(),
            value: Some(clip(&kv.value, 4096)),
            default_value: None,
        })
        .collect();
    let tags: Vec<String> = form
        .tags
        .iter()
        .map(|t| clip(t.trim(), 255))
        .filter(|t| !t.is_empty())
        .collect();
    let issues: Vec<Value> = form.issues.iter().map(|i| issue_value(i)).collect();
    let name = clip(form.launch_name.trim(), MAX_NAME);
    let now = now_ms();

    let mut tx = db.write.begin().await?;
    let launch_id: i64 = sqlx::query(
        "INSERT INTO launches (project_id, name, closed, external, autoclose, tags, links, issues, created_ms, modified_ms) \
         VALUES ($1, $2, 0, 0, 0, $3, '[]', $4, $5, $5) RETURNING id",
    )
    .bind(project_id)
    .bind(&name)
    .bind(serde_json::to_string(&tags).unwrap_or_else(|_| "[]".into()))
    .bind(serde_json::to_string(&issues).unwrap_or_else(|_| "[]".into()))
    .bind(now)
    .fetch_one(&mut *tx)
    .await?
    .try_get("id")?;
    let stored = sqlx::query(
        "INSERT INTO server_runs (launch_id, project_id, plan_id, request_id, environment, manual_cases, created_ms) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (project_id, request_id) DO NOTHING RETURNING launch_id",
    )
    .bind(launch_id)
    .bind(project_id)
    .bind(plan.map(|p| p.id))
    .bind(&request_id)
    .bind(serde_json::to_string(&form.environment).unwrap_or_else(|_| "[]".into()))
    .bind(serde_json::to_string(&manual).unwrap_or_else(|_| "[]".into()))
    .bind(now)
    .fetch_optional(&mut *tx)
    .await?;
    if stored.is_none() {
        // A concurrent request with the same request id won: answer its launch.
        tx.rollback().await?;
        let rid = request_id.unwrap_or_default();
        let launch = run_by_request(db, project_id, &rid).await?.ok_or_else(|| {
            ServerError::Conflict("the same run request is being processed; retry".into())
        })?;
        return run_dto(state, launch).await;
    }
    let mut triggers = Vec::new();
    for (job, cfg) in &jobs {
        let mut params: Vec<api::ParameterDto> = cfg.parameters.clone();
        for e in &environment {
            params.retain(|p| p.name != e.name);
            params.push(e.clone());
        }
        let uid = format!("plan-{launch_id}");
        let run_id: i64 = sqlx::query(
            "INSERT INTO job_runs (job_id, launch_id, project_id, uid, name, url, stage, status, parameters, created_ms, modified_ms) \
             VALUES ($1, $2, $3, $4, $5, NULL, $6, 'unknown', $7, $8, $8) RETURNING id",
        )
        .bind(job.id)
        .bind(launch_id)
        .bind(project_id)
        .bind(&uid)
        .bind(format!("{name} ({uid})"))
        .bind(api::stage::SCHEDULED)
        .bind(serde_json::to_string(&params).unwrap_or_else(|_| "[]".into()))
        .bind(now)
        .fetch_one(&mut *tx)
        .await?
        .try_get("id")?;
        for case in by_job.get(&job.id).into_iter().flatten() {
            let (ref_id, selector) = case.plan_entry();
            sqlx::query(
                "INSERT INTO job_run_plan_items (job_run_id, test_case_id, ref_id, selector) \
                 VALUES ($1, $2, $3, $4) ON CONFLICT (job_run_id, test_case_id) DO NOTHING",
            )
            .bind(run_id)
            .bind(case.id)
            .bind(ref_id)
            .bind(&selector)
            .execute(&mut *tx)
            .await?;
        }
        let mut variables: Vec<(String, String)> = vec![
            ("ALLURE_JOB_RUN_ID".into(), run_id.to_string()),
            ("ALLURE_LAUNCH_ID".into(), launch_id.to_string()),
            ("ALLURE_ENDPOINT".into(), state.public_url.clone()),
        ];
        for p in params {
            if !variables.iter().any(|(k, _)| *k == p.name) {
                variables.push((p.name, p.value.unwrap_or_default()));
            }
        }
        if let Some(settings) = cfg.integration.clone() {
            triggers.push(Trigger {
                job_run_id: run_id,
                launch_id,
                project_id,
                settings,
                credential: cfg.credential.clone(),
                variables,
            });
        }
    }
    tx.commit().await?;
    tracing::info!(
        launch = launch_id,
        plan = plan.map(|p| p.id),
        job_runs = triggers.len(),
        manual = manual.len(),
        "server-led launch created"
    );
    let outcomes = futures::future::join_all(triggers.into_iter().map(|t| async move {
        let id = t.job_run_id;
        let kind = t.settings.kind.clone();
        (id, kind, trigger(state, t).await)
    }))
    .await;
    for (id, kind, outcome) in outcomes {
        match outcome {
            Ok(()) => tracing::info!(job_run = id, integration = %kind, "job triggered"),
            Err(message) => {
                tracing::warn!(job_run = id, integration = %kind, error = %message, "trigger failed");
                mark_run_failure(db, id, &message, false).await?;
            }
        }
    }
    run_dto(state, launch_id).await
}

async fn run_by_request(db: &Db, project_id: Id, request_id: &str) -> ServerResult<Option<Id>> {
    sqlx::query("SELECT launch_id FROM server_runs WHERE project_id = $1 AND request_id = $2")
        .bind(project_id)
        .bind(request_id)
        .fetch_optional(&db.write)
        .await?
        .map(|r| get_i64(&r, "launch_id"))
        .transpose()
}

/// Records a failed trigger (or a failed `command`) on a job run. A job run
/// that already finished keeps its stage and only gets the message.
async fn mark_run_failure(
    db: &Db,
    job_run_id: Id,
    message: &str,
    keep_finished: bool,
) -> ServerResult<()> {
    let message = clip(message, 4096);
    if keep_finished {
        sqlx::query(
            "UPDATE job_runs SET error_message = $1, modified_ms = $2, \
             stage = CASE WHEN stage = $3 THEN stage ELSE $4 END WHERE id = $5",
        )
        .bind(message)
        .bind(now_ms())
        .bind(api::stage::FINISHED)
        .bind(api::stage::RUN_FAILURE)
        .bind(job_run_id)
        .execute(&db.write)
        .await?;
    } else {
        sqlx::query(
            "UPDATE job_runs SET stage = $1, error_message = $2, modified_ms = $3 WHERE id = $4",
        )
        .bind(api::stage::RUN_FAILURE)
        .bind(message)
        .bind(now_ms())
        .bind(job_run_id)
        .execute(&db.write)
        .await?;
    }
    Ok(())
}

async fn run_dto(state: &AppState, launch_id: Id) -> ServerResult<api::ServerRunDto> {
    let db = &state.db;
    let launch = store::get_launch(db, launch_id)
        .await?
        .ok_or_else(|| ServerError::not_found("launch", launch_id))?;
    let run = sqlx::query("SELECT plan_id, manual_cases FROM server_runs WHERE launch_id = $1")
        .bind(launch_id)
        .fetch_optional(&db.read)
        .await?;
    let (plan_id, manual_ids): (Option<Id>, Vec<Id>) = match &run {
        Some(r) => (
            opt_i64(r, "plan_id"),
            serde_json::from_str(&get_str(r, "manual_cases")?).unwrap_or_default(),
        ),
        None => (None, Vec::new()),
    };
    let mut items: BTreeMap<Id, Vec<Id>> = BTreeMap::new();
    for r in sqlx::query(
        "SELECT i.job_run_id AS job_run_id, i.test_case_id AS test_case_id FROM job_run_plan_items i \
         JOIN job_runs r ON r.id = i.job_run_id WHERE r.launch_id = $1 ORDER BY i.id",
    )
    .bind(launch_id)
    .fetch_all(&db.read)
    .await?
    {
        items
            .entry(get_i64(&r, "job_run_id")?)
            .or_default()
            .push(get_i64(&r, "test_case_id")?);
    }
    let job_runs = store::launch_job_runs(db, launch_id)
        .await?
        .iter()
        .map(|r| api::PlannedJobRun {
            job_run: r.to_dto(&state.public_url),
            test_case_ids: items.remove(&r.id).unwrap_or_default(),
        })
        .collect();
    let mut manual = Vec::new();
    for id in manual_ids {
        if let Some(c) = get_case(db, id).await? {
            manual.push(c.to_dto());
        }
    }
    Ok(api::ServerRunDto {
        launch: launch.to_dto(&state.public_url),
        plan_id,
        job_runs,
        manual,
    })
}

// ================================================================ triggers

fn http() -> Result<&'static reqwest::Client, String> {
    static CLIENT: OnceLock<reqwest::Client> = OnceLock::new();
    if let Some(c) = CLIENT.get() {
        return Ok(c);
    }
    let c = reqwest::Client::builder()
        .timeout(TRIGGER_TIMEOUT)
        .user_agent(format!("onelaunch/{}", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| format!("cannot set up the HTTP client: {e}"))?;
    Ok(CLIENT.get_or_init(|| c))
}

/// `base` + path segments (each percent-encoded).
fn endpoint(base: &str, segments: &[&str]) -> Result<url::Url, String> {
    let mut u = url::Url::parse(base).map_err(|e| format!("invalid URL {base:?}: {e}"))?;
    u.path_segments_mut()
        .map_err(|_| format!("invalid base URL {base:?}"))?
        .pop_if_empty()
        .extend(segments);
    Ok(u)
}

fn short_body(body: &str) -> String {
    let flat: String = body.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.is_empty() {
        return "(empty body)".into();
    }
    match flat.char_indices().nth(ERROR_BODY_CHARS) {
        Some((i, _)) => format!("{}…", &flat[..i]),
        None => flat,
    }
}

fn transport_error(provider: &str, e: &reqwest::Error) -> String {
    let mut root: &dyn std::error::Error = e;
    while let Some(next) = root.source() {
        root = next;
    }
    if e.is_timeout() {
        format!(
            "{provider} did not answer within {}s",
            TRIGGER_TIMEOUT.as_secs()
        )
    } else {
        format!("cannot reach {provider}: {root}")
    }
}

/// Sends a request; any non-2xx answer becomes `"<provider> answered HTTP <status>: <body>"`.
async fn send(provider: &str, req: reqwest::RequestBuilder) -> Result<reqwest::Response, String> {
    let resp = req
        .send()
        .await
        .map_err(|e| transport_error(provider, &e))?;
    let status = resp.status();
    if status.is_success() {
        return Ok(resp);
    }
    let body = resp.text().await.unwrap_or_default();
    Err(format!(
        "{provider} answered HTTP {}: {}",
        status.as_u16(),
        short_body(&body)
    ))
}

async fn trigger(state: &AppState, t: Trigger) -> Result<(), String> {
    let secret = t.credential.clone().filter(|c| c.len() >= 4);
    let outcome = match t.settings.kind.as_str() {
        "github" => trigger_github(&t).await,
        "gitlab" => trigger_gitlab(&t).await,
        "jenkins" => trigger_jenkins(&t).await,
        "command" => spawn_command(state.db.clone(), t),
        other => Err(format!("unknown integration type {other:?}")),
    };
    // A provider may echo what it was sent: never let the credential through.
    outcome.map_err(|m| match &secret {
        Some(s) => m.replace(s.as_str(), "<redacted>"),
        None => m,
    })
}

/// GitHub: `workflow_dispatch` with the variables as inputs.
async fn trigger_github(t: &Trigger) -> Result<(), String> {
    let s = &t.settings;
    let base = s.url.as_deref().unwrap_or("https://api.github.com");
    let repo = s.repository.clone().unwrap_or_default();
    let (owner, name) = repo.split_once('/').unwrap_or((&repo, ""));
    let url = endpoint(
        base,
        &[
            "repos",
            owner,
            name,
            "actions",
            "workflows",
            s.workflow.as_deref().unwrap_or_default(),
            "dispatches",
        ],
    )?;
    let inputs: serde_json::Map<String, Value> = t
        .variables
        .iter()
        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
        .collect();
    let body = json!({ "ref": s.git_ref.clone().unwrap_or_default(), "inputs": inputs });
    let req = http()?
        .post(url)
        .bearer_auth(t.credential.clone().unwrap_or_default())
        .header("Accept", "application/vnd.github+json")
        .header("X-GitHub-Api-Version", "2022-11-28")
        .json(&body);
    send("GitHub", req).await.map(|_| ())
}

/// GitLab: pipeline trigger with the variables as `variables[NAME]`.
async fn trigger_gitlab(t: &Trigger) -> Result<(), String> {
    let s = &t.settings;
    let base = s.url.as_deref().unwrap_or("https://gitlab.com");
    let url = endpoint(
        base,
        &[
            "api",
            "v4",
            "projects",
            s.project.as_deref().unwrap_or_default(),
            "trigger",
            "pipeline",
        ],
    )?;
    let body = {
        let mut form = url::form_urlencoded::Serializer::new(String::new());
        form.append_pair("token", t.credential.as_deref().unwrap_or_default());
        form.append_pair("ref", s.git_ref.as_deref().unwrap_or_default());
        for (k, v) in &t.variables {
            form.append_pair(&format!("variables[{k}]"), v);
        }
        form.finish()
    };
    let req = http()?
        .post(url)
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(body);
    send("GitLab", req).await.map(|_| ())
}

/// Jenkins: `buildWithParameters`, after fetching a CSRF crumb when the crumb
/// issuer is enabled (404 means it is not).
async fn trigger_jenkins(t: &Trigger) -> Result<(), String> {
    let s = &t.settings;
    let base = s.url.clone().unwrap_or_default();
    let auth = |req: reqwest::RequestBuilder| match &s.username {
        Some(user) => req.basic_auth(user, t.credential.clone()),
        None => req,
    };
    let crumb_url = endpoint(&base, &["crumbIssuer", "api", "json"])?;
    let resp = auth(http()?.get(crumb_url))
        .send()
        .await
        .map_err(|e| transport_error("Jenkins", &e))?;
    let mut crumb: Option<(String, String)> = None;
    let mut cookies: Vec<String> = Vec::new();
    match resp.status().as_u16() {
        200 => {
            for v in resp.headers().get_all(reqwest::header::SET_COOKIE) {
                if let Some(pair) = v.to_str().ok().and_then(|c| c.split(';').next()) {
                    cookies.push(pair.trim().to_string());
                }
            }
            let v: Value = resp
                .json()
                .await
                .map_err(|e| format!("Jenkins crumb issuer answered invalid JSON: {e}"))?;
            let field = v["crumbRequestField"].as_str().unwrap_or("Jenkins-Crumb");
            let value = v["crumb"]
                .as_str()
                .ok_or("Jenkins crumb issuer answered without a `crumb`")?;
            crumb = Some((field.to_string(), value.to_string()));
        }
        404 => {}
        status => {
            let body = resp.text().await.unwrap_or_default();
            return Err(format!(
                "Jenkins crumb issuer answered HTTP {status}: {}",
                short_body(&body)
            ));
        }
    }
    let mut segments: Vec<&str> = Vec::new();
    for part in s
        .job_path
        .as_deref()
        .unwrap_or_default()
        .split('/')
        .filter(|p| !p.trim().is_empty())
    {
        segments.push("job");
        segments.push(part);
    }
    segments.push("buildWithParameters");
    let mut url = endpoint(&base, &segments)?;
    {
        let mut q = url.query_pairs_mut();
        for (k, v) in &t.variables {
            q.append_pair(k, v);
        }
    }
    let mut req = auth(http()?.post(url));
    if let Some((field, value)) = crumb {
        req = req.header(field, value);
    }
    if !cookies.is_empty() {
        req = req.header(reqwest::header::COOKIE, cookies.join("; "));
    }
    send("Jenkins", req).await.map(|_| ())
}

/// `command`: runs `sh -c <command>` detached, with a clean environment (PATH,
/// HOME, LANG, TMPDIR), the variables, `ALLURE_PROJECT_ID`, and the credential
/// as `ALLURE_TOKEN`. Its output goes to the server log; a non-zero exit is
/// recorded on the job run.
fn spawn_command(db: Db, t: Trigger) -> Result<(), String> {
    use tokio::io::AsyncBufReadExt;

    let command = t.settings.command.clone().unwrap_or_default();
    let mut cmd = tokio::process::Command::new("sh");
    cmd.arg("-c").arg(&command).env_clear();
    for k in ["PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "USER"] {
        if let Ok(v) = std::env::var(k) {
            cmd.env(k, v);
        }
    }
    cmd.envs(t.variables.iter().map(|(k, v)| (k, v)))
        .env("ALLURE_PROJECT_ID", t.project_id.to_string());
    if let Some(c) = &t.credential {
        cmd.env("ALLURE_TOKEN", c);
    }
    cmd.stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("cannot start the command: {e}"))?;
    let job_run = t.job_run_id;
    let launch = t.launch_id;
    let secret = t.credential.clone().filter(|c| c.len() >= 4);
    let tail: Arc<Mutex<VecDeque<String>>> = Arc::new(Mutex::new(VecDeque::new()));
    let mut readers = Vec::new();
    let outputs: Vec<(Box<dyn tokio::io::AsyncRead + Unpin + Send>, bool)> = [
        child.stdout.take().map(|s| {
            (
                Box::new(s) as Box<dyn tokio::io::AsyncRead + Unpin + Send>,
                false,
            )
        }),
        child.stderr.take().map(|s| {
            (
                Box::new(s) as Box<dyn tokio::io::AsyncRead + Unpin + Send>,
                true,
            )
        }),
    ]
    .into_iter()
    .flatten()
    .collect();
    for (stream, is_err) in outputs {
        let tail = tail.clone();
        let secret = secret.clone();
        readers.push(tokio::spawn(async move {
            let mut lines = tokio::io::BufReader::new(stream).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                let line = match &secret {
                    Some(s) => line.replace(s.as_str(), "<redacted>"),
                    None => line,
                };
                tracing::info!(job_run, "command: {line}");
                if is_err {
                    let mut t = tail.lock().unwrap_or_else(|e| e.into_inner());
                    if t.len() == COMMAND_TAIL_LINES {
                        t.pop_front();
                    }
                    t.push_back(line);
                }
            }
        }));
    }
    tokio::spawn(async move {
        let status = child.wait().await;
        for r in readers {
            let _ = r.await;
        }
        let failure = match status {
            Ok(s) if s.success() => None,
            Ok(s) => {
                let lines: Vec<String> = tail
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .iter()
                    .cloned()
                    .collect();
                let code = s
                    .code()
                    .map(|c| format!("status {c}"))
                    .unwrap_or_else(|| "a signal".into());
                Some(if lines.is_empty() {
                    format!("command exited with {code}")
                } else {
                    format!("command exited with {code}: {}", lines.join(" | "))
                })
            }
            Err(e) => Some(format!("command could not be awaited: {e}")),
        };
        match failure {
            None => tracing::info!(job_run, launch, "command finished"),
            Some(message) => {
                tracing::warn!(job_run, launch, error = %message, "command failed");
                if let Err(e) = mark_run_failure(&db, job_run, &message, true).await {
                    tracing::error!(job_run, error = %e, "cannot record the command failure");
                }
            }
        }
    });
    Ok(())
}

// ================================================================ manual results

/// Records manual results into a launch, outside any job run, in one
/// transaction. Each gets its own test key (`manual:<case id>`), so a case's
/// latest manual result counts once next to the automated results.
async fn record_manual(
    db: &Db,
    launch: &store::LaunchRow,
    req: &api::ManualResults,
) -> ServerResult<Vec<api::ManualResultDto>> {
    at_most("results", req.results.len(), crate::limits::MAX_LIST)?;
    if req.results.is_empty() {
        return Err(ServerError::bad("field `results` must not be empty"));
    }
    let mut by_id: BTreeMap<Id, CaseRow> = BTreeMap::new();
    for (i, r) in req.results.iter().enumerate() {
        let s = r.status.trim().to_ascii_lowercase();
        if !api::STATUSES.contains(&s.as_str()) {
            return Err(ServerError::bad(format!(
                "results[{i}].status: expected one of {}, got {:?}",
                status_list(),
                r.status
            )));
        }
        match (r.test_case_id, non_empty(&r.name)) {
            (Some(id), _) => {
                let c = cases_by_ids(
                    db,
                    launch.project_id,
                    &[id],
                    &format!("results[{i}].testCaseId"),
                )
                .await?
                .remove(0);
                by_id.insert(id, c);
            }
            (None, Some(_)) => {}
            (None, None) => {
                return Err(ServerError::bad(format!(
                    "results[{i}]: give `testCaseId` or `name`"
                )))
            }
        }
    }
    let now = now_ms();
    let mut tx = db.write.begin().await?;
    let closed: i64 = sqlx::query("SELECT closed FROM launches WHERE id = $1")
        .bind(launch.id)
        .fetch_one(&mut *tx)
        .await?
        .try_get("closed")?;
    if closed != 0 {
        tx.rollback().await?;
        return Err(ServerError::launch_closed(launch.id));
    }
    let session: i64 = sqlx::query(
        "INSERT INTO sessions (project_id, launch_id, job_run_id, environment, created_ms) \
         VALUES ($1, $2, NULL, '[]', $3) RETURNING id",
    )
    .bind(launch.project_id)
    .bind(launch.id)
    .bind(now)
    .fetch_one(&mut *tx)
    .await?
    .try_get("id")?;
    let mut out = Vec::new();
    for r in &req.results {
        let status = api::normalize_status(Some(&r.status));
        let message = r.message.as_deref().map(|m| clip(m, store::MAX_TEXT));
        let (name, full_name, labels) = match r.test_case_id.and_then(|id| by_id.get(&id)) {
            Some(c) => (c.name.clone(), c.full_name.clone(), c.labels.clone()),
            None => (
                clip(non_empty(&r.name).unwrap_or_default(), MAX_NAME),
                None,
                Vec::new(),
            ),
        };
        let uuid = format!("manual-{}-{:016x}", launch.id, rand::random::<u64>());
        let body = api::UploadTestResult {
            uuid: uuid.clone(),
            name: name.clone(),
            full_name: full_name.clone(),
            status: Some(status.to_string()),
            message: message.clone(),
            start: Some(now),
            stop: Some(now),
            duration: Some(0),
            labels: labels.clone(),
            ..Default::default()
        };
        // The case: the given one, or the one named so (created when new).
        let case_id = match r.test_case_id {
            Some(id) => {
                sqlx::query(
                    "UPDATE test_cases SET last_status = $1, last_start_ms = $2, modified_ms = $2 \
                     WHERE id = $3 AND COALESCE(last_start_ms, 0) <= $2",
                )
                .bind(status)
                .bind(now)
                .bind(id)
                .execute(&mut *tx)
                .await?;
                id
            }
            None => {
                let update = CaseUpdate {
                    identity: clip(&format!("name:{name}"), 2048),
                    allure_id: None,
                    name: name.clone(),
                    full_name: None,
                    labels: Vec::new(),
                    status,
                    start: now,
                    result_id: 0,
                    job_id: None,
                };
                upsert_cases(&mut tx, launch.project_id, std::slice::from_ref(&update))
                    .await?
                    .remove(0)
            }
        };
        let id: i64 = sqlx::query(
            "INSERT INTO test_results (project_id, launch_id, job_run_id, session_id, uuid, test_key, history_id, \
             test_case_id, name, full_name, status, message, trace, start_ms, stop_ms, duration_ms, body, created_ms, manual) \
             VALUES ($1, $2, NULL, $3, $4, $5, NULL, NULL, $6, $7, $8, $9, NULL, $10, $10, 0, $11, $10, 1) RETURNING id",
        )
        .bind(launch.project_id)
        .bind(launch.id)
        .bind(session)
        .bind(&uuid)
        .bind(format!("manual:{case_id}"))
        .bind(&name)
        .bind(&full_name)
        .bind(status)
        .bind(&message)
        .bind(now)
        .bind(serde_json::to_string(&body).unwrap_or_else(|_| "{}".into()))
        .fetch_one(&mut *tx)
        .await?
        .try_get("id")?;
        sqlx::query(
            "UPDATE test_cases SET last_result_id = $1 WHERE id = $2 AND last_start_ms = $3",
        )
        .bind(id)
        .bind(case_id)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        out.push(api::ManualResultDto {
            id,
            test_case_id: case_id,
            name,
            status: status.to_string(),
            message,
            created_date: now,
        });
    }
    tx.commit().await?;
    tracing::info!(
        launch = launch.id,
        results = out.len(),
        "manual results recorded"
    );
    Ok(out)
}

/// Counts by status of a launch's manual (or automated) results, each test
/// counted once by its latest attempt (the same rule as the launch statistic).
async fn statistic_of(
    db: &Db,
    launch_id: Id,
    manual: bool,
) -> ServerResult<Vec<api::StatisticItem>> {
    let rows = sqlx::query(&format!(
        "SELECT t.status AS status, COUNT(*) AS n FROM test_results t \
         WHERE t.launch_id = $1 AND t.manual = $2 AND {} GROUP BY t.status",
        store::LATEST
    ))
    .bind(launch_id)
    .bind(manual as i64)
    .fetch_all(&db.read)
    .await?;
    store::statistic_items(&rows)
}

async fn manual_dto(db: &Db, launch_id: Id) -> ServerResult<api::LaunchManualDto> {
    let rows = sqlx::query(
        "SELECT id, test_key, name, status, message, created_ms FROM test_results \
         WHERE launch_id = $1 AND manual = 1 ORDER BY id",
    )
    .bind(launch_id)
    .fetch_all(&db.read)
    .await?;
    let mut results = Vec::new();
    for r in &rows {
        results.push(api::ManualResultDto {
            id: get_i64(r, "id")?,
            test_case_id: get_str(r, "test_key")?
                .strip_prefix("manual:")
                .and_then(|s| s.parse().ok())
                .unwrap_or_default(),
            name: get_str(r, "name")?,
            status: get_str(r, "status")?,
            message: opt_str(r, "message"),
            created_date: get_i64(r, "created_ms")?,
        });
    }
    let planned_ids: Vec<Id> =
        sqlx::query("SELECT manual_cases FROM server_runs WHERE launch_id = $1")
            .bind(launch_id)
            .fetch_optional(&db.read)
            .await?
            .map(|r| get_str(&r, "manual_cases"))
            .transpose()?
            .and_then(|s| serde_json::from_str(&s).ok())
            .unwrap_or_default();
    let mut planned = Vec::new();
    for id in planned_ids {
        if let Some(c) = get_case(db, id).await? {
            planned.push(c.to_dto());
        }
    }
    Ok(api::LaunchManualDto {
        launch_id,
        planned,
        results,
        statistic: statistic_of(db, launch_id, true).await?,
    })
}

// ================================================================ job-run plan

/// `GET /api/jobrun/{id}/plan`: `[{id, selector}]` of a server-led job run;
/// empty for CI-led job runs (everything runs).
pub async fn job_run_plan(state: &AppState, run: &store::JobRunRow) -> ServerResult<Response> {
    let rows = sqlx::query(
        "SELECT ref_id, selector FROM job_run_plan_items WHERE job_run_id = $1 ORDER BY id",
    )
    .bind(run.id)
    .fetch_all(&state.db.read)
    .await?;
    let mut items = Vec::with_capacity(rows.len());
    for r in &rows {
        items.push(json!({ "id": get_i64(r, "ref_id")?, "selector": get_str(r, "selector")? }));
    }
    Ok(Json(items).into_response())
}

// ================================================================ HTTP

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/testcase", get(list_test_cases_h))
        .route("/testcase/run", post(run_test_cases_h))
        .route("/testcase/{id}", get(get_test_case_h))
        .route("/project/{id}/job", get(list_jobs_h))
        .route(
            "/job/{id}",
            get(get_job_h).patch(patch_job_h).put(put_job_h),
        )
        .route("/testplan", post(create_plan_h).get(list_plans_h))
        .route("/testplan/{id}", get(get_plan_h))
        .route(
            "/testplan/{id}/executors",
            get(executors_h).post(override_h),
        )
        .route("/testplan/{id}/run", post(run_plan_h))
        .route("/launch/{id}/manual", get(manual_h).post(record_manual_h))
        .route("/launch/{id}/statistic/{kind}", get(statistic_kind_h))
}

async fn check_project(state: &AppState, auth: &Auth, id: Id) -> ServerResult<()> {
    auth.check_project(id, "project", id)?;
    if !store::project_exists(&state.db, id).await? {
        return Err(ServerError::not_found("project", id));
    }
    Ok(())
}

async fn job_for(state: &AppState, auth: &Auth, id: Id) -> ServerResult<store::JobRow> {
    let job = get_job(&state.db, id)
        .await?
        .ok_or_else(|| ServerError::not_found("job", id))?;
    auth.check_project(job.project_id, "job", id)?;
    Ok(job)
}

async fn plan_for(state: &AppState, auth: &Auth, id: Id) -> ServerResult<PlanRow> {
    let plan = get_plan(&state.db, id)
        .await?
        .ok_or_else(|| ServerError::not_found("test plan", id))?;
    auth.check_project(plan.project_id, "test plan", id)?;
    Ok(plan)
}

use crate::routes::launch_for;

fn parse_int(key: &str, value: &str) -> ServerResult<i64> {
    value
        .trim()
        .parse()
        .map_err(|_| ServerError::bad(format!("query `{key}`: expected an integer, got {value:?}")))
}

/// `GET /testcase?projectId=&label=NAME=VALUE&name=PATTERN&status=S&page=&size=`
/// (`label` and `status` repeatable; `status` also comma-separated).
async fn list_test_cases_h(
    State(state): State<AppState>,
    auth: Auth,
    RawQuery(query): RawQuery,
) -> ServerResult<Response> {
    let mut project = None;
    let mut filter = api::TestCaseFilter::default();
    let (mut page, mut size) = (0i64, 100i64);
    for (k, v) in url::form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        match k.as_ref() {
            "projectId" => project = Some(parse_int("projectId", &v)?),
            "label" => {
                let (name, value) =
                    v.split_once('=')
                        .or_else(|| v.split_once(':'))
                        .ok_or_else(|| {
                            ServerError::bad(format!(
                                "query `label`: expected NAME=VALUE, got {v:?}"
                            ))
                        })?;
                filter.labels.push(api::LabelDto {
                    name: name.to_string(),
                    value: value.to_string(),
                });
            }
            "name" | "namePattern" => filter.name_pattern = Some(v.into_owned()),
            "status" => filter.status.extend(
                v.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_string),
            ),
            "page" => page = parse_int("page", &v)?.max(0),
            "size" => size = parse_int("size", &v)?.clamp(1, 1000),
            _ => {}
        }
    }
    let project = project.or(auth.project_id).unwrap_or(1);
    check_project(&state, &auth, project).await?;
    validate_filter(&filter, "query")?;
    let (rows, total) = list_cases(&state.db, project, &filter, Some((page, size))).await?;
    let content = rows.iter().map(CaseRow::to_dto).collect();
    Ok(Json(api::Page::new(content, total, page, size)).into_response())
}

async fn get_test_case_h(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<Id>,
) -> ServerResult<Response> {
    let c = get_case(&state.db, id)
        .await?
        .ok_or_else(|| ServerError::not_found("test case", id))?;
    auth.check_project(c.project_id, "test case", id)?;
    Ok(Json(c.to_dto()).into_response())
}

async fn run_test_cases_h(
    State(state): State<AppState>,
    auth: Auth,
    ApiJson(req): ApiJson<api::TestCaseRun>,
) -> ServerResult<Response> {
    check_project(&state, &auth, req.project_id).await?;
    if req.test_case_ids.is_empty() {
        return Err(ServerError::bad("field `testCaseIds` must not be empty"));
    }
    let cases = cases_by_ids(&state.db, req.project_id, &req.test_case_ids, "testCaseIds").await?;
    let run = run_cases(&state, req.project_id, None, cases, &req.launch).await?;
    Ok(Json(run).into_response())
}

async fn list_jobs_h(
    State(state): State<AppState>,
    auth: Auth,
    Path(project): Path<Id>,
) -> ServerResult<Response> {
    check_project(&state, &auth, project).await?;
    let mut out = Vec::new();
    for job in store::list_jobs(&state.db, project).await? {
        out.push(job_config_dto(&state.db, &job).await?);
    }
    Ok(Json(out).into_response())
}

async fn get_job_h(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<Id>,
) -> ServerResult<Response> {
    let job = job_for(&state, &auth, id).await?;
    Ok(Json(job_config_dto(&state.db, &job).await?).into_response())
}

async fn patch_job_h(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<Id>,
    ApiJson(req): ApiJson<api::JobConfigUpdate>,
) -> ServerResult<Response> {
    let job = job_for(&state, &auth, id).await?;
    configure_job(&state.db, &auth, &job, &req, false).await?;
    Ok(Json(job_config_dto(&state.db, &job).await?).into_response())
}

async fn put_job_h(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<Id>,
    ApiJson(req): ApiJson<api::JobConfigUpdate>,
) -> ServerResult<Response> {
    let job = job_for(&state, &auth, id).await?;
    configure_job(&state.db, &auth, &job, &req, true).await?;
    Ok(Json(job_config_dto(&state.db, &job).await?).into_response())
}

async fn create_plan_h(
    State(state): State<AppState>,
    auth: Auth,
    ApiJson(req): ApiJson<api::TestPlanCreate>,
) -> ServerResult<Response> {
    check_project(&state, &auth, req.project_id).await?;
    let plan = create_plan(&state.db, &req).await?;
    Ok(Json(plan_dto(&state.db, &plan, true).await?).into_response())
}

async fn list_plans_h(
    State(state): State<AppState>,
    auth: Auth,
    RawQuery(query): RawQuery,
) -> ServerResult<Response> {
    let mut project = None;
    for (k, v) in url::form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        if k == "projectId" {
            project = Some(parse_int("projectId", &v)?);
        }
    }
    let project = project.or(auth.project_id).unwrap_or(1);
    check_project(&state, &auth, project).await?;
    let rows = sqlx::query(
        "SELECT id, project_id, name, filter, created_ms FROM test_plans WHERE project_id = $1 ORDER BY id",
    )
    .bind(project)
    .fetch_all(&state.db.read)
    .await?;
    let mut out = Vec::new();
    for r in &rows {
        out.push(plan_dto(&state.db, &plan_from(r)?, false).await?);
    }
    Ok(Json(out).into_response())
}

async fn get_plan_h(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<Id>,
) -> ServerResult<Response> {
    let plan = plan_for(&state, &auth, id).await?;
    Ok(Json(plan_dto(&state.db, &plan, true).await?).into_response())
}

async fn executors_h(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<Id>,
) -> ServerResult<Response> {
    let plan = plan_for(&state, &auth, id).await?;
    Ok(Json(executors_dto(&state.db, &plan).await?).into_response())
}

async fn override_h(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<Id>,
    ApiJson(req): ApiJson<api::ExecutorOverride>,
) -> ServerResult<Response> {
    let plan = plan_for(&state, &auth, id).await?;
    override_executors(&state.db, &plan, &req).await?;
    Ok(Json(executors_dto(&state.db, &plan).await?).into_response())
}

async fn run_plan_h(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<Id>,
    ApiJson(form): ApiJson<api::LaunchForm>,
) -> ServerResult<Response> {
    let plan = plan_for(&state, &auth, id).await?;
    let cases = plan_members(&state.db, &plan).await?;
    let run = run_cases(&state, plan.project_id, Some(&plan), cases, &form).await?;
    Ok(Json(run).into_response())
}

async fn record_manual_h(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<Id>,
    ApiJson(req): ApiJson<api::ManualResults>,
) -> ServerResult<Response> {
    let launch = launch_for(&state, &auth, id).await?;
    let out = record_manual(&state.db, &launch, &req).await?;
    Ok(Json(out).into_response())
}

async fn manual_h(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<Id>,
) -> ServerResult<Response> {
    launch_for(&state, &auth, id).await?;
    Ok(Json(manual_dto(&state.db, id).await?).into_response())
}

/// `GET /launch/{id}/statistic/manual|automated`: the launch statistic split.
async fn statistic_kind_h(
    State(state): State<AppState>,
    auth: Auth,
    Path((id, kind)): Path<(Id, String)>,
) -> ServerResult<Response> {
    let manual = match kind.as_str() {
        "manual" => true,
        "automated" => false,
        other => {
            return Err(ServerError::bad(format!(
                "statistic kind {other:?}: expected manual or automated"
            )))
        }
    };
    launch_for(&state, &auth, id).await?;
    Ok(Json(statistic_of(&state.db, id, manual).await?).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(
        labels: &[(&str, &str)],
        tcid: Option<&str>,
        full: Option<&str>,
    ) -> api::UploadTestResult {
        api::UploadTestResult {
            uuid: "u".into(),
            name: "n".into(),
            test_case_id: tcid.map(str::to_string),
            full_name: full.map(str::to_string),
            labels: labels
                .iter()
                .map(|(n, v)| api::LabelDto {
                    name: n.to_string(),
                    value: v.to_string(),
                })
                .collect(),
            ..Default::default()
        }
    }

    #[test]
    fn identity_precedence() {
        assert_eq!(
            identity_of(&result(&[("as_id", "101")], Some("t"), Some("f"))),
            "allure:101"
        );
        assert_eq!(
            identity_of(&result(&[("ALLURE_ID", " 7 ")], None, None)),
            "allure:7"
        );
        assert_eq!(identity_of(&result(&[], Some("t"), Some("f"))), "tcid:t");
        assert_eq!(identity_of(&result(&[], Some(" "), Some("f"))), "full:f");
        assert_eq!(identity_of(&result(&[], None, None)), "name:n");
    }

    #[test]
    fn volatile_labels_are_dropped() {
        let r = result(
            &[
                ("host", "h1"),
                ("thread", "1"),
                ("tag", "smoke"),
                ("tag", "smoke"),
            ],
            None,
            None,
        );
        let l = case_labels(&r.labels);
        assert_eq!(l.len(), 1);
        assert_eq!(l[0].name, "tag");
    }

    #[test]
    fn like_patterns() {
        assert_eq!(like_pattern("Cart"), "%cart%");
        assert_eq!(like_pattern("test_*"), "test\\_%");
        assert_eq!(like_pattern("a?c"), "a_c");
        assert_eq!(like_pattern("50%"), "%50\\%%");
    }

    #[test]
    fn variable_names() {
        assert!(valid_var_name("ALLURE_JOB_RUN_ID"));
        assert!(valid_var_name("_x1"));
        assert!(!valid_var_name("1A"));
        assert!(!valid_var_name("A-B"));
        assert!(!valid_var_name(""));
    }

    #[test]
    fn credentials_are_redacted_in_debug() {
        let s = api::IntegrationSettings {
            kind: "github".into(),
            credential: Some("ghp_secret_value".into()),
            ..Default::default()
        };
        assert!(!format!("{s:?}").contains("ghp_secret_value"));
        let c = JobConfig {
            credential: Some("ghp_secret_value".into()),
            integration: Some(s),
            ..Default::default()
        };
        assert!(!format!("{c:?}").contains("ghp_secret_value"));
    }

    #[test]
    fn prerequisite_messages_are_distinct_and_name_the_job() {
        let who = "job 1 (acme/shop_CI)";
        let all = [
            problem_never(who),
            problem_open(who, 7),
            problem_no_integration(1, who),
            problem_cannot_run(1, who),
        ];
        for m in &all {
            assert!(m.contains(who), "{m}");
        }
        let distinct: BTreeSet<&String> = all.iter().collect();
        assert_eq!(distinct.len(), 4);
    }

    #[test]
    fn plan_entries() {
        let mut c = CaseRow {
            id: 9,
            project_id: 1,
            name: "n".into(),
            full_name: Some("test_shop#test_x".into()),
            allure_id: Some("101".into()),
            labels: vec![],
            last_status: None,
            job_id: None,
            job_name: None,
            job_type: None,
            job_url: None,
            created_ms: 0,
            modified_ms: 0,
        };
        assert_eq!(c.plan_entry(), (101, "test_shop#test_x".to_string()));
        c.allure_id = Some("ABC-1".into());
        c.full_name = None;
        assert_eq!(c.plan_entry(), (9, "n".to_string()));
    }

    fn case(
        identity: &str,
        labels: &[(&str, &str)],
        status: &'static str,
        start: i64,
    ) -> CaseUpdate {
        CaseUpdate {
            identity: identity.into(),
            allure_id: None,
            name: format!("name of {identity}"),
            full_name: None,
            labels: labels
                .iter()
                .map(|(n, v)| api::LabelDto {
                    name: n.to_string(),
                    value: v.to_string(),
                })
                .collect(),
            status,
            start,
            result_id: start,
            job_id: None,
        }
    }

    /// (last status, last start, labels JSON, label rows as "name=value").
    async fn stored_case(db: &Db, id: Id) -> (String, i64, String, Vec<String>) {
        let r =
            sqlx::query("SELECT last_status, last_start_ms, labels FROM test_cases WHERE id = $1")
                .bind(id)
                .fetch_one(&db.read)
                .await
                .unwrap();
        let rows = sqlx::query(
            "SELECT name, value FROM test_case_labels WHERE test_case_id = $1 ORDER BY name, value",
        )
        .bind(id)
        .fetch_all(&db.read)
        .await
        .unwrap();
        (
            get_str(&r, "last_status").unwrap(),
            get_i64(&r, "last_start_ms").unwrap(),
            get_str(&r, "labels").unwrap(),
            rows.iter()
                .map(|l| {
                    format!(
                        "{}={}",
                        get_str(l, "name").unwrap(),
                        get_str(l, "value").unwrap()
                    )
                })
                .collect(),
        )
    }

    #[tokio::test]
    async fn upserting_cases_keeps_the_latest_status_and_the_labels_in_step() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("t.db").display());
        let db = Db::connect(&url).await.unwrap();
        store::bootstrap(&db, Some("t")).await.unwrap();
        let upsert = |updates: Vec<CaseUpdate>| {
            let db = db.clone();
            async move {
                let mut conn = db.write.acquire().await.unwrap();
                upsert_cases(&mut conn, 1, &updates).await.unwrap()
            }
        };

        // More cases than one statement takes: ids come back in input order.
        let many: Vec<CaseUpdate> = (0..150)
            .map(|i| case(&format!("full:c{i:03}"), &[("suite", "s")], "passed", 10))
            .collect();
        let ids = upsert(many).await;
        assert_eq!(ids.len(), 150);
        for (i, id) in ids.iter().enumerate() {
            let identity: String = sqlx::query("SELECT identity FROM test_cases WHERE id = $1")
                .bind(*id)
                .fetch_one(&db.read)
                .await
                .unwrap()
                .get("identity");
            assert_eq!(identity, format!("full:c{i:03}"));
        }
        let first = ids[0];
        let labels = r#"[{"name":"suite","value":"s"}]"#.to_string();
        assert_eq!(
            stored_case(&db, first).await,
            ("passed".into(), 10, labels.clone(), vec!["suite=s".into()])
        );

        // An older attempt changes neither the status nor the labels.
        let again = upsert(vec![case("full:c000", &[("suite", "s")], "failed", 5)]).await;
        assert_eq!(again, vec![first]);
        assert_eq!(
            stored_case(&db, first).await,
            ("passed".into(), 10, labels, vec!["suite=s".into()])
        );

        // A newer one with other labels replaces both.
        upsert(vec![case(
            "full:c000",
            &[("tag", "b"), ("tag", "a")],
            "broken",
            20,
        )])
        .await;
        assert_eq!(
            stored_case(&db, first).await,
            (
                "broken".into(),
                20,
                r#"[{"name":"tag","value":"b"},{"name":"tag","value":"a"}]"#.into(),
                vec!["tag=a".into(), "tag=b".into()]
            )
        );
        let n: i64 = sqlx::query("SELECT COUNT(*) AS n FROM test_cases")
            .fetch_one(&db.read)
            .await
            .unwrap()
            .get("n");
        assert_eq!(n, 150);
    }

    #[test]
    fn short_bodies() {
        assert_eq!(short_body("  a \n b "), "a b");
        assert_eq!(short_body(""), "(empty body)");
        assert!(short_body(&"x".repeat(1000)).ends_with('…'));
    }
}

//! Test cases and their labels: the multi-row upsert by (project, identity),
//! labels (JSON in the case row) rewritten only when they changed, lookups
//! and the case filter turned into SQL.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use onelaunch_api::{self as api, Id};
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use super::*;
use crate::error::{ServerError, ServerResult};

/// What one result (or manual entry) says about its test case, worked out
/// before the write transaction: ingest prepares these in the request's own
/// task, so the writer's turn (one at a time on SQLite) goes to the
/// statements.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct CaseFacts {
    pub(crate) identity: String,
    pub(crate) allure_id: Option<String>,
    pub(crate) name: String,
    pub(crate) full_name: Option<String>,
    /// The labels worth keeping, as stored: a JSON array of `{name, value}`.
    pub(crate) labels: String,
    pub(crate) status: &'static str,
}

impl CaseFacts {
    /// Facts with `labels` (a list of `{name, value}`) in their stored form.
    pub(crate) fn new(
        identity: String,
        allure_id: Option<String>,
        name: String,
        full_name: Option<String>,
        labels: &(impl serde::Serialize + ?Sized),
        status: &'static str,
    ) -> Self {
        let labels = serde_json::to_string(labels).unwrap_or_else(|_| "[]".into());
        Self::with_json(identity, allure_id, name, full_name, labels, status)
    }

    /// Facts whose labels are already in their stored form (`labels`: the
    /// JSON [`Self::new`] would write).
    pub(crate) fn with_json(
        identity: String,
        allure_id: Option<String>,
        name: String,
        full_name: Option<String>,
        labels: String,
        status: &'static str,
    ) -> Self {
        CaseFacts {
            identity,
            allure_id,
            name,
            full_name,
            labels,
            status,
        }
    }
}

/// Test cases written by one upsert statement.
pub(crate) const UPSERT_ROWS: usize = 100;

/// Test cases looked up by one statement (SQLite).
const LOOKUP_ROWS: usize = 500;

/// Creates or updates the test cases of `updates` (at most one per identity,
/// in identity order, so concurrent transactions lock rows in the same order).
/// Returns their ids in the same order ([`UpsertedCases`]). What an attempt
/// says about its case (status, executor) is written apart
/// ([`super::case_last`]).
///
/// PostgreSQL: one multi-row `INSERT … ON CONFLICT (project_id, identity) DO
/// UPDATE … RETURNING` per chunk. The unique index finds a known case
/// whatever the planner believes about the table (a lookup by `identity IN
/// (…)` there would be planned from statistics, which lag behind a table one
/// large launch fills within seconds). The conflict arm locks the row and
/// works on its latest version, so a case created concurrently is updated,
/// never missed; it sets the name and labels sent.
///
/// SQLite: see [`upsert_cases_sqlite`].
pub(crate) async fn upsert_cases(
    conn: &mut AnyConnection,
    project_id: Id,
    updates: &[&CaseFacts],
) -> ServerResult<UpsertedCases> {
    if conn.backend_name() == "SQLite" {
        return upsert_cases_sqlite(conn, project_id, updates).await;
    }
    // identity -> id
    let mut stored: HashMap<String, Id> = HashMap::with_capacity(updates.len());
    for chunk in updates.chunks(UPSERT_ROWS) {
        for r in write_cases(conn, project_id, chunk, Arm::UpdateReturning).await? {
            stored.insert(get_str(&r, "identity")?, get_i64(&r, "id")?);
        }
    }
    Ok(UpsertedCases {
        ids: ids_in_order(updates, &mut stored)?,
        known_through: None,
    })
}

/// [`upsert_cases`] on SQLite, in the writer's transaction (one writer:
/// nothing changes a case between its statements).
///
/// New cases are created with `ON CONFLICT … DO NOTHING`; known cases go
/// through PostgreSQL's `DO UPDATE` arm (without `RETURNING`). Why new cases
/// never meet that arm: SQLite checks the arm's `NOT NULL` columns with
/// `ABORT` whatever the statement's own clause, and a multi-row statement
/// that may abort copies each page into a statement journal before it
/// changes it. For new cases that was one 16 KB page each, through the
/// random identity index: 4.7% of the server's CPU on a first run
/// (docs/ingest-profile.md, "No statement journal for new cases"). A known
/// case whose facts did not change is written as it was, which SQLite does
/// not write at all (its page stays clean), so its arm copies nothing.
///
/// Which cases are known is found by the unique index (`project_id = ? AND
/// identity IN (…)`, an equality on every column of a unique index, which
/// SQLite plans as one search per identity whatever its statistics:
/// `tests::attempts::test_cases_are_looked_up_by_their_unique_index`). A
/// search costs about as much as an insert's, so the batch's first case is
/// looked up alone to tell a next run from a first one:
///
/// * known: the others are looked up, the rest created;
/// * not known: all are created at once and those the insert skipped are
///   looked up after it.
///
/// SQLite runs `RETURNING` as a trigger program per row, so no statement
/// answers ids: the cases created are the rows with an id above the table's
/// last id before ([`super::last_id`]), numbered in the order listed when
/// there are as many as were sent ([`created_after`]). Either order is
/// right for any mix of new and known cases; the probe only saves a search.
async fn upsert_cases_sqlite(
    conn: &mut AnyConnection,
    project_id: Id,
    updates: &[&CaseFacts],
) -> ServerResult<UpsertedCases> {
    let before = super::last_id(conn, "test_cases").await?;
    // identity -> id
    let mut stored: HashMap<String, Id> = HashMap::with_capacity(updates.len());
    let probe = updates.len().min(1);
    lookup_cases(conn, project_id, &updates[..probe], &mut stored).await?;
    let new: Vec<&CaseFacts> = if stored.is_empty() {
        // A first run, it seems: everything inserted, the skipped looked up.
        updates.to_vec()
    } else {
        // A next run: the others looked up, the rest inserted.
        lookup_cases(conn, project_id, &updates[probe..], &mut stored).await?;
        updates
            .iter()
            .filter(|f| !stored.contains_key(&f.identity))
            .copied()
            .collect()
    };
    for chunk in new.chunks(UPSERT_ROWS) {
        write_cases(conn, project_id, chunk, Arm::Nothing).await?;
    }
    if !new.is_empty() && !created_after(conn, before, &new, &mut stored).await? {
        let skipped: Vec<&CaseFacts> = new
            .iter()
            .filter(|f| !stored.contains_key(&f.identity))
            .copied()
            .collect();
        lookup_cases(conn, project_id, &skipped, &mut stored).await?;
    }
    // Known: the cases that existed before this call.
    let known: Vec<&CaseFacts> = updates
        .iter()
        .filter(|f| stored.get(&f.identity).is_some_and(|&id| id <= before))
        .copied()
        .collect();
    for chunk in known.chunks(UPSERT_ROWS) {
        write_cases(conn, project_id, chunk, Arm::Update).await?;
    }
    Ok(UpsertedCases {
        ids: ids_in_order(updates, &mut stored)?,
        known_through: Some(before),
    })
}

/// The ids of the cases of `facts` that exist, entered in `stored`.
async fn lookup_cases(
    conn: &mut AnyConnection,
    project_id: Id,
    facts: &[&CaseFacts],
    stored: &mut HashMap<String, Id>,
) -> ServerResult<()> {
    for chunk in facts.chunks(LOOKUP_ROWS) {
        let sql = shaped(conn, "cases_by_identity", chunk.len(), |mut p, n| {
            format!(
                "SELECT id, identity FROM test_cases WHERE project_id = {} AND identity IN ({})",
                p.next(),
                p.list(n)
            )
        });
        let mut q = with_room(&sql, 1 + chunk.len()).bind(project_id);
        for f in chunk {
            q = q.bind(f.identity.as_str());
        }
        for r in q.fetch_all(&mut *conn).await? {
            stored.insert(get_str(&r, "identity")?, get_i64(&r, "id")?);
        }
    }
    Ok(())
}

/// SQLite: the cases created since the table's last id was `before`,
/// entered in `stored`. When there are as many as `sent` (the cases just
/// inserted, in the order listed), they were all created, numbered in that
/// order without gaps: their ids are a range and nothing is read (`true`).
/// Otherwise (a skipped case still takes a number) they are read (`false`).
async fn created_after(
    conn: &mut AnyConnection,
    before: Id,
    sent: &[&CaseFacts],
    stored: &mut HashMap<String, Id>,
) -> ServerResult<bool> {
    let created: i64 = sqlx::query("SELECT COUNT(*) AS n FROM test_cases WHERE id > $1")
        .bind(before)
        .fetch_one(&mut *conn)
        .await
        .map_err(ServerError::from)
        .and_then(|r| get_i64(&r, "n"))?;
    if usize::try_from(created).ok() == Some(sent.len()) {
        for (f, id) in sent.iter().zip(before + 1..) {
            stored.insert(f.identity.clone(), id);
        }
        return Ok(true);
    }
    for r in sqlx::query("SELECT id, identity FROM test_cases WHERE id > $1")
        .bind(before)
        .fetch_all(&mut *conn)
        .await?
    {
        stored.insert(get_str(&r, "identity")?, get_i64(&r, "id")?);
    }
    Ok(false)
}

/// What a case's insert does with a known case ([`write_cases`]).
#[derive(Clone, Copy)]
enum Arm {
    /// Nothing (SQLite, for cases looked up and not found).
    Nothing,
    /// Sets the name and labels sent, the full name and `ALLURE_ID` unless
    /// none was sent.
    Update,
    /// [`Arm::Update`], answering each case's id (PostgreSQL).
    UpdateReturning,
}

/// One multi-row insert of `chunk`'s cases with `arm` on conflict; the rows
/// it answers (`id`, `identity`: [`Arm::UpdateReturning`] only).
async fn write_cases(
    conn: &mut AnyConnection,
    project_id: Id,
    chunk: &[&CaseFacts],
    arm: Arm,
) -> ServerResult<Vec<AnyRow>> {
    const COLS: usize = 8;
    const UPDATE: &str = "DO UPDATE SET name = excluded.name, \
         full_name = COALESCE(excluded.full_name, test_cases.full_name), \
         allure_id = COALESCE(excluded.allure_id, test_cases.allure_id), \
         labels = excluded.labels";
    let name = match arm {
        Arm::Nothing => "insert_cases",
        Arm::Update => "upsert_cases",
        Arm::UpdateReturning => "upsert_cases_returning",
    };
    let sql = shaped(conn, name, chunk.len(), |mut p, n| {
        format!(
            "{} INTO test_cases (project_id, identity, allure_id, name, full_name, labels, \
             created_ms, modified_ms) VALUES {} ON CONFLICT (project_id, identity) {}",
            insert_or_fail(p.sqlite),
            p.rows(n, COLS),
            match arm {
                Arm::Nothing => "DO NOTHING".to_string(),
                Arm::Update => UPDATE.to_string(),
                Arm::UpdateReturning => format!("{UPDATE} RETURNING id, identity"),
            }
        )
    });
    let now = now_ms();
    let mut q = with_room(&sql, chunk.len() * COLS);
    for f in chunk {
        q = q
            .bind(project_id)
            .bind(f.identity.as_str())
            .bind(f.allure_id.as_deref())
            .bind(f.name.as_str())
            .bind(f.full_name.as_deref())
            .bind(f.labels.as_str())
            .bind(now)
            .bind(now);
    }
    if let Arm::UpdateReturning = arm {
        return Ok(q.fetch_all(&mut *conn).await?);
    }
    q.execute(&mut *conn).await?;
    Ok(Vec::new())
}

/// The ids of `updates`, in their order, taken out of `stored` (identity ->
/// id); a 409 for a case that is not there.
fn ids_in_order(updates: &[&CaseFacts], stored: &mut HashMap<String, Id>) -> ServerResult<Vec<Id>> {
    updates
        .iter()
        .map(|f| {
            stored.remove(&f.identity).ok_or_else(|| {
                ServerError::Conflict(format!(
                    "test case {:?} changed concurrently; retry",
                    f.identity
                ))
            })
        })
        .collect()
}

/// What [`upsert_cases`] answers.
#[derive(Debug)]
pub(crate) struct UpsertedCases {
    /// The cases' ids, in the order they were given.
    pub(crate) ids: Vec<Id>,
    /// SQLite: the cases that existed before the call are those with an id up
    /// to this one (the others it created). `None` on PostgreSQL, which has
    /// no use for it ([`super::case_last::note_attempts`]).
    pub(crate) known_through: Option<Id>,
}

/// A stored test case with its default executor.
#[derive(Debug, Clone)]
pub(crate) struct CaseRow {
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

/// The cases `c` with their last attempt `l` ([`super::case_last`]).
const CASES: &str = "test_cases c LEFT JOIN test_case_last l ON l.test_case_id = c.id";

/// A [`CaseRow`] per case. Whoever reads through it settles first
/// ([`super::case_last::settled`]).
pub(crate) const CASE_SELECT: &str =
    "SELECT c.id AS id, c.project_id AS project_id, c.name AS name, \
     c.full_name AS full_name, c.allure_id AS allure_id, c.labels AS labels, \
     l.status AS last_status, l.job_id AS job_id, j.name AS job_name, j.ci_type AS job_type, \
     j.url AS job_url, c.created_ms AS created_ms, \
     COALESCE(l.modified_ms, c.modified_ms) AS modified_ms \
     FROM test_cases c LEFT JOIN test_case_last l ON l.test_case_id = c.id \
     LEFT JOIN jobs j ON j.id = l.job_id";

pub(crate) fn case_from(r: &AnyRow) -> ServerResult<CaseRow> {
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
    pub(crate) fn to_dto(&self) -> api::TestCaseDto {
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
    /// `(ref id, selector)` of the case in a test plan: the ref id is its
    /// numeric `ALLURE_ID`, or 0 when it has none (the plan then names it by
    /// selector only).
    pub(crate) fn plan_entry(&self) -> (i64, String) {
        let id = self
            .allure_id
            .as_deref()
            .and_then(|a| a.trim().parse::<i64>().ok())
            .unwrap_or(0);
        let selector = self.full_name.clone().unwrap_or_else(|| self.name.clone());
        (id, selector)
    }

    pub(crate) fn executor_case(&self, source: &str) -> api::ExecutorCase {
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
pub(crate) enum Bind {
    Int(i64),
    Text(String),
}

pub(crate) fn bind_all<'q>(
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
pub(crate) fn like_pattern(pattern: &str) -> String {
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

/// The `WHERE` conditions of a filter over [`CASES`], with parameters
/// numbered from `next`. A label matches a case when one of the labels in
/// its row's JSON has the name (in any case) and the value (exactly).
pub(crate) fn filter_sql(
    backend: Backend,
    f: &api::TestCaseFilter,
    next: &mut usize,
    binds: &mut Vec<Bind>,
) -> Vec<String> {
    let mut conds = Vec::new();
    let mut param = |b: Bind, binds: &mut Vec<Bind>| {
        binds.push(b);
        *next += 1;
        format!("${}", *next - 1)
    };
    for l in &f.labels {
        let value = l.value.trim();
        // The value as the case row's JSON spells it (written by
        // `upsert_cases` with serde_json, `name` before `value`): a
        // substring search that skips most cases before their JSON is read.
        let spelled = format!(
            "\"value\":{}",
            serde_json::to_string(value).unwrap_or_default()
        );
        let s = param(Bind::Text(spelled), binds);
        let n = param(Bind::Text(l.name.trim().to_lowercase()), binds);
        let v = param(Bind::Text(value.to_string()), binds);
        conds.push(match backend {
            Backend::Sqlite => format!(
                "instr(c.labels, {s}) > 0 AND EXISTS (SELECT 1 FROM json_each(c.labels) l \
                 WHERE LOWER(json_extract(l.value, '$.name')) = {n} \
                 AND json_extract(l.value, '$.value') = {v})"
            ),
            Backend::Postgres => format!(
                "strpos(c.labels, {s}) > 0 AND EXISTS (SELECT 1 FROM json_array_elements(c.labels::json) l \
                 WHERE LOWER(l ->> 'name') = {n} AND l ->> 'value' = {v})"
            ),
        });
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
        conds.push(format!("l.status IN ({})", list.join(", ")));
    }
    conds
}

/// Test cases of a project matching a filter, by id; `None` size = all.
pub(crate) async fn list_cases(
    db: &Db,
    project_id: Id,
    filter: &api::TestCaseFilter,
    page: Option<(i64, i64)>,
) -> ServerResult<(Vec<CaseRow>, i64)> {
    super::case_last::settled(db).await?;
    let mut binds = vec![Bind::Int(project_id)];
    let mut next = 2;
    let mut conds = vec!["c.project_id = $1".to_string()];
    conds.extend(filter_sql(db.backend, filter, &mut next, &mut binds));
    let where_ = conds.join(" AND ");
    let total: i64 = bind_all(
        sqlx::query(&format!("SELECT COUNT(*) AS n FROM {CASES} WHERE {where_}")),
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

pub(crate) async fn get_case(db: &Db, id: Id) -> ServerResult<Option<CaseRow>> {
    super::case_last::settled(db).await?;
    let r = sqlx::query(&format!("{CASE_SELECT} WHERE c.id = $1"))
        .bind(id)
        .fetch_optional(&db.read)
        .await?;
    r.as_ref().map(case_from).transpose()
}

/// Test cases by id, all in `project_id`; `field` names the list in errors.
pub(crate) async fn load_cases_by_ids(
    db: &Db,
    project_id: Id,
    ids: &[Id],
    field: &str,
) -> ServerResult<Vec<CaseRow>> {
    super::case_last::settled(db).await?;
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

/// A connection inside a transaction, as the functions here take it.
pub(crate) type Conn = AnyConnection;

/// The explicit cases of a plan (`test_plan_cases`).
pub(crate) async fn plan_explicit_cases(db: &Db, plan_id: Id) -> ServerResult<Vec<CaseRow>> {
    super::case_last::settled(db).await?;
    let rows = sqlx::query(&format!(
        "{CASE_SELECT} WHERE c.id IN (SELECT p.test_case_id FROM test_plan_cases p WHERE p.plan_id = $1)"
    ))
    .bind(plan_id)
    .fetch_all(&db.read)
    .await?;
    rows.iter().map(case_from).collect()
}

#[cfg(test)]
mod tests {
    //! The multi-row case upsert, checked against the stored rows.

    use onelaunch_api::{self as api, Id};
    use sqlx::Row;

    use super::*;

    /// A case's facts.
    fn case(identity: &str, labels: &[(&str, &str)]) -> CaseFacts {
        let labels: Vec<api::LabelDto> = labels
            .iter()
            .map(|(n, v)| api::LabelDto {
                name: (*n).into(),
                value: (*v).into(),
            })
            .collect();
        CaseFacts::new(
            identity.into(),
            None,
            format!("name of {identity}"),
            None,
            &labels,
            "passed",
        )
    }

    /// (labels JSON, the labels as "name=value", sorted).
    async fn stored_labels(db: &Db, id: Id) -> (String, Vec<String>) {
        let r = sqlx::query("SELECT labels FROM test_cases WHERE id = $1")
            .bind(id)
            .fetch_one(&db.read)
            .await
            .unwrap();
        let json = get_str(&r, "labels").unwrap();
        let mut labels: Vec<String> = serde_json::from_str::<Vec<api::LabelDto>>(&json)
            .unwrap()
            .iter()
            .map(|l| format!("{}={}", l.name, l.value))
            .collect();
        labels.sort();
        (json, labels)
    }

    #[tokio::test]
    async fn upserting_cases_answers_their_ids_and_keeps_the_labels_in_step() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("t.db").display());
        let db = Db::connect(&url).await.unwrap();
        crate::db::projects::bootstrap(&db, Some("t"))
            .await
            .unwrap();
        let upsert = |cases: Vec<CaseFacts>| {
            let db = db.clone();
            async move {
                let facts: Vec<&CaseFacts> = cases.iter().collect();
                let mut conn = db.write.acquire().await.unwrap();
                upsert_cases(&mut conn, 1, &facts).await.unwrap().ids
            }
        };

        // More cases than one statement takes: ids come back in input order.
        let many: Vec<CaseFacts> = (0..150)
            .map(|i| case(&format!("full:c{i:03}"), &[("suite", "s")]))
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
            stored_labels(&db, first).await,
            (labels.clone(), vec!["suite=s".into()])
        );

        // The same facts again: the same case, as it was.
        let again = upsert(vec![case("full:c000", &[("suite", "s")])]).await;
        assert_eq!(again, vec![first]);
        assert_eq!(stored_labels(&db, first).await.0, labels);

        // Other labels replace the stored ones.
        upsert(vec![case("full:c000", &[("tag", "b"), ("tag", "a")])]).await;
        assert_eq!(
            stored_labels(&db, first).await,
            (
                r#"[{"name":"tag","value":"b"},{"name":"tag","value":"a"}]"#.into(),
                vec!["tag=a".into(), "tag=b".into()]
            )
        );
        // Known and new cases in one call: the new one gets its labels, the
        // known one (labels unchanged) keeps its own.
        let mixed = upsert(vec![
            case("full:c000", &[("tag", "b"), ("tag", "a")]),
            case("full:c150", &[("suite", "n")]),
        ])
        .await;
        assert_eq!(mixed[0], first);
        assert_eq!(
            stored_labels(&db, mixed[1]).await,
            (
                r#"[{"name":"suite","value":"n"}]"#.into(),
                vec!["suite=n".into()]
            )
        );
        assert_eq!(stored_labels(&db, first).await.1, vec!["tag=a", "tag=b"]);
        let n: i64 = sqlx::query("SELECT COUNT(*) AS n FROM test_cases")
            .fetch_one(&db.read)
            .await
            .unwrap()
            .get("n");
        assert_eq!(n, 151);
    }
}

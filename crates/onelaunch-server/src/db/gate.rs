//! The quality gate's storage: rules per project and per plan, the verdict
//! stored on a launch at close, the Allure plugin's failed rules, and the
//! measurements only SQL can make (new failures against an earlier launch).

use onelaunch_api::{self as api, Id};

use super::*;
use crate::error::ServerResult;

fn rules_from(text: Option<String>) -> Option<api::GateRules> {
    text.and_then(|t| serde_json::from_str(&t).ok())
        .filter(|r: &api::GateRules| !r.is_empty() || r.failure_statuses.is_some())
}

fn rules_text(rules: &api::GateRules) -> Option<String> {
    if rules.is_empty() && rules.failure_statuses.is_none() {
        None
    } else {
        serde_json::to_string(rules).ok()
    }
}

/// A project's default rules, if it has any.
pub(crate) async fn project_rules(db: &Db, project_id: Id) -> ServerResult<Option<api::GateRules>> {
    let r = sqlx::query("SELECT gate_rules FROM projects WHERE id = $1")
        .bind(project_id)
        .fetch_optional(&db.read)
        .await?;
    Ok(rules_from(r.and_then(|r| opt_str(&r, "gate_rules"))))
}

/// Replaces a project's default rules (no rule at all removes them).
pub(crate) async fn set_project_rules(
    db: &Db,
    project_id: Id,
    rules: &api::GateRules,
) -> ServerResult<()> {
    sqlx::query("UPDATE projects SET gate_rules = $1 WHERE id = $2")
        .bind(rules_text(rules))
        .bind(project_id)
        .execute(&db.write)
        .await?;
    Ok(())
}

/// A plan's rules, if it has any.
pub(crate) async fn plan_rules(db: &Db, plan_id: Id) -> ServerResult<Option<api::GateRules>> {
    let r = sqlx::query("SELECT gate_rules FROM test_plans WHERE id = $1")
        .bind(plan_id)
        .fetch_optional(&db.read)
        .await?;
    Ok(rules_from(r.and_then(|r| opt_str(&r, "gate_rules"))))
}

/// Replaces a plan's rules (no rule at all removes them).
pub(crate) async fn set_plan_rules(
    db: &Db,
    plan_id: Id,
    rules: &api::GateRules,
) -> ServerResult<()> {
    sqlx::query("UPDATE test_plans SET gate_rules = $1, modified_ms = $2 WHERE id = $3")
        .bind(rules_text(rules))
        .bind(now_ms())
        .bind(plan_id)
        .execute(&db.write)
        .await?;
    Ok(())
}

/// The verdict stored when the launch closed, if any.
pub(crate) async fn stored_report(db: &Db, launch_id: Id) -> ServerResult<Option<api::GateReport>> {
    let r = sqlx::query("SELECT gate_report FROM launches WHERE id = $1")
        .bind(launch_id)
        .fetch_optional(&db.read)
        .await?;
    Ok(r.and_then(|r| opt_str(&r, "gate_report"))
        .and_then(|t| serde_json::from_str(&t).ok()))
}

/// Stores the verdict of a launch (`None` clears it: the launch reopened).
pub(crate) async fn store_report(
    db: &Db,
    launch_id: Id,
    report: Option<&api::GateReport>,
) -> ServerResult<()> {
    sqlx::query("UPDATE launches SET gate_report = $1 WHERE id = $2")
        .bind(report.and_then(|r| serde_json::to_string(r).ok()))
        .bind(launch_id)
        .execute(&db.write)
        .await?;
    Ok(())
}

/// The failed rules the Allure 3 TestOps plugin reported for a launch.
pub(crate) async fn allure_items(db: &Db, launch_id: Id) -> ServerResult<Vec<api::AllureGateItem>> {
    let r = sqlx::query("SELECT allure_gate FROM launches WHERE id = $1")
        .bind(launch_id)
        .fetch_optional(&db.read)
        .await?;
    Ok(r.and_then(|r| opt_str(&r, "allure_gate"))
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_default())
}

/// Most Allure quality-gate items kept per launch.
pub(crate) const MAX_ALLURE_ITEMS: usize = 200;

/// Adds failed rules reported by the Allure 3 plugin (unique by rule and
/// environment, as the plugin sends them; a re-sent item replaces its
/// message).
pub(crate) async fn add_allure_items(
    db: &Db,
    launch_id: Id,
    items: &[api::AllureGateItem],
) -> ServerResult<()> {
    let mut tx = db.write.begin().await?;
    let r = sqlx::query("SELECT allure_gate FROM launches WHERE id = $1")
        .bind(launch_id)
        .fetch_optional(&mut *tx)
        .await?;
    let mut all: Vec<api::AllureGateItem> = r
        .and_then(|r| opt_str(&r, "allure_gate"))
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_default();
    for item in items {
        let item = api::AllureGateItem {
            name: clip(&item.name, 255),
            message: item.message.as_deref().map(|m| clip(m, MAX_TEXT)),
            named_env_id: item.named_env_id,
        };
        let known = all
            .iter()
            .position(|a| a.name == item.name && a.named_env_id == item.named_env_id);
        match known {
            Some(i) => all[i].message = item.message,
            None if all.len() < MAX_ALLURE_ITEMS => all.push(item),
            None => {}
        }
    }
    sqlx::query("UPDATE launches SET allure_gate = $1 WHERE id = $2")
        .bind(serde_json::to_string(&all).unwrap_or_else(|_| "[]".into()))
        .bind(launch_id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}

/// The closed launch of the same project and name closed before this one
/// was created, if any (the baseline for new failures).
pub(crate) async fn previous_closed_launch(
    db: &Db,
    project_id: Id,
    name: &str,
    launch_id: Id,
) -> ServerResult<Option<Id>> {
    let r = sqlx::query(
        "SELECT id FROM launches WHERE project_id = $1 AND name = $2 AND closed = 1 AND id < $3 \
         ORDER BY id DESC LIMIT 1",
    )
    .bind(project_id)
    .bind(name)
    .bind(launch_id)
    .fetch_optional(&db.read)
    .await?;
    Ok(match r {
        Some(r) => Some(get_i64(&r, "id")?),
        None => None,
    })
}

/// Tests whose latest attempt in `launch_id` has one of `statuses` while
/// their latest attempt in `previous` passed (matched by test key: the same
/// test of the same job). Returns how many, and the names of the first
/// `limit`.
pub(crate) async fn new_failures(
    db: &Db,
    launch_id: Id,
    previous: Id,
    statuses: &[String],
    limit: usize,
) -> ServerResult<(i64, Vec<String>)> {
    if statuses.is_empty() {
        return Ok((0, Vec::new()));
    }
    let list: Vec<String> = (0..statuses.len()).map(|i| format!("${}", i + 3)).collect();
    let from = format!(
        "FROM test_results t WHERE t.launch_id = $1 AND t.manual = 0 \
         AND t.status IN ({}) AND {} AND EXISTS (SELECT 1 FROM test_results p \
         WHERE p.launch_id = $2 AND p.test_key = t.test_key AND p.status = 'passed' \
         AND NOT EXISTS (SELECT 1 FROM test_results q WHERE q.launch_id = p.launch_id \
         AND q.test_key = p.test_key AND (COALESCE(q.start_ms, 0) > COALESCE(p.start_ms, 0) \
         OR (COALESCE(q.start_ms, 0) = COALESCE(p.start_ms, 0) AND q.id > p.id))))",
        list.join(", "),
        super::launches::LATEST
    );
    let count_sql = format!("SELECT COUNT(*) AS n {from}");
    let mut q = sqlx::query(&count_sql).bind(launch_id).bind(previous);
    for s in statuses {
        q = q.bind(s.as_str());
    }
    let n = get_i64(&q.fetch_one(&db.read).await?, "n")?;
    let names_sql = format!("SELECT t.name AS name {from} ORDER BY t.name LIMIT {limit}");
    let mut q = sqlx::query(&names_sql).bind(launch_id).bind(previous);
    for s in statuses {
        q = q.bind(s.as_str());
    }
    let names = q
        .fetch_all(&db.read)
        .await?
        .iter()
        .map(|r| get_str(r, "name"))
        .collect::<ServerResult<Vec<_>>>()?;
    Ok((n, names))
}

/// The first `limit` tests (by name) whose latest attempt has one of
/// `statuses`.
pub(crate) async fn failing_tests(
    db: &Db,
    launch_id: Id,
    statuses: &[String],
    limit: usize,
) -> ServerResult<Vec<String>> {
    if statuses.is_empty() {
        return Ok(Vec::new());
    }
    let list: Vec<String> = (0..statuses.len()).map(|i| format!("${}", i + 2)).collect();
    let sql = format!(
        "SELECT t.name AS name FROM test_results t WHERE t.launch_id = $1 AND t.status IN ({}) \
         AND {} ORDER BY t.name LIMIT {limit}",
        list.join(", "),
        super::launches::LATEST
    );
    let mut q = sqlx::query(&sql).bind(launch_id);
    for s in statuses {
        q = q.bind(s.as_str());
    }
    q.fetch_all(&db.read)
        .await?
        .iter()
        .map(|r| get_str(r, "name"))
        .collect()
}

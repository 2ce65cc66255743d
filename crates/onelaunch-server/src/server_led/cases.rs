//! Test cases as the server-led domain uses them: validating a case filter
//! and loading the cases a request names. (Their identity and tracking from
//! uploads live in `ingest::test_cases`.)

use onelaunch_api::{self as api, Id};

use super::*;
use crate::db::test_cases::*;
use crate::db::Db;
use crate::error::{ServerError, ServerResult};

pub(crate) fn status_list() -> String {
    api::STATUSES.join(", ")
}

/// Checks a filter; `field` names it in messages (`filter`, `query`).
pub(crate) fn validate_filter(f: &api::TestCaseFilter, field: &str) -> ServerResult<()> {
    at_most(
        &format!("{field}.labels"),
        f.labels.len(),
        crate::ingest::limits::MAX_LIST,
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

/// The named cases of a project, in the order asked; an unknown or foreign id
/// is refused naming `field`.
pub(crate) async fn cases_by_ids(
    db: &Db,
    project_id: Id,
    ids: &[Id],
    field: &str,
) -> ServerResult<Vec<CaseRow>> {
    super::at_most(field, ids.len(), super::MAX_CASE_IDS)?;
    crate::db::test_cases::load_cases_by_ids(db, project_id, ids, field).await
}

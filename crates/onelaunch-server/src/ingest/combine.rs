//! Combining launches: a new launch that holds the results of several launches
//! of one project (each source's job runs kept as job runs, its sessions,
//! results, attachments, fixtures and globals copied as rows; attachment bytes
//! are shared through their sha256, nothing is stored twice). The sources are
//! only read; they link to the combined launch, and deleting the combined
//! launch leaves them as they were.

use onelaunch_api::Id;

use crate::db::launches::LaunchRow;
use crate::db::{self, clip, Db, MAX_NAME};
use crate::error::{ServerError, ServerResult};

/// The most launches one combine takes.
pub(crate) const MAX_SOURCES: usize = 20;

/// The ids a request names, repeats removed, in the order given; checks their
/// number before anything is loaded.
pub(crate) fn source_ids(ids: &[Id]) -> ServerResult<Vec<Id>> {
    let mut out: Vec<Id> = Vec::new();
    for id in ids {
        if !out.contains(id) {
            out.push(*id);
        }
        if out.len() > MAX_SOURCES {
            return Err(ServerError::bad(format!(
                "field `launchIds` names more than {MAX_SOURCES} launches"
            )));
        }
    }
    Ok(out)
}

/// Combines `sources` (loaded through the caller's scope, at least two, all
/// of one project) into a new closed launch named `name`; answers its id.
pub(crate) async fn combine(db: &Db, sources: &[LaunchRow], name: &str) -> ServerResult<Id> {
    let name = clip(name.trim(), MAX_NAME);
    if name.is_empty() {
        return Err(ServerError::bad("field `name` must not be empty"));
    }
    let Some(first) = sources.first() else {
        return Err(ServerError::bad("field `launchIds` names no launch"));
    };
    if sources.len() < 2 {
        return Err(ServerError::bad(
            "field `launchIds` must name at least two different launches",
        ));
    }
    if sources.iter().any(|l| l.project_id != first.project_id) {
        return Err(ServerError::bad(
            "field `launchIds` names launches of different projects; combine launches of one project",
        ));
    }
    let mut tags: Vec<String> = Vec::new();
    for t in sources.iter().flat_map(|l| &l.tags) {
        if !tags.contains(t) && tags.len() < 50 {
            tags.push(t.clone());
        }
    }
    let ids: Vec<Id> = sources.iter().map(|l| l.id).collect();
    let id = db::combine::combine(db, first.project_id, &name, &tags, &ids).await?;
    // A wake for the web UI's order (`db::ui_order`); the count only weighs
    // when a long upload settles it.
    db.settler.stored(1);
    tracing::info!(launch = id, sources = ?ids, "launches combined");
    Ok(id)
}

//! The one isolation rule. A [`Scope`] is who is asking: an admin token (every
//! project) or a project token (one project). Every object a request names is
//! loaded through a fetcher here, which checks it against the scope; another
//! project's id answers 404, exactly like an id that does not exist, so a
//! project token cannot even learn that it exists. The API gets a `Scope` from
//! the `Authorization` header (`api::auth`), the UI from the login session
//! (`ui::session::Viewer`); both call the same fetchers.

use onelaunch_api::Id;

use crate::db::{self, Db};
use crate::error::{ServerError, ServerResult};

/// Who is asking.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Scope {
    /// The API token behind the request (for the log and token management).
    pub(crate) token_id: Id,
    /// `None` for admin tokens.
    pub(crate) project_id: Option<Id>,
}

impl Scope {
    pub(crate) fn is_admin(&self) -> bool {
        self.project_id.is_none()
    }

    pub(crate) fn require_admin(&self) -> ServerResult<()> {
        if self.is_admin() {
            Ok(())
        } else {
            Err(ServerError::Forbidden(
                "this needs an admin token; project tokens cannot manage projects".into(),
            ))
        }
    }

    /// Anything in another project is answered as not found.
    pub(crate) fn check_project(&self, project_id: Id, what: &str, id: Id) -> ServerResult<()> {
        match self.project_id {
            Some(p) if p != project_id => Err(ServerError::not_found(what, id)),
            _ => Ok(()),
        }
    }

    /// The project a list request is about: the given one, else the token's
    /// own, else project 1 (the default project).
    pub(crate) fn project_or_default(&self, given: Option<Id>) -> Id {
        given.or(self.project_id).unwrap_or(1)
    }

    /// Checks that a project exists and is visible.
    pub(crate) async fn project(&self, db: &Db, id: Id) -> ServerResult<()> {
        self.check_project(id, "project", id)?;
        if !db::projects::project_exists(db, id).await? {
            return Err(ServerError::not_found("project", id));
        }
        Ok(())
    }

    /// The project a list page is about ([`Scope::project_or_default`]),
    /// checked to exist and be visible.
    pub(crate) async fn list_project(&self, db: &Db, given: Option<Id>) -> ServerResult<Id> {
        let id = self.project_or_default(given);
        self.project(db, id).await?;
        Ok(id)
    }

    pub(crate) async fn launch(&self, db: &Db, id: Id) -> ServerResult<db::launches::LaunchRow> {
        let l = db::launches::get_launch(db, id)
            .await?
            .ok_or_else(|| ServerError::not_found("launch", id))?;
        self.check_project(l.project_id, "launch", id)?;
        Ok(l)
    }

    pub(crate) async fn job_run(&self, db: &Db, id: Id) -> ServerResult<db::job_runs::JobRunRow> {
        let r = db::job_runs::get_job_run(db, id)
            .await?
            .ok_or_else(|| ServerError::not_found("job run", id))?;
        self.check_project(r.project_id, "job run", id)?;
        Ok(r)
    }

    pub(crate) async fn job(&self, db: &Db, id: Id) -> ServerResult<db::job_runs::JobRow> {
        let job = db::job_runs::get_job(db, id)
            .await?
            .ok_or_else(|| ServerError::not_found("job", id))?;
        self.check_project(job.project_id, "job", id)?;
        Ok(job)
    }

    pub(crate) async fn session(&self, db: &Db, id: Id) -> ServerResult<db::results::SessionRow> {
        let s = db::results::get_session(db, id)
            .await?
            .ok_or_else(|| ServerError::not_found("test session", id))?;
        self.check_project(s.project_id, "test session", id)?;
        Ok(s)
    }

    pub(crate) async fn result(&self, db: &Db, id: Id) -> ServerResult<db::results::ResultOwner> {
        let r = db::results::result_owner(db, id)
            .await?
            .ok_or_else(|| ServerError::not_found("test result", id))?;
        self.check_project(r.project_id, "test result", id)?;
        Ok(r)
    }

    /// The owners of several results in one query; a result of another
    /// project is absent, as one that does not exist.
    pub(crate) async fn results(
        &self,
        db: &Db,
        ids: &[Id],
    ) -> ServerResult<std::collections::HashMap<Id, db::results::ResultOwner>> {
        let mut owners = db::result_rows::result_owners(db, ids).await?;
        owners.retain(|_, o| {
            self.check_project(o.project_id, "test result", o.id)
                .is_ok()
        });
        Ok(owners)
    }

    /// The result a fixture belongs to; a fixture of another project is not found.
    pub(crate) async fn fixture_result(
        &self,
        db: &Db,
        fixture_id: Id,
    ) -> ServerResult<db::results::ResultOwner> {
        let not_found = || ServerError::not_found("test fixture result", fixture_id);
        let result_id = db::results::fixture_result_id(db, fixture_id)
            .await?
            .ok_or_else(not_found)?;
        self.result(db, result_id).await.map_err(|_| not_found())
    }

    /// An attachment (where its bytes are and what they are); one of another
    /// project, or of a result that is gone, is not found.
    pub(crate) async fn attachment(
        &self,
        db: &Db,
        id: Id,
    ) -> ServerResult<db::results::AttachmentMeta> {
        let not_found = || ServerError::not_found("attachment", id);
        let a = db::results::attachment(db, id)
            .await?
            .ok_or_else(not_found)?;
        match self.result(db, a.result_id).await {
            Ok(_) => Ok(a),
            Err(ServerError::NotFound(_)) => Err(not_found()),
            Err(e) => Err(e),
        }
    }

    /// An attachment outside any test (Allure 3 globals); one of another
    /// project is not found.
    pub(crate) async fn global_attachment(
        &self,
        db: &Db,
        id: Id,
    ) -> ServerResult<db::globals::GlobalAttachmentRow> {
        let a = db::globals::attachment(db, id)
            .await?
            .ok_or_else(|| ServerError::not_found("attachment", id))?;
        self.check_project(a.project_id, "attachment", id)?;
        Ok(a)
    }

    pub(crate) async fn plan(&self, db: &Db, id: Id) -> ServerResult<db::plans::PlanRow> {
        let plan = db::plans::get_plan(db, id)
            .await?
            .ok_or_else(|| ServerError::not_found("test plan", id))?;
        self.check_project(plan.project_id, "test plan", id)?;
        Ok(plan)
    }

    pub(crate) async fn test_case(
        &self,
        db: &Db,
        id: Id,
    ) -> ServerResult<crate::db::test_cases::CaseRow> {
        let case = db::test_cases::get_case(db, id)
            .await?
            .ok_or_else(|| ServerError::not_found("test case", id))?;
        self.check_project(case.project_id, "test case", id)?;
        Ok(case)
    }
}

/// Longest expiry a token may be given (`expiresInDays`).
pub(crate) const MAX_TOKEN_DAYS: i64 = 3650;

/// When a new token expires: `expiresInDays` (1..=3650) or `expiresAt` (epoch
/// ms, in the future and at most that far), never both; neither: never.
pub(crate) fn token_expiry(
    req: &onelaunch_api::TokenCreate,
    now: i64,
) -> ServerResult<Option<i64>> {
    const DAY_MS: i64 = 24 * 3600 * 1000;
    match (req.expires_in_days, req.expires_at) {
        (Some(_), Some(_)) => Err(ServerError::bad(
            "give at most one of the fields `expiresInDays` and `expiresAt`",
        )),
        (Some(d), None) if !(1..=MAX_TOKEN_DAYS).contains(&d) => Err(ServerError::bad(format!(
            "field `expiresInDays`: expected 1 to {MAX_TOKEN_DAYS}, got {d}"
        ))),
        (Some(d), None) => Ok(Some(now + d * DAY_MS)),
        (None, Some(at)) if at <= now => Err(ServerError::bad(format!(
            "field `expiresAt`: {at} (epoch milliseconds) is not in the future"
        ))),
        (None, Some(at)) if at > now + MAX_TOKEN_DAYS * DAY_MS => Err(ServerError::bad(format!(
            "field `expiresAt`: at most {MAX_TOKEN_DAYS} days from now"
        ))),
        (None, at) => Ok(at),
    }
}

/// Token management: admin only (a project token gets 403), for the API and
/// the UI alike.
impl Scope {
    pub(crate) async fn list_tokens(&self, db: &Db) -> ServerResult<Vec<onelaunch_api::TokenDto>> {
        self.require_admin()?;
        db::tokens::list_tokens(db).await
    }

    /// A new token: for `project` (checked to exist), else an admin token.
    pub(crate) async fn create_token(
        &self,
        db: &Db,
        req: &onelaunch_api::TokenCreate,
    ) -> ServerResult<onelaunch_api::TokenIssued> {
        self.require_admin()?;
        let name = req.name.as_deref().map(str::trim).unwrap_or_default();
        if name.is_empty() {
            return Err(ServerError::bad("field `name` is required"));
        }
        let expires = token_expiry(req, db::now_ms())?;
        if let Some(p) = req.project_id {
            self.project(db, p).await?;
        }
        db::tokens::create_token(db, name, req.project_id, expires).await
    }

    /// Revokes a token (idempotent); see `db::tokens::revoke_token`.
    pub(crate) async fn revoke_token(
        &self,
        db: &Db,
        id: Id,
    ) -> ServerResult<onelaunch_api::TokenDto> {
        self.require_admin()?;
        let t = db::tokens::revoke_token(db, id, db::now_ms()).await?;
        tracing::info!(api_token = id, by = self.token_id, "API token revoked");
        Ok(t)
    }
}

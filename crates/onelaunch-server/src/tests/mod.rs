//! The in-process test harness: a [`TestApp`] is the real router (`app()`) on
//! the state `Server::start` builds over a fresh SQLite data directory; tests
//! send it requests with `tower::ServiceExt::oneshot`, without a socket.

mod attempts;
mod body_budget;
mod bulk_attachments;
mod case_last;
mod ci_story;
mod compare;
mod edges;
mod errors;
mod gate;
mod globals;
mod group_commit;
mod isolation;
mod layering;
mod lifecycle;
mod manual;
mod openapi;
mod owner_checks;
mod owner_locks;
/// The throwaway PostgreSQL cluster of the end-to-end tests, shared.
#[path = "../../../../tests/e2e/pg.rs"]
mod pg;
mod planned;
mod raw_upload;
mod reruns;
mod sessions;
mod small_blobs;
mod storage;
mod stored_result;
mod tokens;
mod ui_order;

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use axum::Router;
use serde_json::{json, Value};
use tower::ServiceExt;

use crate::{AppState, Server, ServerConfig};

/// The admin token every [`TestApp`] is bootstrapped with.
pub(crate) const ADMIN: &str = "test-admin-token-5b9e2c7d";

/// A server without a socket, on its own temporary data directory.
pub(crate) struct TestApp {
    router: Router,
    pub(crate) state: AppState,
    _dir: tempfile::TempDir,
}

/// An answer: its status and its body (JSON, else the text as a JSON string,
/// `null` when empty).
#[derive(Debug)]
pub(crate) struct Reply {
    pub(crate) status: StatusCode,
    pub(crate) body: Value,
}

impl Reply {
    /// The machine-readable error code of an error answer.
    pub(crate) fn code(&self) -> Option<&str> {
        self.body.get("code").and_then(Value::as_str)
    }

    pub(crate) fn message(&self) -> &str {
        self.body
            .get("message")
            .and_then(Value::as_str)
            .unwrap_or_default()
    }

    /// An integer field of the body; panics naming the answer when absent.
    pub(crate) fn id(&self, field: &str) -> i64 {
        self.body[field]
            .as_i64()
            .unwrap_or_else(|| panic!("no integer `{field}` in {} {}", self.status, self.body))
    }

    /// Asserts the status, showing the body when it differs.
    #[track_caller]
    pub(crate) fn expect(self, status: u16) -> Reply {
        assert_eq!(self.status.as_u16(), status, "answer body: {}", self.body);
        self
    }
}

/// Waits (without a time limit on the outcome, only on a hang) until `done`.
pub(crate) async fn until(what: &str, done: impl Fn() -> bool) {
    for _ in 0..10_000 {
        if done() {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(1)).await;
    }
    panic!("never happened: {what}");
}

/// A launch with a job run `run_uid` of the job `acme/shop/ci` in project
/// `project_id`, and an upload session of that job run, through the data
/// layer: `(launch id, session)`.
pub(crate) async fn job_run_session(
    db: &crate::db::Db,
    project_id: i64,
    run_uid: &str,
) -> (i64, crate::db::results::SessionRow) {
    use crate::db::{self, job_runs::StartOutcome};
    use onelaunch_api as api;
    let start = api::ExternalRunStart {
        project_id,
        ci: None,
        job: api::JobRef {
            uid: "acme/shop/ci".into(),
            ..Default::default()
        },
        job_run: api::JobRef {
            uid: run_uid.into(),
            ..Default::default()
        },
        launch: Some(api::LaunchRef {
            name: Some(run_uid.into()),
            ..Default::default()
        }),
        implicit: false,
    };
    let StartOutcome::Ok(run) = db::job_runs::start_run(db, &start).await.unwrap() else {
        panic!("launch closed")
    };
    let launch = db::launches::get_launch(db, run.launch_id)
        .await
        .unwrap()
        .unwrap();
    let session = crate::ingest::open_session(db, &launch, Some(run.job_run_id), &[], None, false)
        .await
        .unwrap();
    (run.launch_id, session)
}

/// A SQLite database in a file of its own (what [`rewound`] takes), with the
/// bootstrap project and a job run session [`job_run_session`]:
/// `(directory, url, db, launch id, session)`.
pub(crate) async fn file_db_session(
    run_uid: &str,
) -> (
    tempfile::TempDir,
    String,
    crate::db::Db,
    i64,
    crate::db::results::SessionRow,
) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("f.db").display());
    let db = crate::db::Db::connect(&url).await.unwrap();
    crate::db::projects::bootstrap(&db, Some("before"))
        .await
        .unwrap();
    let (launch, session) = job_run_session(&db, 1, run_uid).await;
    (dir, url, db, launch, session)
}

/// Closes `db` and runs `statements` on its SQLite file `url`: a database
/// made to look as an earlier migration left it.
pub(crate) async fn rewound(db: crate::db::Db, url: &str, statements: &[&str]) {
    use sqlx::Connection;
    db.read.close().await;
    db.write.close().await;
    drop(db);
    let mut raw = sqlx::SqliteConnection::connect(url).await.unwrap();
    for sql in statements {
        sqlx::query(sql).execute(&mut raw).await.unwrap();
    }
    raw.close().await.unwrap();
}

/// One multipart part named `file`.
pub(crate) fn multipart(file_name: &str, content: &str) -> (String, Vec<u8>) {
    const BOUNDARY: &str = "onelaunch-test-boundary";
    let body = format!(
        "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{file_name}\"\r\n\
         Content-Type: text/plain\r\n\r\n{content}\r\n--{BOUNDARY}--\r\n"
    );
    (
        format!("multipart/form-data; boundary={BOUNDARY}"),
        body.into_bytes(),
    )
}

impl TestApp {
    /// Starts the server's state (migrations, secret key, bootstrap with the
    /// [`ADMIN`] token, blob store) exactly as `onelaunch server` does.
    pub(crate) async fn new() -> TestApp {
        Self::with_config(|_| {}).await
    }

    /// [`TestApp::new`] on a fresh database `name` of a PostgreSQL cluster.
    pub(crate) async fn on_postgres(cluster: &pg::PgCluster, name: &str) -> TestApp {
        let url = cluster.database(name);
        Self::with_config(|c| c.database_url = Some(url)).await
    }

    /// [`TestApp::new`] with settings changed by `change`.
    pub(crate) async fn with_config(change: impl FnOnce(&mut ServerConfig)) -> TestApp {
        let dir = tempfile::tempdir().unwrap();
        let mut config = ServerConfig {
            listen: "127.0.0.1:0".into(),
            data_dir: dir.path().join("data"),
            public_url: Some("http://onelaunch.test".into()),
            init_token: Some(ADMIN.into()),
            ..Default::default()
        };
        change(&mut config);
        let Server { state, .. } = Server::start(&config).await.unwrap();
        TestApp {
            router: crate::app(state.clone()),
            state,
            _dir: dir,
        }
    }

    /// Sends a request with an optional `api-token` and body.
    pub(crate) async fn send(
        &self,
        method: Method,
        uri: &str,
        token: Option<&str>,
        content_type: Option<&str>,
        body: Vec<u8>,
    ) -> Reply {
        let mut req = Request::builder().method(method).uri(uri);
        if let Some(t) = token {
            req = req.header(header::AUTHORIZATION, format!("api-token {t}"));
        }
        if let Some(ct) = content_type {
            req = req.header(header::CONTENT_TYPE, ct);
        }
        let resp = self
            .router
            .clone()
            .oneshot(req.body(Body::from(body)).unwrap())
            .await
            .unwrap();
        let status = resp.status();
        let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
            .await
            .unwrap();
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
        };
        Reply { status, body }
    }

    pub(crate) async fn get(&self, uri: &str, token: &str) -> Reply {
        self.send(Method::GET, uri, Some(token), None, Vec::new())
            .await
    }

    /// A JSON request.
    pub(crate) async fn json(&self, method: Method, uri: &str, token: &str, body: &Value) -> Reply {
        self.send(
            method,
            uri,
            Some(token),
            Some("application/json"),
            serde_json::to_vec(body).unwrap(),
        )
        .await
    }

    pub(crate) async fn post(&self, uri: &str, token: &str, body: &Value) -> Reply {
        self.json(Method::POST, uri, token, body).await
    }

    /// A multipart upload of one file.
    pub(crate) async fn upload(
        &self,
        uri: &str,
        token: &str,
        file_name: &str,
        content: &str,
    ) -> Reply {
        let (ct, body) = multipart(file_name, content);
        self.send(Method::POST, uri, Some(token), Some(&ct), body)
            .await
    }

    /// Creates a project (as admin) and returns its id.
    pub(crate) async fn create_project(&self, name: &str) -> i64 {
        self.post("/api/project", ADMIN, &json!({ "name": name }))
            .await
            .expect(200)
            .id("id")
    }

    /// Creates a launch named `name` in `project` and an upload session in
    /// it (as `token`); returns `(launch id, session id)`.
    pub(crate) async fn launch_session(&self, token: &str, project: i64, name: &str) -> (i64, i64) {
        let launch = self
            .post(
                "/api/launch",
                token,
                &json!({"name": name, "projectId": project}),
            )
            .await
            .expect(200)
            .id("id");
        let session = self
            .post("/api/upload/session", token, &json!({"launchId": launch}))
            .await
            .expect(200)
            .id("id");
        (launch, session)
    }

    /// Uploads `results` into upload session `session` (as `token`, expecting
    /// 200); returns their ids in the server's answer (`resultIds`).
    pub(crate) async fn upload_results(
        &self,
        token: &str,
        session: i64,
        results: &[Value],
    ) -> Vec<i64> {
        self.post(
            "/api/upload/test-result",
            token,
            &json!({"testSessionId": session, "results": results}),
        )
        .await
        .expect(200)
        .body["resultIds"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_i64().unwrap())
            .collect()
    }

    /// The test case named `name` in `project`, as `GET /api/testcase/{id}`
    /// answers the admin.
    pub(crate) async fn test_case(&self, project: i64, name: &str) -> Value {
        let id = self
            .get(
                &format!("/api/testcase?projectId={project}&name={name}"),
                ADMIN,
            )
            .await
            .expect(200)
            .body["content"][0]["id"]
            .as_i64()
            .unwrap();
        self.get(&format!("/api/testcase/{id}"), ADMIN)
            .await
            .expect(200)
            .body
    }

    /// Starts job run `run` of job `job` in `project` as `token`
    /// (`/api/upload/start`, CI type `github`), into launch `launch` or a new
    /// one named after the job; the reply holds `launchId`, `jobId` and
    /// `jobRunId`.
    pub(crate) async fn start_job_run(
        &self,
        token: &str,
        project: i64,
        job: &str,
        run: &str,
        launch: Option<i64>,
    ) -> Reply {
        let launch = match launch {
            Some(id) => json!({"id": id}),
            None => json!({"name": format!("{job} run")}),
        };
        let body = json!({
            "projectId": project,
            "ci": {"type": "github"},
            "job": {"uid": job, "name": job},
            "jobRun": {"uid": run, "name": run},
            "launch": launch,
        });
        self.post("/api/upload/start", token, &body)
            .await
            .expect(200)
    }

    /// Holds the admins' whole room for result batches in decoded form (the
    /// half of `ingest::limits::DECODE_BUDGET` an admin's batch takes from):
    /// an admin's batch waits until it is dropped.
    pub(crate) async fn hold_decoding(&self) -> crate::ingest::Share {
        self.state
            .decoding
            .share(
                crate::ingest::Sender::of(None),
                crate::ingest::limits::DECODE_BUDGET,
            )
            .await
            .unwrap()
    }

    /// Creates a project token (as admin).
    pub(crate) async fn project_token(&self, project: i64) -> String {
        let reply = self
            .post(&format!("/api/project/{project}/token"), ADMIN, &json!({}))
            .await
            .expect(201);
        reply.body["token"].as_str().unwrap().to_string()
    }
}

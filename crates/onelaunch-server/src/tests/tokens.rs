//! Token lifecycle: names, expiry, last use, revocation (API, Bearer, UI
//! sessions), the admin-only token routes and page, and the init token.

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use serde_json::{json, Value};
use tower::ServiceExt;

use super::{Reply, TestApp, ADMIN};
use crate::{Server, ServerConfig};

async fn sql(app: &TestApp, q: &str) {
    sqlx::query(q).execute(&app.state.db.write).await.unwrap();
}

async fn bearer(app: &TestApp, access: &str) -> StatusCode {
    let req = Request::get("/api/project")
        .header(header::AUTHORIZATION, format!("Bearer {access}"))
        .body(Body::empty())
        .unwrap();
    app.router.clone().oneshot(req).await.unwrap().status()
}

async fn exchange(app: &TestApp, token: &str) -> Reply {
    app.send(
        Method::POST,
        "/api/uaa/oauth/token",
        None,
        Some("application/x-www-form-urlencoded"),
        format!("grant_type=apitoken&scope=openid&token={token}").into_bytes(),
    )
    .await
}

fn listed(list: &Reply, id: i64) -> Value {
    list.body["content"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["id"] == id)
        .cloned()
        .unwrap_or_else(|| panic!("token {id} not listed: {}", list.body))
}

#[tokio::test]
async fn named_tokens_are_listed_used_and_revoked() {
    let app = TestApp::new().await;
    let created = app
        .post(
            "/api/token",
            ADMIN,
            &json!({"name": "nightly CI", "projectId": 1, "expiresInDays": 30}),
        )
        .await
        .expect(201);
    let (id, secret) = (
        created.id("id"),
        created.body["token"].as_str().unwrap().to_string(),
    );
    assert!(secret.starts_with("olp_") && secret.len() > 40);
    assert_eq!(created.body["name"], "nightly CI");
    assert_eq!(created.body["projectId"], 1);
    assert_eq!(created.body["status"], "active");
    assert!(created.body["lastUsedDate"].is_null());
    let day_ms = 24 * 3600 * 1000;
    let expires = created.id("expiresDate") - created.id("createdDate");
    assert!((30 * day_ms - 5_000..=30 * day_ms + 5_000).contains(&expires));

    // Listed without any secret or hash.
    let list = app.get("/api/token", ADMIN).await.expect(200);
    let text = list.body.to_string();
    assert!(!text.contains(&secret), "secret listed");
    assert!(!text.contains(&crate::db::projects::hash_token(&secret)));
    assert!(!text.contains("\"token\""), "{text}");
    let row = listed(&list, id);
    assert!(row["lastUsedDate"].is_null());
    let admin_row = listed(&list, 1);
    assert_eq!(admin_row["name"], "init");
    assert!(admin_row["projectId"].is_null());

    // Used: the last use is recorded.
    app.get("/api/launch?projectId=1", &secret)
        .await
        .expect(200);
    let row = listed(&app.get("/api/token", ADMIN).await, id);
    assert!(row["lastUsedDate"].as_i64().is_some(), "{row}");

    // An access token from the exchange, and a revocation ends both.
    let access = exchange(&app, &secret).await.expect(200);
    let access = access.body["access_token"].as_str().unwrap().to_string();
    assert_eq!(bearer(&app, &access).await, StatusCode::OK);
    let revoked = app
        .send(
            Method::DELETE,
            &format!("/api/token/{id}"),
            Some(ADMIN),
            None,
            vec![],
        )
        .await
        .expect(200);
    assert_eq!(revoked.body["status"], "revoked");
    let when = revoked.id("revokedDate");
    let r = app
        .get("/api/launch?projectId=1", &secret)
        .await
        .expect(401);
    assert_eq!(r.code(), Some("unauthorized"));
    assert_eq!(bearer(&app, &access).await, StatusCode::UNAUTHORIZED);
    exchange(&app, &secret).await.expect(401);
    // Idempotent: the first revocation time stays.
    let again = app
        .send(
            Method::DELETE,
            &format!("/api/token/{id}"),
            Some(ADMIN),
            None,
            vec![],
        )
        .await
        .expect(200);
    assert_eq!(again.id("revokedDate"), when);
    app.send(
        Method::DELETE,
        "/api/token/999999",
        Some(ADMIN),
        None,
        vec![],
    )
    .await
    .expect(404);
    let row = listed(&app.get("/api/token", ADMIN).await, id);
    assert_eq!(row["status"], "revoked");
}

#[tokio::test]
async fn token_requests_are_checked_and_admin_only() {
    let app = TestApp::new().await;
    for (body, field) in [
        (json!({}), "`name`"),
        (json!({"name": "  "}), "`name`"),
        (json!({"name": "x", "expiresInDays": 0}), "`expiresInDays`"),
        (
            json!({"name": "x", "expiresInDays": 5000}),
            "`expiresInDays`",
        ),
        (json!({"name": "x", "expiresAt": 1000}), "`expiresAt`"),
        (
            json!({"name": "x", "expiresInDays": 1, "expiresAt": 4_000_000_000_000i64}),
            "`expiresAt`",
        ),
        (
            json!({"name": "x", "expiresInDays": "soon"}),
            "expiresInDays",
        ),
    ] {
        let r = app.post("/api/token", ADMIN, &body).await.expect(400);
        assert!(r.message().contains(field), "{body}: {}", r.body);
    }
    app.post("/api/token", ADMIN, &json!({"name": "x", "projectId": 42}))
        .await
        .expect(404);
    // An admin token with an absolute expiry.
    let at = crate::db::now_ms() + 3_600_000;
    let admin2 = app
        .post(
            "/api/token",
            ADMIN,
            &json!({"name": "ops", "expiresAt": at}),
        )
        .await
        .expect(201);
    assert!(admin2.body["projectId"].is_null());
    assert_eq!(admin2.id("expiresDate"), at);

    // A project token gets 403 on every token route, about any token.
    let project = app.project_token(1).await;
    app.get("/api/token", &project).await.expect(403);
    app.post(
        "/api/token",
        &project,
        &json!({"name": "mine", "projectId": 1}),
    )
    .await
    .expect(403);
    app.send(Method::DELETE, "/api/token/1", Some(&project), None, vec![])
        .await
        .expect(403);

    // The project route still works, with an optional name and expiry.
    let named = app
        .post(
            "/api/project/1/token",
            ADMIN,
            &json!({"name": "deploy", "expiresInDays": 2}),
        )
        .await
        .expect(201);
    assert_eq!(named.body["name"], "deploy");
    assert_eq!(named.body["projectId"], 1);
    assert!(named.body["expiresDate"].as_i64().is_some());
    let empty = app
        .send(
            Method::POST,
            "/api/project/1/token",
            Some(ADMIN),
            None,
            vec![],
        )
        .await
        .expect(201);
    assert_eq!(empty.body["name"], "project 1");
    app.send(
        Method::POST,
        "/api/project/1/token",
        Some(ADMIN),
        Some("application/json"),
        b"null".to_vec(),
    )
    .await
    .expect(201);
    app.post("/api/project/1/token", ADMIN, &json!({"projectId": 99}))
        .await
        .expect(201);
}

#[tokio::test]
async fn expired_tokens_and_their_access_tokens_are_refused() {
    let app = TestApp::new().await;
    let created = app
        .post(
            "/api/token",
            ADMIN,
            &json!({"name": "short", "projectId": 1, "expiresInDays": 1}),
        )
        .await
        .expect(201);
    let (id, secret) = (
        created.id("id"),
        created.body["token"].as_str().unwrap().to_string(),
    );
    let access = exchange(&app, &secret).await.expect(200);
    let access = access.body["access_token"].as_str().unwrap().to_string();
    app.get("/api/project", &secret).await.expect(200);
    sql(
        &app,
        &format!("UPDATE api_tokens SET expires_ms = 1 WHERE id = {id}"),
    )
    .await;
    app.get("/api/project", &secret).await.expect(401);
    assert_eq!(bearer(&app, &access).await, StatusCode::UNAUTHORIZED);
    exchange(&app, &secret).await.expect(401);
    let row = listed(&app.get("/api/token", ADMIN).await, id);
    assert_eq!(row["status"], "expired");
}

#[tokio::test]
async fn last_use_is_written_at_most_once_a_minute() {
    let app = TestApp::new().await;
    let read = |app: &TestApp| {
        let db = app.state.db.clone();
        async move {
            crate::db::tokens::get_token(&db, 1)
                .await
                .unwrap()
                .unwrap()
                .last_used_date
        }
    };
    let recent = crate::db::now_ms() - 30_000;
    sql(
        &app,
        &format!("UPDATE api_tokens SET last_used_ms = {recent} WHERE id = 1"),
    )
    .await;
    app.get("/api/project", ADMIN).await.expect(200);
    assert_eq!(read(&app).await, Some(recent), "written within the minute");
    let old = crate::db::now_ms() - 120_000;
    sql(
        &app,
        &format!("UPDATE api_tokens SET last_used_ms = {old} WHERE id = 1"),
    )
    .await;
    app.get("/api/project", ADMIN).await.expect(200);
    assert!(read(&app).await.unwrap() > old + 100_000);
}

#[tokio::test]
async fn the_last_live_admin_token_cannot_be_revoked() {
    let app = TestApp::new().await;
    let r = app
        .send(Method::DELETE, "/api/token/1", Some(ADMIN), None, vec![])
        .await
        .expect(409);
    assert!(r.message().contains("last live admin token"), "{}", r.body);
    app.get("/api/project", ADMIN).await.expect(200);
}

#[tokio::test]
async fn a_revoked_init_token_stays_revoked_when_the_server_restarts_with_it() {
    let dir = tempfile::tempdir().unwrap();
    let config = ServerConfig {
        listen: "127.0.0.1:0".into(),
        data_dir: dir.path().join("data"),
        init_token: Some(ADMIN.into()),
        ..Default::default()
    };
    let first = Server::start(&config).await.unwrap();
    let app = TestApp {
        router: crate::app(first.state.clone()),
        state: first.state.clone(),
        _dir: tempfile::tempdir().unwrap(),
    };
    let other = app
        .post("/api/token", ADMIN, &json!({"name": "second admin"}))
        .await
        .expect(201);
    let other = other.body["token"].as_str().unwrap().to_string();
    app.send(Method::DELETE, "/api/token/1", Some(&other), None, vec![])
        .await
        .expect(200);
    drop((app, first));

    let second = Server::start(&config).await.unwrap();
    assert!(second.generated_token.is_none());
    let app = TestApp {
        router: crate::app(second.state.clone()),
        state: second.state.clone(),
        _dir: tempfile::tempdir().unwrap(),
    };
    app.get("/api/project", ADMIN).await.expect(401);
    app.get("/api/project", &other).await.expect(200);
    let list = app.get("/api/token", &other).await.expect(200);
    assert_eq!(list.body["content"].as_array().unwrap().len(), 2);

    // Another init token is not created either: admin tokens exist. (The
    // server before it lets go of the data directory's lock first.)
    drop(app);
    drop(second);
    let other_init = ServerConfig {
        init_token: Some("another-init-token-7f3a9c21".into()),
        ..config.clone()
    };
    let third = Server::start(&other_init).await.unwrap();
    let app = TestApp {
        router: crate::app(third.state.clone()),
        state: third.state.clone(),
        _dir: tempfile::tempdir().unwrap(),
    };
    app.get("/api/project", "another-init-token-7f3a9c21")
        .await
        .expect(401);

    // Recovery from the server host: a new admin token, straight into the database.
    let recovered = crate::create_admin_token(&config, "recovery")
        .await
        .unwrap();
    app.get("/api/token", &recovered).await.expect(200);
}

#[tokio::test]
async fn a_short_init_token_stops_the_start_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    for bad in ["admin", "nineteen-characters", "has a space in it, twenty+"] {
        let config = ServerConfig {
            listen: "127.0.0.1:0".into(),
            data_dir: dir.path().join("data"),
            init_token: Some(bad.into()),
            ..Default::default()
        };
        let err = Server::start(&config)
            .await
            .err()
            .expect("refused")
            .to_string();
        assert!(err.contains("--init-token"), "{err}");
        assert!(!err.contains(bad), "the token is shown: {err}");
    }
    let err = Server::start(&ServerConfig {
        listen: "127.0.0.1:0".into(),
        data_dir: dir.path().join("data"),
        init_token: Some("admin".into()),
        ..Default::default()
    })
    .await
    .err()
    .unwrap()
    .to_string();
    assert!(err.contains("at least 20 characters"), "{err}");
    assert!(
        !dir.path().join("data").exists(),
        "nothing created before the check"
    );
}

// ---------------------------------------------------------------- the UI page

/// A browser: its session cookie.
pub(super) async fn ui_login(app: &TestApp, token: &str) -> String {
    let login = app
        .router
        .clone()
        .oneshot(Request::get("/login").body(Body::empty()).unwrap())
        .await
        .unwrap();
    let cookie = cookie_value(&login, "ol_login");
    let req = Request::post("/login")
        .header(header::COOKIE, format!("ol_login={cookie}"))
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(format!(
            "csrf={cookie}&next=%2Ftokens&token={token}"
        )))
        .unwrap();
    let res = app.router.clone().oneshot(req).await.unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    cookie_value(&res, "ol_session")
}

pub(super) fn cookie_value(res: &axum::response::Response, name: &str) -> String {
    res.headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|c| c.strip_prefix(&format!("{name}=")))
        .map(|c| c.split(';').next().unwrap().to_string())
        .unwrap_or_else(|| panic!("no {name} cookie"))
}

/// (status, Location, body) of a UI request.
pub(super) async fn ui(
    app: &TestApp,
    method: Method,
    uri: &str,
    session: &str,
    form: &str,
) -> (u16, String, String) {
    let req = Request::builder()
        .method(method)
        .uri(uri)
        .header(header::COOKIE, format!("ol_session={session}"))
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(form.to_string()))
        .unwrap();
    let res = app.router.clone().oneshot(req).await.unwrap();
    let status = res.status().as_u16();
    let location = res
        .headers()
        .get(header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let body = axum::body::to_bytes(res.into_body(), usize::MAX)
        .await
        .unwrap();
    (
        status,
        location,
        String::from_utf8_lossy(&body).into_owned(),
    )
}

fn csrf_in(page: &str) -> String {
    let at = page.find("data-csrf=\"").expect("no csrf in the page") + "data-csrf=\"".len();
    page[at..].split('"').next().unwrap().to_string()
}

#[tokio::test]
async fn the_tokens_page_is_for_admins_and_shows_a_new_secret_once() {
    let app = TestApp::new().await;
    let admin = ui_login(&app, ADMIN).await;
    let (status, _, page) = ui(&app, Method::GET, "/tokens", &admin, "").await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("API tokens") && page.contains("init"));
    assert!(
        page.contains("href=\"/tokens\""),
        "admin navigation has Tokens"
    );
    let csrf = csrf_in(&page);

    // Create: the secret is on the answer page, once.
    let (status, _, created) = ui(
        &app,
        Method::POST,
        "/tokens",
        &admin,
        &format!("csrf={csrf}&name=ui+made&project=1&expires_days=7"),
    )
    .await;
    assert_eq!(status, 200, "{created}");
    let at = created.find("id=\"new-token-secret\">").unwrap() + "id=\"new-token-secret\">".len();
    let secret = created[at..].split('<').next().unwrap().to_string();
    assert!(secret.starts_with("olp_"), "{secret}");
    let (_, _, again) = ui(&app, Method::GET, "/tokens", &admin, "").await;
    assert!(again.contains("ui made") && !again.contains(&secret));
    // Bad input: 400 naming the field.
    let (status, _, bad) = ui(
        &app,
        Method::POST,
        "/tokens",
        &admin,
        &format!("csrf={csrf}&name=x&expires_days=0"),
    )
    .await;
    assert_eq!(status, 400);
    assert!(bad.contains("expiresInDays"), "{bad}");

    // A project token's session: 403, no Tokens link.
    let project = ui_login(&app, &secret).await;
    let (status, _, page) = ui(&app, Method::GET, "/tokens", &project, "").await;
    assert_eq!(status, 403, "{page}");
    let (_, _, launches) = ui(&app, Method::GET, "/launches", &project, "").await;
    assert!(!launches.contains("href=\"/tokens\""));
    let project_csrf = csrf_in(&launches);
    let (status, _, _) = ui(
        &app,
        Method::POST,
        "/tokens",
        &project,
        &format!("csrf={project_csrf}&name=mine&project=1"),
    )
    .await;
    assert_eq!(status, 403);
    let (status, _, _) = ui(
        &app,
        Method::POST,
        "/tokens/1/revoke",
        &project,
        &format!("csrf={project_csrf}"),
    )
    .await;
    assert_eq!(status, 403);

    // Revoke: CSRF-protected; the token's sessions end at once.
    let id: i64 = listed(&app.get("/api/token", ADMIN).await, 2)["id"]
        .as_i64()
        .unwrap();
    let (status, _, _) = ui(
        &app,
        Method::POST,
        &format!("/tokens/{id}/revoke"),
        &admin,
        "csrf=wrong",
    )
    .await;
    assert_eq!(status, 403);
    app.get("/api/project", &secret).await.expect(200);
    let (status, location, _) = ui(
        &app,
        Method::POST,
        &format!("/tokens/{id}/revoke"),
        &admin,
        &format!("csrf={csrf}"),
    )
    .await;
    assert_eq!((status, location.as_str()), (303, "/tokens"));
    app.get("/api/project", &secret).await.expect(401);
    let (status, location, _) = ui(&app, Method::GET, "/launches", &project, "").await;
    assert_eq!(status, 303);
    assert!(location.starts_with("/login"), "{location}");
}

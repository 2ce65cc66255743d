//! The UI's edges: where the login page sends a browser back to (`next`
//! never leaves the origin, never a 500) and a live stream that ends once its
//! session is logged out.

use std::time::Duration;

use axum::body::Body;
use axum::http::{header, Method, Request, Response};
use http_body_util::BodyExt;
use serde_json::json;
use tower::ServiceExt;

use super::{TestApp, ADMIN};

/// Sends a request with cookies (and optionally a form body), keeps nothing.
async fn request(
    app: &TestApp,
    method: Method,
    uri: &str,
    cookies: &str,
    form: Option<&str>,
) -> Response<Body> {
    let mut req = Request::builder().method(method).uri(uri);
    if !cookies.is_empty() {
        req = req.header(header::COOKIE, cookies);
    }
    let body = match form {
        Some(f) => {
            req = req.header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
            Body::from(f.to_string())
        }
        None => Body::empty(),
    };
    app.router
        .clone()
        .oneshot(req.body(body).unwrap())
        .await
        .unwrap()
}

/// The value of cookie `name` set by an answer.
fn set_cookie(res: &Response<Body>, name: &str) -> Option<String> {
    res.headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|c| c.strip_prefix(&format!("{name}=")))
        .map(|c| c.split(';').next().unwrap().to_string())
        .filter(|v| !v.is_empty())
}

fn form_encode(v: &str) -> String {
    url::form_urlencoded::byte_serialize(v.as_bytes()).collect()
}

/// Logs in through the form with `next`; returns the answer to the POST.
async fn login(app: &TestApp, next: &str) -> Response<Body> {
    let page = request(app, Method::GET, "/login", "", None).await;
    let csrf = set_cookie(&page, "ol_login").expect("login cookie");
    request(
        app,
        Method::POST,
        "/login",
        &format!("ol_login={csrf}"),
        Some(&format!(
            "token={ADMIN}&csrf={csrf}&next={}",
            form_encode(next)
        )),
    )
    .await
}

/// The answer is a redirect to a path of this origin, or a page; never a 5xx.
#[track_caller]
fn stays_on_origin(res: &Response<Body>, what: &str) {
    assert!(
        !res.status().is_server_error(),
        "{what}: answered {}",
        res.status()
    );
    if let Some(loc) = res.headers().get(header::LOCATION) {
        let loc = loc.to_str().unwrap();
        let b = loc.as_bytes();
        assert!(
            b.first() == Some(&b'/')
                && !matches!(b.get(1), Some(b'/' | b'\\'))
                && loc.chars().all(|c| c.is_ascii_graphic() && c != '\\'),
            "{what}: redirects to {loc:?}"
        );
    }
}

const HOSTILE_NEXT: &[&str] = &[
    "/\t/evil.example",
    "/%09/evil.example",
    "/\n/evil.example",
    "/%0d%0aSet-Cookie:%20x=1",
    "/\r\nLocation: https://evil.example",
    "//evil.example",
    "/\\evil.example",
    "/%5C/evil.example",
    "/%2F/evil.example",
    " //evil.example",
    "https://evil.example/",
    "javascript:alert(1)",
];

#[tokio::test]
async fn next_after_login_never_leaves_the_origin() {
    let app = TestApp::new().await;
    let mut session = String::new();
    for next in HOSTILE_NEXT {
        let res = login(&app, next).await;
        assert_eq!(res.status(), 303, "login with next={next:?}");
        stays_on_origin(&res, &format!("login with next={next:?}"));
        assert_eq!(res.headers()[header::LOCATION], "/", "next={next:?}");
        session = set_cookie(&res, "ol_session").expect("session cookie");
    }
    // A logged-in browser sent to the login page goes to `next` at once.
    for next in HOSTILE_NEXT {
        let uri = format!("/login?next={}", form_encode(next));
        let res = request(
            &app,
            Method::GET,
            &uri,
            &format!("ol_session={session}"),
            None,
        )
        .await;
        stays_on_origin(&res, &uri);
        assert_eq!(res.headers()[header::LOCATION], "/", "{uri}");
    }
    // A local path still works.
    let res = login(&app, "/launches?project=1").await;
    assert_eq!(res.headers()[header::LOCATION], "/launches?project=1");
}

#[tokio::test]
async fn a_live_stream_ends_after_logout() {
    let app = TestApp::new().await;
    let launch = app
        .post(
            "/api/launch",
            ADMIN,
            &json!({"name": "live", "projectId": 1}),
        )
        .await
        .expect(200)
        .id("id");
    let res = login(&app, "/launches").await;
    let cookie = format!("ol_session={}", set_cookie(&res, "ol_session").unwrap());
    let stream = request(
        &app,
        Method::GET,
        &format!("/launch/{launch}/events"),
        &cookie,
        None,
    )
    .await;
    assert_eq!(stream.status(), 200);
    let mut body = stream.into_body();
    let first = body.frame().await.unwrap().unwrap().into_data().unwrap();
    assert!(first.starts_with(b"event: update"), "{first:?}");

    // The CSRF token of the session, from a page's form.
    let page = request(&app, Method::GET, "/launches", &cookie, None).await;
    let html = String::from_utf8(
        page.into_body()
            .collect()
            .await
            .unwrap()
            .to_bytes()
            .to_vec(),
    )
    .unwrap();
    let marker = "name=\"csrf\" value=\"";
    let i = html.find(marker).expect("a form with a CSRF field") + marker.len();
    let csrf = html[i..].split('"').next().unwrap();
    let out = request(
        &app,
        Method::POST,
        "/logout",
        &cookie,
        Some(&format!("csrf={csrf}")),
    )
    .await;
    assert_eq!(out.status(), 303);

    // The stream ends by itself (keep-alive comments aside).
    let ended = tokio::time::timeout(Duration::from_secs(15), async {
        while let Some(frame) = body.frame().await {
            let data = frame.unwrap().into_data().unwrap_or_default();
            assert!(
                !data.starts_with(b"event:"),
                "an event after logout: {data:?}"
            );
        }
    })
    .await;
    assert!(ended.is_ok(), "the live stream kept running after logout");
}

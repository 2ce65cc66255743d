//! What requests hold in memory is bounded all together: a JSON body takes
//! its share (before it is read when its length is announced, else as it
//! arrives) and keeps it until its answer, and one project's requests hold at
//! most half (`ingest::limits::Room::json_bodies`); batches waiting to be decoded
//! and decoded raw result files keep theirs too; a login is small. Bodies
//! here stream in and then stall, as a hostile token's would.

use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{header, Method, Request};
use axum::Router;
use futures::StreamExt;
use serde_json::json;
use tower::ServiceExt;

use super::*;
use crate::ingest::limits::{Room, JSON_BODIES_BUDGET, MAX_JSON_BODY};

const MIB: usize = 1024 * 1024;

/// The app with a short wait for room (503 `busy` after it).
fn router(app: &TestApp) -> (Router, Room) {
    let mut state = app.state.clone();
    state.json_bodies = Room::json_bodies(Duration::from_millis(200));
    (crate::app(state.clone()), state.json_bodies)
}

/// A JSON body that sends `mib` MiB and then nothing, ever.
fn stalled_body(mib: usize) -> Body {
    let chunk = Bytes::from(vec![b' '; MIB]);
    let sent = futures::stream::iter((0..mib).map(move |_| Ok::<_, std::io::Error>(chunk.clone())));
    Body::from_stream(sent.chain(futures::stream::pending()))
}

async fn post(router: &Router, token: &str, body: Body) -> Reply {
    let req = Request::builder()
        .method(Method::POST)
        .uri("/api/launch")
        .header(header::AUTHORIZATION, format!("api-token {token}"))
        .header(header::CONTENT_TYPE, "application/json")
        .body(body)
        .unwrap();
    let resp = router.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
        .await
        .unwrap();
    Reply {
        status,
        body: serde_json::from_slice(&bytes).unwrap_or_default(),
    }
}

fn launch(project: i64) -> Body {
    Body::from(json!({"name": "mine", "projectId": project}).to_string())
}

#[tokio::test]
async fn a_project_holds_at_most_half_of_the_room_for_json_bodies() {
    let app = TestApp::new().await;
    let (router, room) = router(&app);
    let total = JSON_BODIES_BUDGET / 1024;
    let (p1, p2) = (
        app.create_project("one").await,
        app.create_project("two").await,
    );
    let (hostile, other) = (app.project_token(p1).await, app.project_token(p2).await);

    // Project 1 sends a body of all but one MiB of its half, and stalls.
    let held = MAX_JSON_BODY / MIB - 1;
    let stalled = tokio::spawn({
        let (router, hostile) = (router.clone(), hostile.clone());
        async move { post(&router, &hostile, stalled_body(held)).await }
    });
    let until = tokio::time::Instant::now() + Duration::from_secs(30);
    while room.available_kib() > total - held * 1024 && tokio::time::Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(
        room.available_kib(),
        total - held * 1024,
        "the stalled body's share"
    );

    // Its next body finds no room in its half: 503 `busy` once it waited.
    let r = post(&router, &hostile, stalled_body(2)).await.expect(503);
    assert_eq!(r.code(), Some("busy"), "{}", r.body);
    // Another project's request goes in, and gives its share back when answered.
    post(&router, &other, launch(p2)).await.expect(200);
    assert_eq!(room.available_kib(), total - held * 1024);
    // So does an admin's.
    post(&router, ADMIN, launch(p1)).await.expect(200);

    // Once the stalled request is gone, its share is back.
    stalled.abort();
    assert!(stalled.await.unwrap_err().is_cancelled());
    assert_eq!(room.available_kib(), total);
    post(&router, &hostile, launch(p1)).await.expect(200);
}

/// A body announced larger than a JSON request may be is refused before any
/// of it is read.
#[tokio::test]
async fn a_body_announced_too_large_is_refused_unread() {
    let app = TestApp::new().await;
    let (router, room) = router(&app);
    let req = Request::builder()
        .method(Method::POST)
        .uri("/api/launch")
        .header(header::AUTHORIZATION, format!("api-token {ADMIN}"))
        .header(header::CONTENT_LENGTH, MAX_JSON_BODY + 1)
        .body(stalled_body(0))
        .unwrap();
    let resp = router.oneshot(req).await.unwrap();
    assert_eq!(resp.status(), 413);
    assert_eq!(room.available_kib(), JSON_BODIES_BUDGET / 1024);
}

/// A result batch of unknown length (no `Content-Length`) waiting for room
/// to be decoded keeps its body's share meanwhile: bodies waiting there are
/// bounded too.
#[tokio::test]
async fn a_batch_waiting_to_be_decoded_keeps_its_bodys_share() {
    let app = TestApp::new().await;
    let mut state = app.state.clone();
    state.json_bodies = Room::json_bodies(Duration::from_millis(200));
    let room = state.json_bodies.clone();
    let router = crate::app(state.clone());
    let total = JSON_BODIES_BUDGET / 1024;
    let all = app.hold_decoding().await;

    let mut body = br#"{"testSessionId": 999999, "results": [], "pad": ""#.to_vec();
    body.resize(100 * 1024, b'x');
    body.extend_from_slice(b"\"}");
    let kib = body.len().div_ceil(1024);
    let waiting = tokio::spawn({
        let router = router.clone();
        async move {
            let req = Request::builder()
                .method(Method::POST)
                .uri("/api/upload/test-result")
                .header(header::AUTHORIZATION, format!("api-token {ADMIN}"))
                .body(Body::from(body))
                .unwrap();
            router.oneshot(req).await.unwrap().status()
        }
    });
    let until = tokio::time::Instant::now() + Duration::from_secs(30);
    while room.available_kib() > total - kib && tokio::time::Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(room.available_kib(), total - kib);
    assert!(!waiting.is_finished());
    drop(all);
    assert_eq!(waiting.await.unwrap(), 404);
    assert_eq!(room.available_kib(), total);
}

/// A result batch of announced length takes its room to be decoded before
/// its body is read: while the room is held, the body stays unread (in its
/// connection, not in the server's memory) and takes no share of the room
/// for JSON bodies; once the room comes back it is read and answered.
#[tokio::test]
async fn a_batch_of_known_length_waits_for_room_before_its_body_is_read() {
    let app = TestApp::new().await;
    let total = JSON_BODIES_BUDGET / 1024;
    let all = app.hold_decoding().await;

    let mut body = br#"{"testSessionId": 999999, "results": [], "pad": ""#.to_vec();
    body.resize(100 * 1024, b'x');
    body.extend_from_slice(b"\"}");
    let len = body.len();
    let read = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let waiting = tokio::spawn({
        let (router, read) = (app.router.clone(), read.clone());
        async move {
            let chunks = futures::stream::once(async move {
                read.store(true, std::sync::atomic::Ordering::Release);
                Ok::<_, std::io::Error>(Bytes::from(body))
            });
            let req = Request::builder()
                .method(Method::POST)
                .uri("/api/upload/test-result")
                .header(header::AUTHORIZATION, format!("api-token {ADMIN}"))
                .header(header::CONTENT_LENGTH, len)
                .body(Body::from_stream(chunks))
                .unwrap();
            router.oneshot(req).await.unwrap().status()
        }
    });
    // Time for the request to get as far as it can.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!waiting.is_finished());
    assert!(
        !read.load(std::sync::atomic::Ordering::Acquire),
        "the body was read"
    );
    assert_eq!(app.state.json_bodies.available_kib(), total);
    drop(all);
    assert_eq!(waiting.await.unwrap(), 404);
    assert!(read.load(std::sync::atomic::Ordering::Acquire));
    assert_eq!(app.state.json_bodies.available_kib(), total);
}

/// A login is read before anyone is known: past 16 KiB it is refused (the
/// API's token exchange with 413, the web UI's form with 400), and a login
/// of the usual size still works.
#[tokio::test]
async fn a_login_larger_than_a_login_is_refused() {
    let app = TestApp::new().await;
    let max = crate::ingest::limits::MAX_LOGIN_BODY;
    let form = |pad: usize| format!("grant_type=apitoken&token={ADMIN}&pad={}", "x".repeat(pad));
    let exchange = |body: String| {
        Request::post("/api/uaa/oauth/token")
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from(body))
            .unwrap()
    };
    let res = app
        .router
        .clone()
        .oneshot(exchange(form(max)))
        .await
        .unwrap();
    assert_eq!(res.status(), 413);
    let res = app
        .router
        .clone()
        .oneshot(exchange(form(100)))
        .await
        .unwrap();
    assert_eq!(res.status(), 200);

    let page = app
        .router
        .clone()
        .oneshot(Request::get("/login").body(Body::empty()).unwrap())
        .await
        .unwrap();
    let csrf = super::tokens::cookie_value(&page, "ol_login");
    let login = |pad: usize| {
        Request::post("/login")
            .header(header::COOKIE, format!("ol_login={csrf}"))
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from(format!(
                "csrf={csrf}&token={ADMIN}&pad={}",
                "x".repeat(pad)
            )))
            .unwrap()
    };
    let res = app.router.clone().oneshot(login(max)).await.unwrap();
    assert_eq!(res.status(), 400);
    let res = app.router.clone().oneshot(login(100)).await.unwrap();
    assert_eq!(res.status(), 303);
}

/// A raw result file sent to `/upload/file` keeps its share of the room for
/// result files in memory after it is decoded, until the request is
/// answered: what it decoded into is held as long (here, while the next part
/// of the same request stalls).
#[tokio::test]
async fn a_decoded_raw_result_file_keeps_its_share_until_the_answer() {
    let app = TestApp::new().await;
    let (_, session) = app.launch_session(ADMIN, 1, "raw").await;
    let before = app.state.blobs.buffered_available();
    let boundary = "rawBoundary7";
    let mut result = br#"{"uuid":"raw-1","name":"t","status":"passed","description":""#.to_vec();
    result.resize(50 * 1024, b'd');
    result.extend_from_slice(b"\"}");
    let kib = result.len().div_ceil(1024);
    let mut first = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"raw-1-result.json\"\r\n\r\n"
    )
    .into_bytes();
    first.extend_from_slice(&result);
    first.extend_from_slice(
        format!(
            "\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"x-attachment.txt\"\r\n\r\nmore"
        )
        .as_bytes(),
    );
    let body = futures::stream::iter([Ok::<_, std::io::Error>(Bytes::from(first))])
        .chain(futures::stream::pending());
    let req = Request::builder()
        .method(Method::POST)
        .uri(format!("/api/upload/file?id={session}"))
        .header(header::AUTHORIZATION, format!("api-token {ADMIN}"))
        .header(
            header::CONTENT_TYPE,
            format!("multipart/form-data; boundary={boundary}"),
        )
        .body(Body::from_stream(body))
        .unwrap();
    let router = app.router.clone();
    let stalled = tokio::spawn(async move { router.oneshot(req).await });
    let until = tokio::time::Instant::now() + Duration::from_secs(30);
    while app.state.blobs.buffered_available() > before - kib && tokio::time::Instant::now() < until
    {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // Wait for the request to stall in its second part, then look again.
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(app.state.blobs.buffered_available(), before - kib);
    stalled.abort();
    let _ = stalled.await;
    assert_eq!(app.state.blobs.buffered_available(), before);
}

/// A launch of project 1 named `name`, padded to `size` bytes of JSON.
fn padded_launch(name: &str, size: usize) -> Bytes {
    let mut json = format!(r#"{{"name": "{name}", "projectId": 1, "pad": ""#).into_bytes();
    json.resize(size - 2, b'p');
    json.extend_from_slice(b"\"}");
    Bytes::from(json)
}

/// `json` as a body arriving 64 KiB at a time, each piece after a yield.
fn in_pieces(json: &Bytes) -> Body {
    let pieces: Vec<Bytes> = json.chunks(64 * 1024).map(Bytes::copy_from_slice).collect();
    Body::from_stream(futures::stream::iter(pieces).then(|piece| async move {
        tokio::task::yield_now().await;
        Ok::<_, std::io::Error>(piece)
    }))
}

/// Many bodies of one project at once, four times its half in all, each
/// arriving a piece at a time: every one is answered. A body of announced
/// length takes its whole share before it is read; bodies that each held
/// part of theirs while waiting for the rest would wait for each other.
#[tokio::test]
async fn bodies_of_one_project_larger_than_its_half_in_all_are_all_answered() {
    let app = TestApp::new().await;
    let token = app.project_token(1).await;
    let each = 4 * MIB;
    let n = 4 * MAX_JSON_BODY / each;
    let json = padded_launch("many", each);
    let requests: Vec<_> = (0..n)
        .map(|_| {
            let (router, token, json) = (app.router.clone(), token.clone(), json.clone());
            tokio::spawn(async move {
                let req = Request::builder()
                    .method(Method::POST)
                    .uri("/api/launch")
                    .header(header::AUTHORIZATION, format!("api-token {token}"))
                    .header(header::CONTENT_LENGTH, json.len())
                    .body(in_pieces(&json))
                    .unwrap();
                router.oneshot(req).await.unwrap().status()
            })
        })
        .collect();
    for r in requests {
        assert_eq!(r.await.unwrap(), 200);
    }
    assert_eq!(
        app.state.json_bodies.available_kib(),
        JSON_BODIES_BUDGET / 1024
    );
}

/// The same bodies without a length (chunked), with the server's own wait
/// for room (30 s): no body waits for the others until that wait runs out.
/// One waits for more room while it holds some; any other that finds no room
/// is refused at once, saying why, and gives back what it held; sent again
/// (as the CLI retries 503), every one is stored.
#[tokio::test]
async fn bodies_of_unknown_length_larger_than_the_half_in_all_are_answered_without_waiting_out() {
    let app = TestApp::new().await;
    let token = app.project_token(1).await;
    let each = 4 * MIB;
    let n = 4 * MAX_JSON_BODY / each;
    let json = padded_launch("chunked", each);
    let send = |router: Router, token: String, json: Bytes| async move {
        let req = Request::builder()
            .method(Method::POST)
            .uri("/api/launch")
            .header(header::AUTHORIZATION, format!("api-token {token}"))
            .body(in_pieces(&json))
            .unwrap();
        let resp = router.oneshot(req).await.unwrap();
        let status = resp.status();
        let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
            .await
            .unwrap();
        (status, String::from_utf8_lossy(&bytes).into_owned())
    };
    let mut left = n;
    let mut rounds = 0;
    while left > 0 {
        rounds += 1;
        assert!(rounds <= 50, "{left} bodies still refused after 50 rounds");
        let requests: Vec<_> = (0..left)
            .map(|_| tokio::spawn(send(app.router.clone(), token.clone(), json.clone())))
            .collect();
        for r in requests {
            let (status, body) = r.await.unwrap();
            match status.as_u16() {
                200 => left -= 1,
                503 => assert!(
                    body.contains("request bodies of unknown length"),
                    "a refusal after waiting out the room, not at once: {body}"
                ),
                other => panic!("{other}: {body}"),
            }
        }
    }
    let stored = app.get("/api/launch?projectId=1&size=1000", ADMIN).await;
    let chunked = stored.body["content"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l["name"] == "chunked")
        .count();
    assert_eq!(chunked, n);
    assert_eq!(
        app.state.json_bodies.available_kib(),
        JSON_BODIES_BUDGET / 1024
    );
}

/// Requests in flight are counted by who sends them: stalled logins
/// (anyone's) hold at most a quarter of the server's connections, stalled
/// bodies of a project token at most half; past that each is refused at once
/// with 503 `busy`, while the admins' and another project's requests are
/// served; places come back when requests end.
#[tokio::test]
async fn requests_in_flight_are_bounded_per_sender() {
    let app = TestApp::with_config(|c| c.max_connections = Some(8)).await;
    let one = app.project_token(1).await;
    let project_two = app.create_project("two").await;
    let two = app.project_token(project_two).await;
    let stalled_login = || {
        let router = app.router.clone();
        tokio::spawn(async move {
            let req = Request::post("/api/uaa/oauth/token")
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .header(header::CONTENT_LENGTH, "1000")
                .body(stalled_body(0))
                .unwrap();
            router.oneshot(req).await.unwrap().status()
        })
    };
    let stalled_launch = |token: String| {
        let router = app.router.clone();
        tokio::spawn(async move { post(&router, &token, stalled_body(0)).await.status })
    };
    let ui_login = |body: Body| {
        let router = app.router.clone();
        tokio::spawn(async move {
            let req = Request::post("/login")
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .header(header::CONTENT_LENGTH, "1000")
                .body(body)
                .unwrap();
            router.oneshot(req).await.unwrap().status()
        })
    };
    // Strangers a quarter (2: a login of the API and one of the web UI),
    // project 1 half (4).
    let logins: Vec<_> = [stalled_login(), ui_login(stalled_body(0))].into();
    let launches: Vec<_> = (0..4).map(|_| stalled_launch(one.clone())).collect();
    let placed = async {
        while app.state.requests.available() > 2 {
            tokio::task::yield_now().await;
        }
    };
    tokio::time::timeout(Duration::from_secs(30), placed)
        .await
        .expect("the stalled logins and launches never all held their places");
    assert_eq!(stalled_login().await.unwrap(), 503);
    assert_eq!(ui_login(stalled_body(0)).await.unwrap(), 503);
    let refused = post(&app.router, &one, launch(1)).await;
    assert_eq!(refused.status, 503, "{:?}", refused.body);
    assert!(
        refused.body["message"]
            .as_str()
            .unwrap()
            .contains("requests in flight"),
        "{:?}",
        refused.body
    );
    // Another project and the admins are still served.
    assert_eq!(
        post(&app.router, &two, launch(project_two)).await.status,
        200
    );
    assert_eq!(post(&app.router, ADMIN, launch(1)).await.status, 200);
    for t in logins.into_iter().chain(launches) {
        t.abort();
        assert!(t.await.unwrap_err().is_cancelled());
    }
    assert_eq!(app.state.requests.available(), 8);
    assert_eq!(post(&app.router, &one, launch(1)).await.status, 200);
}

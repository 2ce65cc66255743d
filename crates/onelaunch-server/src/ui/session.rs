//! Browser sessions and CSRF protection.
//!
//! Logging in with an API token creates a random session id; the browser keeps
//! it in an `HttpOnly; SameSite=Strict` cookie (`Secure` when the server is
//! reached over https), the database keeps only its SHA-256, so a session works
//! whichever replica answers. The CSRF token of a session is derived from the
//! session id (a keyed hash nobody can compute without the cookie) and checked
//! on every state-changing request by [`csrf_guard`], before any handler runs.
//! The login form itself is protected by a double-submit cookie.

use axum::body::{Body, Bytes};
use axum::extract::{FromRequestParts, Query, Request, State};
use axum::http::request::Parts;
use axum::http::{header, Extensions, HeaderMap, HeaderValue, Method};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Redirect, Response};
use maud::html;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::layout;
use super::{UiError, UiResult};
use crate::access::Scope;
use crate::db::now_ms;
use crate::db::projects::{hash_token, new_token};
use crate::db::ui_sessions;
use crate::ingest::limits::Requests;
use crate::AppState;

pub(super) const SESSION_COOKIE: &str = "ol_session";
const LOGIN_COOKIE: &str = "ol_login";
/// A session ends after this long without a request…
const IDLE_MS: i64 = 12 * 3600 * 1000;
/// …and at the latest this long after the login.
const ABSOLUTE_MS: i64 = 7 * 24 * 3600 * 1000;
/// `last_seen` is written at most this often (keeps reads read-only).
const TOUCH_EVERY_MS: i64 = 5 * 60 * 1000;
/// Largest form body the CSRF guard reads.
const MAX_FORM_BYTES: usize = 1024 * 1024;

/// A logged-in browser: who it is (the scope of the API token it logged in
/// with, checked by the same fetchers as the API) and its forms' CSRF token.
#[derive(Debug, Clone)]
pub(super) struct Viewer {
    pub scope: Scope,
    /// The CSRF token to put into this session's forms.
    pub csrf: String,
    /// The stored hash of the session id (long-lived answers re-check it).
    pub session_hash: String,
}

impl Viewer {
    /// Whether this browser's session still exists (not logged out, expired,
    /// or its API token deleted); false as well when the database fails.
    pub(super) async fn still_logged_in(&self, state: &AppState) -> bool {
        matches!(
            ui_sessions::find_session(&state.db, &self.session_hash, now_ms()).await,
            Ok(Some(_))
        )
    }
}

/// The value of a cookie in the request.
pub(super) fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

/// The CSRF token of a session id.
pub(super) fn csrf_of(session_id: &str) -> String {
    let mut h = Sha256::new();
    h.update(b"onelaunch-ui-csrf\0");
    h.update(session_id.as_bytes());
    hex::encode(&h.finalize()[..20])
}

/// Compares without stopping at the first difference.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// True when the browser reached us over https (directly, or through a proxy
/// that says so).
fn is_https(state: &AppState, headers: &HeaderMap) -> bool {
    state.public_url.starts_with("https://")
        || headers
            .get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.split(',').next().unwrap_or("").trim() == "https")
}

fn set_cookie(name: &str, value: &str, path: &str, max_age: i64, secure: bool) -> HeaderValue {
    let mut c =
        format!("{name}={value}; Path={path}; Max-Age={max_age}; HttpOnly; SameSite=Strict");
    if secure {
        c.push_str("; Secure");
    }
    HeaderValue::from_str(&c).expect("cookie header")
}

/// The session behind a request's cookie, if it is valid.
async fn lookup(state: &AppState, headers: &HeaderMap) -> UiResult<Option<Viewer>> {
    let Some(id) = cookie(headers, SESSION_COOKIE) else {
        return Ok(None);
    };
    let now = now_ms();
    let session_hash = hash_token(&id);
    let Some(s) = ui_sessions::find_session(&state.db, &session_hash, now).await? else {
        return Ok(None);
    };
    if now - s.last_seen_ms > TOUCH_EVERY_MS {
        let expires = (now + IDLE_MS).min(s.created_ms + ABSOLUTE_MS);
        ui_sessions::touch_session(&state.db, s.id, now, expires).await?;
    }
    let token = crate::db::tokens::TokenAuth {
        id: s.token_id,
        project_id: s.project_id,
        last_used_ms: s.token_last_used_ms,
    };
    crate::db::tokens::note_use(&state.db, &token, now).await;
    Ok(Some(Viewer {
        scope: Scope {
            token_id: s.token_id,
            project_id: s.project_id,
        },
        csrf: csrf_of(&id),
        session_hash,
    }))
}

impl FromRequestParts<AppState> for Viewer {
    type Rejection = UiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> UiResult<Viewer> {
        match lookup(state, &parts.headers).await? {
            Some(v) => {
                // A place among the requests in flight of the token's
                // project, as an API request of the same token takes.
                let sender = crate::ingest::Sender::of(v.scope.project_id);
                crate::ingest::held::take_place(parts, &state.requests, sender)?;
                Ok(v)
            }
            None => Err(UiError::Login {
                next: parts
                    .uri
                    .path_and_query()
                    .map(|p| p.as_str().to_string())
                    .unwrap_or_else(|| "/".into()),
            }),
        }
    }
}

/// Rejects every state-changing request that does not carry the CSRF token of
/// its session (header `X-CSRF-Token` or form field `csrf`), and a login that
/// does not carry the token of its login cookie.
pub(super) async fn csrf_guard(req: Request, next: Next) -> Response {
    if matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS) {
        return next.run(req).await;
    }
    // A login, which anyone can send, takes a stranger's place among the
    // requests in flight before its form is read, as the API's login does
    // (the server's `Requests`, left in the request by `ui::router`'s caller).
    let _place = match (req.uri().path(), req.extensions().get::<Requests>()) {
        ("/login", Some(requests)) => match requests.enter(crate::ingest::Sender::Stranger) {
            Ok(place) => Some(place),
            Err(e) => return UiError::from(e).into_response(),
        },
        _ => None,
    };
    let expected = if req.uri().path() == "/login" {
        cookie(req.headers(), LOGIN_COOKIE)
    } else {
        cookie(req.headers(), SESSION_COOKIE).map(|s| csrf_of(&s))
    };
    let header_token = req
        .headers()
        .get("x-csrf-token")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    if let Some(boundary) = multipart_boundary(req.headers()) {
        // A form with files: the token is its first part, read without
        // reading the files (they stream on to the handler).
        let (parts, body) = req.into_parts();
        let (first, rest) = match first_part(body, &boundary).await {
            Ok(v) => v,
            Err(e) => return e.into_response(),
        };
        let given = header_token.or(first.csrf);
        return match (expected, given) {
            (Some(e), Some(g)) if same(&e, &g) => {
                use futures::StreamExt;
                let body = Body::from_stream(
                    futures::stream::once(async move { Ok::<_, axum::Error>(first.read) })
                        .chain(rest),
                );
                next.run(Request::from_parts(parts, body)).await
            }
            (None, _) => UiError::Login { next: "/".into() }.into_response(),
            _ => csrf_failed(),
        };
    }
    let (parts, body) = req.into_parts();
    // The login form is read before anyone is known: a few fields.
    let max = if parts.uri.path() == "/login" {
        crate::ingest::limits::MAX_LOGIN_BODY
    } else {
        MAX_FORM_BYTES
    };
    let bytes: Bytes = match axum::body::to_bytes(body, max).await {
        Ok(b) => b,
        Err(_) => return UiError::BadRequest("the form is too large".into()).into_response(),
    };
    let given = header_token.or_else(|| {
        url::form_urlencoded::parse(&bytes)
            .find(|(k, _)| k == "csrf")
            .map(|(_, v)| v.into_owned())
    });
    match (expected, given) {
        (Some(e), Some(g)) if same(&e, &g) => {
            next.run(Request::from_parts(parts, Body::from(bytes)))
                .await
        }
        (None, _) if parts.uri.path() != "/login" => {
            // No session at all: same answer as any page without a login.
            UiError::Login { next: "/".into() }.into_response()
        }
        _ => csrf_failed(),
    }
}

fn csrf_failed() -> Response {
    UiError::Forbidden(
        "This form has expired or did not come from this site (CSRF check failed). \
         Reload the page and try again."
            .into(),
    )
    .into_response()
}

/// Most bytes read to find a multipart form's first part (the CSRF token).
const MAX_FIRST_PART: usize = 16 * 1024;

/// The boundary of a `multipart/form-data` body.
fn multipart_boundary(headers: &HeaderMap) -> Option<String> {
    let ct = headers.get(header::CONTENT_TYPE)?.to_str().ok()?;
    let mut parts = ct.split(';');
    if !parts
        .next()?
        .trim()
        .eq_ignore_ascii_case("multipart/form-data")
    {
        return None;
    }
    parts.find_map(|p| {
        let (k, v) = p.split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case("boundary")
            .then(|| v.trim().trim_matches('"').to_string())
            .filter(|b| !b.is_empty() && b.len() <= 70)
    })
}

/// The start of a multipart body: the bytes read so far (to be passed on
/// unchanged) and the value of its first part when that part is `csrf`.
struct FirstPart {
    read: Bytes,
    csrf: Option<String>,
}

/// Reads a multipart body until its first part has ended (at most
/// [`MAX_FIRST_PART`] bytes); the rest stays a stream.
async fn first_part(
    body: Body,
    boundary: &str,
) -> Result<
    (
        FirstPart,
        impl futures::Stream<Item = Result<Bytes, axum::Error>>,
    ),
    UiError,
> {
    use futures::StreamExt;
    let mut stream = body.into_data_stream();
    let mut read: Vec<u8> = Vec::new();
    let next_boundary = format!("\r\n--{boundary}");
    loop {
        if let Some(csrf) = csrf_of_first_part(&read, boundary, &next_boundary) {
            return Ok((
                FirstPart {
                    read: Bytes::from(read),
                    csrf,
                },
                stream,
            ));
        }
        if read.len() > MAX_FIRST_PART {
            return Ok((
                FirstPart {
                    read: Bytes::from(read),
                    csrf: None,
                },
                stream,
            ));
        }
        match stream.next().await {
            Some(Ok(chunk)) => read.extend_from_slice(&chunk),
            Some(Err(_)) => return Err(UiError::BadRequest("the form could not be read".into())),
            None => {
                let csrf = csrf_of_first_part(&read, boundary, &next_boundary).flatten();
                return Ok((
                    FirstPart {
                        read: Bytes::from(read),
                        csrf,
                    },
                    stream,
                ));
            }
        }
    }
}

/// `Some(token)` when `read` holds a whole first part named `csrf`,
/// `Some(None)` when it holds a whole first part of another name, `None`
/// while the first part has not ended.
fn csrf_of_first_part(read: &[u8], boundary: &str, next_boundary: &str) -> Option<Option<String>> {
    let opening = format!("--{boundary}\r\n");
    let rest = read.strip_prefix(opening.as_bytes())?;
    let head_end = find(rest, b"\r\n\r\n")?;
    let head = std::str::from_utf8(&rest[..head_end]).ok();
    let value = &rest[head_end + 4..];
    let end = find(value, next_boundary.as_bytes())?;
    let named_csrf = head.is_some_and(|h| {
        h.lines().any(|l| {
            let l = l.to_ascii_lowercase();
            l.starts_with("content-disposition:") && l.contains("name=\"csrf\"")
        })
    });
    Some(
        named_csrf
            .then(|| std::str::from_utf8(&value[..end]).ok().map(str::to_string))
            .flatten(),
    )
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[derive(Deserialize)]
pub(super) struct NextQuery {
    #[serde(default)]
    next: Option<String>,
}

/// Only a same-origin absolute path: starts with exactly one `/` (never `//host`
/// or `/\\host`), no scheme, and only visible ASCII without `\\` both as sent
/// and percent-decoded (so `/%09/host`, which browsers read as `//host`, and
/// a newline are refused). Anything else goes to `/`.
fn safe_next(next: Option<&str>) -> String {
    fn local(path: &str) -> bool {
        let b = path.as_bytes();
        b.first() == Some(&b'/')
            && !matches!(b.get(1), Some(b'/' | b'\\'))
            && path.chars().all(|c| c.is_ascii_graphic() && c != '\\')
    }
    match next {
        Some(n) => {
            let decoded = percent_decode(n);
            let raw_ok = local(n);
            // Decoding may bring non-ASCII characters (fine); only control,
            // whitespace, backslashes and a second leading slash are refused.
            let decoded_ok = decoded.starts_with('/')
                && !decoded.starts_with("//")
                && !decoded.starts_with("/\\")
                && !decoded
                    .chars()
                    .any(|c| c.is_control() || c.is_whitespace() || c == '\\');
            if raw_ok && decoded_ok {
                n.to_string()
            } else {
                "/".to_string()
            }
        }
        None => "/".to_string(),
    }
}

/// `%XX` sequences as the bytes they stand for (invalid ones kept as they are).
fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        match (
            b[i],
            b.get(i + 1).copied().and_then(hex),
            b.get(i + 2).copied().and_then(hex),
        ) {
            (b'%', Some(h), Some(l)) => {
                out.push((h * 16 + l) as u8);
                i += 3;
            }
            (c, _, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn login_form(next: &str, login_csrf: &str, error: Option<&str>, refresh: bool) -> Html<String> {
    layout::bare(
        "Log in",
        refresh,
        html! {
            main id="main" class="login" {
                h1 { "onelaunch" }
                p class="muted" { "Log in with an API token (admin or project token)." }
                @if let Some(e) = error {
                    p class="alert" role="alert" { (e) }
                }
                form method="post" action="/login" {
                    input type="hidden" name="csrf" value=(login_csrf);
                    input type="hidden" name="next" value=(next);
                    label for="token" { "API token" }
                    input id="token" name="token" type="password" autocomplete="current-password"
                        required autofocus spellcheck="false";
                    button type="submit" class="primary" { "Log in" }
                }
            }
        },
    )
}

pub(super) async fn login_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<NextQuery>,
) -> UiResult<Response> {
    let next = safe_next(q.next.as_deref());
    if lookup(&state, &headers).await?.is_some() {
        return Ok(Redirect::to(&next).into_response());
    }
    // A link followed from another site does not carry our SameSite=Strict
    // cookie; one same-site reload brings it along if the browser has it.
    let cross_site = headers
        .get("sec-fetch-site")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == "cross-site");
    let token = cookie(&headers, LOGIN_COOKIE).unwrap_or_else(|| new_token(""));
    let mut res = login_form(&next, &token, None, cross_site).into_response();
    res.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(
            LOGIN_COOKIE,
            &token,
            "/login",
            3600,
            is_https(&state, &headers),
        ),
    );
    Ok(res)
}

#[derive(Deserialize)]
pub(super) struct LoginForm {
    #[serde(default)]
    token: String,
    #[serde(default)]
    next: Option<String>,
}

pub(super) async fn login(
    State(state): State<AppState>,
    headers: HeaderMap,
    extensions: Extensions,
    axum::Form(form): axum::Form<LoginForm>,
) -> UiResult<Response> {
    let next = safe_next(form.next.as_deref());
    let client = state.throttle.client(&headers, &extensions);
    state.throttle.check(client)?;
    let secure = is_https(&state, &headers);
    let now = now_ms();
    let found = crate::db::tokens::find_api_token(&state.db, form.token.trim(), now).await?;
    let Some(found) = found else {
        state.throttle.failed(client);
        let login_csrf = cookie(&headers, LOGIN_COOKIE).unwrap_or_default();
        let mut res = login_form(
            &next,
            &login_csrf,
            Some("That token is not known to this server, or it was revoked or has expired."),
            false,
        )
        .into_response();
        *res.status_mut() = axum::http::StatusCode::UNAUTHORIZED;
        return Ok(res);
    };
    let token_id = found.id;
    crate::db::tokens::note_use(&state.db, &found, now).await;
    // Expired sessions go whenever somebody logs in.
    ui_sessions::delete_expired(&state.db, now).await?;
    let session = new_token("");
    ui_sessions::create_session(
        &state.db,
        &hash_token(&session),
        token_id,
        now,
        now + IDLE_MS,
    )
    .await?;
    tracing::info!(api_token = token_id, "web UI login");
    let mut res = Redirect::to(&next).into_response();
    let h = res.headers_mut();
    h.append(
        header::SET_COOKIE,
        // The browser keeps it up to the absolute limit; the server ends it
        // sooner when it is not used (idle timeout).
        set_cookie(SESSION_COOKIE, &session, "/", ABSOLUTE_MS / 1000, secure),
    );
    h.append(
        header::SET_COOKIE,
        set_cookie(LOGIN_COOKIE, "", "/login", 0, secure),
    );
    Ok(res)
}

pub(super) async fn logout(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> UiResult<Response> {
    if let Some(id) = cookie(&headers, SESSION_COOKIE) {
        ui_sessions::delete_session(&state.db, &hash_token(&id)).await?;
    }
    let mut res = Redirect::to("/login").into_response();
    res.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(SESSION_COOKIE, "", "/", 0, is_https(&state, &headers)),
    );
    Ok(res)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_next_and_csrf() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; ol_session=abc ; b=2"),
        );
        assert_eq!(cookie(&h, SESSION_COOKIE).as_deref(), Some("abc"));
        assert_eq!(cookie(&h, "c"), None);
        assert_eq!(safe_next(Some("/launch/3?x=1")), "/launch/3?x=1");
        for bad in [
            "//evil.example",
            "/\\evil.example",
            "https://evil.example",
            "/%09/evil.example",
            "/%0a",
            "/\n",
            "/%2F/evil.example",
            "/%5Cevil.example",
            " /launches",
            "/launches ",
            "/a b",
            "javascript:alert(1)",
            "",
        ] {
            assert_eq!(safe_next(Some(bad)), "/", "{bad:?}");
        }
        assert_eq!(safe_next(None), "/");
        assert_eq!(safe_next(Some("/launch/3?fp=a%2Cb")), "/launch/3?fp=a%2Cb");
        assert_eq!(
            safe_next(Some("/plans?q=a+b&x=%C3%A9")),
            "/plans?q=a+b&x=%C3%A9"
        );
        assert_ne!(csrf_of("a"), csrf_of("b"));
        assert_ne!(csrf_of("a"), hash_token("a"));
        assert!(same("abc", "abc") && !same("abc", "abd") && !same("abc", "ab"));
    }
}

//! A small recording HTTP server that behaves like the upload API by default;
//! each test can override answers.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::extract::{FromRequest, Multipart, Request, State};
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::Response;
use axum::Router;
use serde_json::{json, Value};
use url::Url;

use crate::{ApiClient, ClientConfig};

pub const TOKEN: &str = "tok-5ecret-value-123";

/// One multipart part as received.
#[derive(Debug, Clone)]
pub struct RecPart {
    pub name: String,
    pub file_name: Option<String>,
    pub content_type: Option<String>,
    pub bytes: Vec<u8>,
}

/// One request as received.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    pub query: String,
    pub auth: Option<String>,
    pub body: Vec<u8>,
    pub parts: Vec<RecPart>,
}

impl Recorded {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
}

/// An answer.
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub body: String,
}

impl Reply {
    pub fn new(status: u16, body: impl Into<String>) -> Self {
        Reply {
            status,
            headers: Vec::new(),
            body: body.into(),
        }
    }

    pub fn header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }
}

/// Decides an answer from the request and how many earlier requests had the
/// same method and path; `None` falls back to the default behaviour.
pub type Responder = Arc<dyn Fn(&Recorded, usize) -> Option<Reply> + Send + Sync>;

struct ServerState {
    log: Mutex<Vec<Recorded>>,
    delay_ms: AtomicU64,
    /// A delay for the requests whose path contains the text.
    path_delay: Mutex<Option<(String, u64)>>,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
    ids: Mutex<HashMap<String, i64>>,
    responder: Responder,
}

pub struct TestServer {
    pub url: Url,
    state: Arc<ServerState>,
}

impl TestServer {
    pub async fn start() -> Self {
        Self::with(|_, _| None).await
    }

    pub async fn with(
        responder: impl Fn(&Recorded, usize) -> Option<Reply> + Send + Sync + 'static,
    ) -> Self {
        let state = Arc::new(ServerState {
            log: Mutex::new(Vec::new()),
            delay_ms: AtomicU64::new(0),
            path_delay: Mutex::new(None),
            in_flight: AtomicUsize::new(0),
            max_in_flight: AtomicUsize::new(0),
            ids: Mutex::new(HashMap::new()),
            responder: Arc::new(responder),
        });
        let app = Router::new()
            .fallback(handle)
            .layer(axum::extract::DefaultBodyLimit::max(256 * 1024 * 1024))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        TestServer {
            url: Url::parse(&format!("http://{addr}")).unwrap(),
            state,
        }
    }

    pub fn client(&self) -> ApiClient {
        self.client_with(|_| {})
    }

    pub fn client_with(&self, tweak: impl FnOnce(&mut ClientConfig)) -> ApiClient {
        let mut config = ClientConfig::new(self.url.clone(), TOKEN);
        config.max_retries = 3;
        tweak(&mut config);
        ApiClient::new(config).unwrap()
    }

    /// Makes every answer wait this long (to observe concurrency).
    pub fn set_delay(&self, ms: u64) {
        self.state.delay_ms.store(ms, Ordering::SeqCst);
    }

    /// Answers the requests whose path contains `part` after `ms` (in place
    /// of [`TestServer::set_delay`] for them).
    pub fn set_delay_for(&self, part: &str, ms: u64) {
        *self.state.path_delay.lock().unwrap() = Some((part.to_string(), ms));
    }

    /// Most requests that were being handled at the same time.
    pub fn max_in_flight(&self) -> usize {
        self.state.max_in_flight.load(Ordering::SeqCst)
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.state.log.lock().unwrap().clone()
    }

    /// Requests with this method whose path ends with `suffix`.
    pub fn find(&self, method: &str, suffix: &str) -> Vec<Recorded> {
        self.requests()
            .into_iter()
            .filter(|r| r.method == method && r.path.ends_with(suffix))
            .collect()
    }

    /// Every byte the server received, bodies and parts.
    pub fn all_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for r in self.requests() {
            out.extend_from_slice(&r.body);
            for p in r.parts {
                out.extend_from_slice(&p.bytes);
            }
        }
        out
    }

    /// uuids sent in every test-result request, in request order.
    pub fn sent_uuids(&self) -> Vec<Vec<String>> {
        self.find("POST", "/api/upload/test-result")
            .iter()
            .map(|r| {
                r.json()["results"]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .map(|x| x["uuid"].as_str().unwrap_or_default().to_string())
                            .collect()
                    })
                    .unwrap_or_default()
            })
            .collect()
    }
}

fn default_reply(state: &ServerState, rec: &Recorded) -> Reply {
    let p = rec.path.as_str();
    match (rec.method.as_str(), p) {
        ("POST", "/api/upload/session") => {
            let body = rec.json();
            Reply::new(
                200,
                json!({
                    "id": 77,
                    "jobRunId": body["jobRunId"],
                    "launchId": body["launchId"].as_i64().unwrap_or(5),
                    "projectId": 1
                })
                .to_string(),
            )
        }
        ("POST", "/api/upload/test-result") => {
            let body = rec.json();
            let mut ids = state.ids.lock().unwrap();
            let mut results = Vec::new();
            let mut result_ids = Vec::new();
            for r in body["results"].as_array().cloned().unwrap_or_default() {
                let uuid = r["uuid"].as_str().unwrap_or_default().to_string();
                let next = ids.len() as i64 + 1000;
                let id = *ids.entry(uuid.clone()).or_insert(next);
                results.push(json!({"id": id, "uuid": uuid}));
                result_ids.push(id);
            }
            Reply::new(
                200,
                json!({"results": results, "resultIds": result_ids}).to_string(),
            )
        }
        ("POST", _) if p.ends_with("/attachment") => Reply::new(202, ""),
        ("POST", _) if p.ends_with("/test-fixture-result") => {
            Reply::new(202, json!({"resultIds": []}).to_string())
        }
        ("POST", _) if p.ends_with("/reopen") || p.ends_with("/close") => Reply::new(204, ""),
        _ => Reply::new(
            404,
            json!({"message": format!("no route {p}"), "status": 404}).to_string(),
        ),
    }
}

async fn handle(State(state): State<Arc<ServerState>>, req: Request) -> Response {
    let method = req.method().to_string();
    let path = req.uri().path().to_string();
    let query = req.uri().query().unwrap_or("").to_string();
    let header = |req: &Request, name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let auth = header(&req, "authorization");
    let content_type = header(&req, "content-type").unwrap_or_default();
    let mut rec = Recorded {
        method,
        path,
        query,
        auth,
        body: Vec::new(),
        parts: Vec::new(),
    };
    if content_type.starts_with("multipart/form-data") {
        let mut mp = Multipart::from_request(req, &()).await.unwrap();
        while let Some(field) = mp.next_field().await.unwrap() {
            let name = field.name().unwrap_or_default().to_string();
            let file_name = field.file_name().map(str::to_string);
            let content_type = field.content_type().map(str::to_string);
            let bytes = field.bytes().await.unwrap().to_vec();
            rec.parts.push(RecPart {
                name,
                file_name,
                content_type,
                bytes,
            });
        }
    } else {
        rec.body = axum::body::to_bytes(req.into_body(), usize::MAX)
            .await
            .unwrap()
            .to_vec();
    }
    let earlier = {
        let mut log = state.log.lock().unwrap();
        let n = log
            .iter()
            .filter(|r| r.method == rec.method && r.path == rec.path)
            .count();
        log.push(rec.clone());
        n
    };
    let now = state.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    state.max_in_flight.fetch_max(now, Ordering::SeqCst);
    let delay = match &*state.path_delay.lock().unwrap() {
        Some((part, ms)) if rec.path.contains(part.as_str()) => *ms,
        _ => state.delay_ms.load(Ordering::SeqCst),
    };
    if delay > 0 {
        tokio::time::sleep(std::time::Duration::from_millis(delay)).await;
    }
    state.in_flight.fetch_sub(1, Ordering::SeqCst);
    let reply = (state.responder)(&rec, earlier).unwrap_or_else(|| default_reply(&state, &rec));
    let mut resp = Response::new(Body::from(reply.body));
    *resp.status_mut() = StatusCode::from_u16(reply.status).unwrap();
    resp.headers_mut()
        .insert("content-type", HeaderValue::from_static("application/json"));
    for (k, v) in reply.headers {
        resp.headers_mut().insert(
            HeaderName::from_static(k),
            HeaderValue::from_str(&v).unwrap(),
        );
    }
    resp
}

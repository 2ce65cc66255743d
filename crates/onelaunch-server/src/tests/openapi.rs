//! The API description (`GET /api/openapi.json`) against the route table:
//! every registered route is described, every described route is
//! registered, and the document is served without a token.

use std::collections::BTreeSet;

use axum::http::{Method, StatusCode};
use serde_json::Value;

use super::isolation::routes_in;
use super::TestApp;

/// `(METHOD, path)` of every route of `routes()` (the routes under `/api`),
/// read from the route table's source.
fn api_routes() -> BTreeSet<(String, String)> {
    let src = include_str!("../api/mod.rs");
    let start = src
        .find("fn routes()")
        .expect("api/mod.rs has no `fn routes()`");
    routes_in(&src[start..])
}

/// `(METHOD, path)` of every operation of the document.
fn described(doc: &Value) -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, _) in item.as_object().expect("path item") {
            if ["get", "put", "post", "delete", "patch", "head", "options"]
                .contains(&method.as_str())
            {
                out.insert((method.to_uppercase(), path.clone()));
            }
        }
    }
    out
}

async fn fetch(app: &TestApp, uri: &str) -> Value {
    let reply = app.send(Method::GET, uri, None, None, Vec::new()).await;
    assert_eq!(reply.status, StatusCode::OK, "{uri}: {:?}", reply.body);
    reply.body
}

#[tokio::test]
async fn every_registered_route_is_described_and_every_described_route_is_registered() {
    let app = TestApp::new().await;
    let doc = fetch(&app, "/api/openapi.json").await;
    let routes = api_routes();
    assert!(
        routes.len() > 50,
        "route table read: {} routes",
        routes.len()
    );
    let described = described(&doc);
    let undescribed: Vec<_> = routes.difference(&described).collect();
    assert!(
        undescribed.is_empty(),
        "routes without a description (annotate the handler with #[utoipa::path] and list it in api/openapi.rs): {undescribed:?}"
    );
    let unregistered: Vec<_> = described.difference(&routes).collect();
    assert!(
        unregistered.is_empty(),
        "described routes that are not registered: {unregistered:?}"
    );
}

#[tokio::test]
async fn the_document_is_served_without_a_token_under_both_prefixes() {
    let app = TestApp::new().await;
    let doc = fetch(&app, "/api/openapi.json").await;
    assert_eq!(fetch(&app, "/api/rs/openapi.json").await, doc);
    assert!(
        doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.")),
        "{}",
        doc["openapi"]
    );
    assert_eq!(doc["servers"][0]["url"], "/api");
    // Every operation has a summary and a tag, and a unique operation id.
    let mut ids = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            assert!(op["summary"].is_string(), "{method} {path} has no summary");
            assert!(op["tags"][0].is_string(), "{method} {path} has no tag");
            let id = op["operationId"].as_str().unwrap().to_string();
            assert!(ids.insert(id.clone()), "operation id {id} twice");
            assert!(
                op["responses"]["4XX"].is_object(),
                "{method} {path} does not describe its errors"
            );
        }
    }
    // The token schemes, and the two operations that need none.
    let schemes = &doc["components"]["securitySchemes"];
    assert_eq!(schemes["api-token"]["type"], "apiKey");
    assert_eq!(schemes["api-token"]["name"], "Authorization");
    assert_eq!(schemes["bearer"]["scheme"], "bearer");
    assert_eq!(doc["security"][0]["api-token"], Value::Array(vec![]));
    for (method, path) in [("post", "/uaa/oauth/token"), ("get", "/openapi.json")] {
        assert_eq!(
            doc["paths"][path][method]["security"],
            serde_json::json!([{}]),
            "{method} {path} needs no token"
        );
    }
    // The wire types are described from their definitions.
    let schemas = &doc["components"]["schemas"];
    for field in ["message", "status", "timestamp", "code"] {
        assert!(
            schemas["ErrorBody"]["properties"][field].is_object(),
            "ErrorBody.{field}"
        );
    }
    assert!(schemas["LaunchDto"]["properties"]["projectId"].is_object());
    assert_eq!(
        doc["paths"]["/launch"]["post"]["requestBody"]["content"]["application/json"]["schema"]
            ["$ref"],
        "#/components/schemas/LaunchCreate"
    );
}

#[tokio::test]
async fn the_described_token_answers_a_described_route() {
    // What the document promises for GET /launch/{id} holds: 200 with a
    // `LaunchDto` for a token, an `ErrorBody` 401 without one.
    let app = TestApp::new().await;
    let project = app.create_project("described").await;
    let launch = app
        .post(
            "/api/launch",
            super::ADMIN,
            &serde_json::json!({"name": "l", "projectId": project}),
        )
        .await
        .expect(200)
        .id("id");
    let doc = fetch(&app, "/api/openapi.json").await;
    let required: Vec<&str> = doc["components"]["schemas"]["LaunchDto"]["required"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    let ok = app
        .get(&format!("/api/launch/{launch}"), super::ADMIN)
        .await;
    assert_eq!(ok.status, StatusCode::OK);
    for field in &required {
        assert!(
            !ok.body[field].is_null(),
            "LaunchDto.{field} is required but absent"
        );
    }
    let denied = app
        .send(
            Method::GET,
            &format!("/api/launch/{launch}"),
            None,
            None,
            Vec::new(),
        )
        .await;
    assert_eq!(denied.status, StatusCode::UNAUTHORIZED);
    let error_required = doc["components"]["schemas"]["ErrorBody"]["required"]
        .as_array()
        .unwrap();
    for field in error_required {
        let field = field.as_str().unwrap();
        assert!(!denied.body[field].is_null(), "ErrorBody.{field} absent");
    }
}

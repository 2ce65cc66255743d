//! Behaviour of [`ApiClient`] against a real HTTP server.

use std::time::{Duration, Instant};

use onelaunch_api::{LaunchCreate, SessionCreate};
use serde_json::json;

use super::server::{Reply, TestServer, TOKEN};
use crate::{ApiClient, AttachmentPart, ClientConfig, ClientError};

fn launch_json(id: i64) -> String {
    json!({
        "id": id, "name": "run", "closed": false, "external": true, "autoclose": true,
        "projectId": 1, "createdDate": 1, "lastModifiedDate": 2
    })
    .to_string()
}

#[tokio::test]
async fn retries_503_then_succeeds_and_authenticates() {
    let server = TestServer::with(|r, n| {
        (r.path == "/api/launch/9").then(|| {
            if n < 2 {
                Reply::new(503, "busy")
            } else {
                Reply::new(200, launch_json(9))
            }
        })
    })
    .await;
    let launch = server.client().get_launch(9).await.unwrap();
    assert_eq!(launch.id, 9);
    let reqs = server.find("GET", "/api/launch/9");
    assert_eq!(reqs.len(), 3);
    for r in reqs {
        assert_eq!(
            r.auth.as_deref(),
            Some(format!("api-token {TOKEN}").as_str())
        );
    }
}

#[tokio::test]
async fn posts_are_retried_too() {
    let server = TestServer::with(|r, n| {
        (r.path == "/api/launch").then(|| {
            if n == 0 {
                Reply::new(502, "")
            } else {
                Reply::new(200, launch_json(4))
            }
        })
    })
    .await;
    let create = LaunchCreate {
        name: "run".into(),
        project_id: 1,
        tags: vec!["a".into()],
        ..Default::default()
    };
    let launch = server.client().create_launch(&create).await.unwrap();
    assert_eq!(launch.id, 4);
    let reqs = server.find("POST", "/api/launch");
    assert_eq!(reqs.len(), 2);
    assert_eq!(reqs[1].json()["tags"], json!([{"name": "a"}]));
    assert_eq!(reqs[0].body, reqs[1].body);
}

#[tokio::test]
async fn honours_retry_after_on_429() {
    let server = TestServer::with(|r, n| {
        (r.path == "/api/launch/1/progress").then(|| {
            if n == 0 {
                Reply::new(429, "slow down").header("retry-after", "1")
            } else {
                Reply::new(200, r#"{"ready":true}"#)
            }
        })
    })
    .await;
    let started = Instant::now();
    let progress = server.client().launch_progress(1).await.unwrap();
    assert!(progress.ready);
    assert!(
        started.elapsed() >= Duration::from_millis(950),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(server.find("GET", "/progress").len(), 2);
}

#[tokio::test]
async fn unauthorized_is_not_retried_and_never_shows_the_token() {
    let server = TestServer::with(|_, _| {
        Some(Reply::new(
            401,
            json!({"message": format!("bad token {TOKEN}"), "status": 401}).to_string(),
        ))
    })
    .await;
    let err = server.client().get_launch(3).await.unwrap_err();
    assert!(matches!(err, ClientError::Unauthorized(_)), "{err:?}");
    let text = err.to_string();
    assert!(text.contains("GET /api/launch/3"), "{text}");
    assert!(text.contains("bad token"), "{text}");
    assert!(!text.contains(TOKEN), "{text}");
    assert!(!format!("{err:?}").contains(TOKEN));
    assert_eq!(server.requests().len(), 1);
}

#[tokio::test]
async fn server_errors_are_reported_after_the_retries() {
    let server = TestServer::with(|_, _| {
        Some(Reply::new(
            500,
            json!({"message": "database is down", "status": 500}).to_string(),
        ))
    })
    .await;
    let client = server.client_with(|c| c.max_retries = 2);
    let err = client.launch_statistic(2).await.unwrap_err();
    match &err {
        ClientError::Server {
            status, message, ..
        } => {
            assert_eq!(*status, 500);
            assert!(message.contains("GET /api/launch/2/statistic"), "{message}");
            assert!(message.contains("database is down"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(server.requests().len(), 3);
}

#[tokio::test]
async fn unreachable_after_retries() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let mut config = ClientConfig::new(url::Url::parse(&format!("http://{addr}")).unwrap(), TOKEN);
    config.max_retries = 1;
    let err = ApiClient::new(config)
        .unwrap()
        .get_launch(1)
        .await
        .unwrap_err();
    assert!(err.is_unreachable(), "{err:?}");
    match &err {
        ClientError::Unreachable {
            attempts, endpoint, ..
        } => {
            assert_eq!(*attempts, 2);
            assert!(endpoint.ends_with("/api/launch/1"), "{endpoint}");
        }
        other => panic!("{other:?}"),
    }
    assert!(!err.to_string().contains(TOKEN));
    assert!(!format!("{err:?}").contains(TOKEN));
}

#[tokio::test]
async fn not_found_lookups_are_none() {
    let server = TestServer::start().await;
    let client = server.client();
    assert!(client.find_job(1, "o/r_wf").await.unwrap().is_none());
    assert!(client
        .find_job_run(1, "o/r_wf", "42")
        .await
        .unwrap()
        .is_none());
    let job = server.find("GET", "/api/rs/job");
    assert_eq!(job[0].query, "projectId=1&externalId=o%2Fr_wf");
    let run = server.find("GET", "/api/upload/jobrun");
    assert_eq!(run[0].query, "projectId=1&jobUid=o%2Fr_wf&jobRunUid=42");
    // Other calls keep the 404 as an error.
    let err = client.get_job_run(5).await.unwrap_err();
    assert!(matches!(err, ClientError::NotFound(_)), "{err:?}");
}

#[tokio::test]
async fn find_job_accepts_an_object_or_a_page() {
    let job = json!({"id": 3, "externalId": "u", "name": "n", "projectId": 1});
    let page = json!({"content": [job.clone()], "totalElements": 1});
    let server = TestServer::with(move |r, n| {
        (r.path == "/api/rs/job").then(|| {
            Reply::new(
                200,
                if n == 0 {
                    job.to_string()
                } else {
                    page.to_string()
                },
            )
        })
    })
    .await;
    let client = server.client();
    assert_eq!(client.find_job(1, "u").await.unwrap().unwrap().id, 3);
    assert_eq!(client.find_job(1, "u").await.unwrap().unwrap().id, 3);
}

#[tokio::test]
async fn session_is_manual_only_without_a_job_run() {
    let server = TestServer::start().await;
    let client = server.client();
    client
        .create_session(&SessionCreate {
            launch_id: Some(5),
            ..Default::default()
        })
        .await
        .unwrap();
    client
        .create_session(&SessionCreate {
            job_run_id: Some(8),
            ..Default::default()
        })
        .await
        .unwrap();
    let reqs = server.find("POST", "/api/upload/session");
    assert_eq!(reqs[0].query, "manual=true");
    assert_eq!(reqs[0].json()["launchId"], 5);
    assert_eq!(reqs[1].query, "");
    assert_eq!(reqs[1].json()["jobRunId"], 8);
}

#[tokio::test]
async fn attachments_are_split_into_requests_of_100_parts() {
    let server = TestServer::start().await;
    let parts: Vec<AttachmentPart> = (0..150)
        .map(|i| AttachmentPart {
            file_name: format!("{i}-attachment.txt"),
            content_type: "text/plain".into(),
            bytes: format!("content {i}").into_bytes(),
        })
        .collect();
    server.client().upload_attachments(12, parts).await.unwrap();
    let reqs = server.find("POST", "/api/upload/test-result/12/attachment");
    assert_eq!(reqs.len(), 2);
    assert_eq!(reqs[0].parts.len(), 100);
    assert_eq!(reqs[1].parts.len(), 50);
    let p = &reqs[1].parts[49];
    assert_eq!(p.name, "file");
    assert_eq!(p.file_name.as_deref(), Some("149-attachment.txt"));
    assert_eq!(p.content_type.as_deref(), Some("text/plain"));
    assert_eq!(p.bytes, b"content 149");
}

#[tokio::test]
async fn retried_multipart_resends_the_same_bytes() {
    let server = TestServer::with(|r, n| {
        (r.path.ends_with("/attachment") && n == 0).then(|| Reply::new(503, ""))
    })
    .await;
    let big: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    server
        .client()
        .upload_attachments(
            1,
            vec![AttachmentPart {
                file_name: "a-attachment.bin".into(),
                content_type: "not a mime type".into(),
                bytes: big.clone(),
            }],
        )
        .await
        .unwrap();
    let reqs = server.find("POST", "/attachment");
    assert_eq!(reqs.len(), 2);
    assert_eq!(reqs[1].parts[0].bytes, big);
    assert_eq!(
        reqs[1].parts[0].content_type.as_deref(),
        Some("application/octet-stream")
    );
}

#[tokio::test]
async fn closed_launch_is_recognised() {
    let server = TestServer::with(|_, _| {
        Some(Reply::new(
            409,
            json!({"message": "Launch 5 is closed", "status": 409, "code": "launch_closed"})
                .to_string(),
        ))
    })
    .await;
    let err = server.client().close_launch(5).await.unwrap_err();
    assert!(matches!(err, ClientError::LaunchClosed(_)), "{err:?}");
    assert!(err.to_string().contains("Launch 5 is closed"));
}

#[tokio::test]
async fn decode_errors_name_the_call() {
    let server = TestServer::with(|_, _| Some(Reply::new(200, "<html>proxy</html>"))).await;
    let err = server.client().get_launch(1).await.unwrap_err();
    assert!(matches!(err, ClientError::Decode(_)), "{err:?}");
    assert!(err.to_string().contains("GET /api/launch/1"), "{err}");
}

#[tokio::test]
async fn endpoint_path_prefix_is_kept() {
    let server = TestServer::start().await;
    let mut config = ClientConfig::new(server.url.join("/testops/").unwrap(), TOKEN);
    config.max_retries = 0;
    let client = ApiClient::new(config).unwrap();
    let _ = client.get_launch(1).await;
    assert_eq!(server.requests()[0].path, "/testops/api/launch/1");
}

#[tokio::test]
async fn plan_and_listing_queries() {
    let server = TestServer::with(|r, _| match r.path.as_str() {
        "/api/jobrun/7/plan" => Some(Reply::new(
            200,
            r#"[{"id":1,"selector":"a.b"},{"id":"2","selector":null},{"selector":"c.d"}]"#,
        )),
        "/api/launch" => Some(Reply::new(
            200,
            json!({"content": [], "totalElements": 0, "totalPages": 0, "number": 2, "size": 5})
                .to_string(),
        )),
        _ => None,
    })
    .await;
    let client = server.client();
    let plan = client.job_run_plan(7).await.unwrap();
    assert_eq!(plan.len(), 3);
    assert_eq!(plan[0].selector, "a.b");
    assert_eq!(plan[1].id, Some(2));
    // A case without a numeric ALLURE_ID comes by selector only.
    assert_eq!(plan[2].id, None);
    assert_eq!(plan[2].selector, "c.d");
    assert_eq!(server.find("GET", "/plan")[0].query, "expected=true");
    let page = client.list_launches(3, 2, 5).await.unwrap();
    assert_eq!(page.number, 2);
    assert_eq!(
        server.find("GET", "/api/launch")[0].query,
        "projectId=3&page=2&size=5"
    );
}

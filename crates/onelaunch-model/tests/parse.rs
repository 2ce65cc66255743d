//! Parsing of Allure result files through the public API.

use onelaunch_model::allure::{Attachment, Category, Container, Executor, Label, Link, TestResult};
use onelaunch_model::{
    classify, is_safe_source, parse_categories, parse_container, parse_executor, parse_result,
    FileKind, ModelError,
};

const FULL_RESULT: &str = r#"{
  "uuid": "6b1f2a3c-0000-4000-8000-000000000001",
  "historyId": "h-1",
  "testCaseId": "tc-1",
  "fullName": "com.example.LoginTest.logsIn",
  "name": "logs in",
  "titlePath": ["com", "example", "LoginTest"],
  "description": "plain",
  "descriptionHtml": "<p>html</p>",
  "status": "failed",
  "statusDetails": {"message": "boom", "trace": "at x", "known": true, "muted": false, "flaky": true, "actual": "1", "expected": "2"},
  "stage": "finished",
  "start": 1700000000000,
  "stop": 1700000001500,
  "steps": [
    {"name": "open page", "status": "passed", "stage": "finished", "start": 1700000000000, "stop": 1700000000500,
     "parameters": [{"name": "url", "value": "/login"}],
     "attachments": [{"name": "page", "source": "a1-attachment.html", "type": "text/html"}],
     "steps": [{"name": "inner", "status": "passed"}]}
  ],
  "attachments": [{"name": "log", "source": "a2-attachment.txt", "type": "text/plain"}],
  "parameters": [{"name": "user", "value": "alice", "excluded": true, "mode": "masked"}],
  "labels": [{"name": "suite", "value": "Login"}, {"name": "host", "value": "ci-7"}],
  "links": [{"name": "JIRA-1", "url": "https://jira/JIRA-1", "type": "issue"}, {"url": "https://x"}],
  "someFutureField": {"anything": [1, 2, 3]}
}"#;

fn expect_message(result: Result<TestResult, ModelError>, want: &str) {
    let err = result.expect_err(want);
    assert_eq!(err.to_string(), want);
}

#[test]
fn reads_every_field_and_ignores_unknown_ones() {
    let r = parse_result(FULL_RESULT.as_bytes()).unwrap();
    assert_eq!(r.uuid, "6b1f2a3c-0000-4000-8000-000000000001");
    assert_eq!(r.history_id.as_deref(), Some("h-1"));
    assert_eq!(r.test_case_id.as_deref(), Some("tc-1"));
    assert_eq!(r.full_name.as_deref(), Some("com.example.LoginTest.logsIn"));
    assert_eq!(r.name, "logs in");
    assert_eq!(r.title_path, vec!["com", "example", "LoginTest"]);
    assert_eq!(r.description.as_deref(), Some("plain"));
    assert_eq!(r.description_html.as_deref(), Some("<p>html</p>"));
    assert_eq!(r.status.as_deref(), Some("failed"));
    let d = r.status_details.as_ref().unwrap();
    assert_eq!(
        (d.message.as_deref(), d.trace.as_deref()),
        (Some("boom"), Some("at x"))
    );
    assert!(d.known && !d.muted && d.flaky);
    assert_eq!(r.stage.as_deref(), Some("finished"));
    assert_eq!(
        (r.start, r.stop),
        (Some(1_700_000_000_000), Some(1_700_000_001_500))
    );

    let step = &r.steps[0];
    assert_eq!(step.name, "open page");
    assert_eq!(step.parameters[0].value, "/login");
    assert_eq!(step.attachments[0].source, "a1-attachment.html");
    assert_eq!(step.steps[0].name, "inner");

    assert_eq!(
        r.attachments,
        vec![Attachment {
            name: "log".into(),
            source: "a2-attachment.txt".into(),
            r#type: Some("text/plain".into()),
        }]
    );
    let p = &r.parameters[0];
    assert!(p.excluded);
    assert_eq!(p.mode.as_deref(), Some("masked"));
    assert_eq!(
        r.labels[1],
        Label {
            name: "host".into(),
            value: "ci-7".into()
        }
    );
    assert_eq!(
        r.links[1],
        Link {
            name: None,
            url: "https://x".into(),
            r#type: None
        }
    );
}

#[test]
fn minimal_result_and_nulls_mean_absent() {
    let r = parse_result(br#"{"uuid":"u"}"#).unwrap();
    assert_eq!(
        r,
        TestResult {
            uuid: "u".into(),
            ..TestResult::default()
        }
    );

    let r = parse_result(
        br#"{"uuid":"u","name":null,"status":null,"statusDetails":null,"start":null,
            "steps":null,"labels":[null,{"name":"a","value":null}],"parameters":[{"name":"n","value":3}],
            "attachments":[{"name":"x","source":"s","type":null}]}"#,
    )
    .unwrap();
    assert_eq!(r.name, "");
    assert_eq!(r.status, None);
    assert_eq!(r.status_details, None);
    assert_eq!(r.start, None);
    assert!(r.steps.is_empty());
    assert_eq!(r.labels.len(), 1);
    assert_eq!(r.labels[0].value, "");
    assert_eq!(
        r.parameters[0].value, "3",
        "scalar parameter values are stringified"
    );
    assert_eq!(r.attachments[0].r#type, None);
}

#[test]
fn timestamps_accept_any_finite_number() {
    let r = parse_result(br#"{"uuid":"u","start":1.7e12,"stop":1700000000000.6}"#).unwrap();
    assert_eq!(r.start, Some(1_700_000_000_000));
    assert_eq!(r.stop, Some(1_700_000_000_001));
}

#[test]
fn empty_blank_and_non_utf8_input() {
    expect_message(parse_result(b""), "empty file");
    expect_message(parse_result(b"  \n\t "), "empty file");
    expect_message(parse_result(b"\xEF\xBB\xBF"), "empty file");
    let err = parse_result(b"{\"uuid\":\"\xC0\xAF\"}").unwrap_err();
    assert_eq!(err, ModelError::NotUtf8 { offset: 9 });
    assert!(err.to_string().starts_with("not UTF-8 text"), "{err}");
}

#[test]
fn a_byte_order_mark_is_accepted() {
    assert_eq!(
        parse_result(b"\xEF\xBB\xBF{\"uuid\":\"u\"}").unwrap().uuid,
        "u"
    );
}

#[test]
fn invalid_and_truncated_json() {
    expect_message(
        parse_result(b"{\n  \"uuid\": \"u\",\n  \"name\": \"n\" \"status\": \"passed\"\n}"),
        "invalid JSON at line 3, column 15: expected `,` or `}`",
    );
    let full = FULL_RESULT.as_bytes();
    for cut in [1, 10, full.len() / 2, full.len() - 1] {
        let err = parse_result(&full[..cut]).unwrap_err();
        assert!(
            err.to_string().contains("unexpected end of input"),
            "cut at {cut}: {err}"
        );
    }
    expect_message(
        parse_result(br#"{"uuid":"u"} trailing"#),
        "invalid JSON at line 1, column 14: trailing characters",
    );
}

#[test]
fn non_object_top_level() {
    expect_message(
        parse_result(b"[]"),
        "expected a JSON object, found an array",
    );
    expect_message(
        parse_result(b"\"x\""),
        "expected a JSON object, found a string",
    );
    expect_message(parse_result(b"null"), "expected a JSON object, found null");
    expect_message(
        parse_result(b"42"),
        "expected a JSON object, found a number",
    );
}

#[test]
fn uuid_is_required_and_not_blank() {
    expect_message(parse_result(br#"{"name":"n"}"#), "missing field `uuid`");
    expect_message(parse_result(br#"{"uuid":null}"#), "missing field `uuid`");
    expect_message(
        parse_result(br#"{"uuid":""}"#),
        "field `uuid` must not be empty",
    );
    expect_message(
        parse_result(br#"{"uuid":"  "}"#),
        "field `uuid` must not be empty",
    );
    expect_message(
        parse_result(br#"{"uuid":7}"#),
        "invalid type for field `uuid`: expected a string, found a number",
    );
}

#[test]
fn wrong_types_name_the_field() {
    let cases: [(&[u8], &str); 9] = [
        (
            br#"{"uuid":"u","start":"1700000000000"}"#,
            "invalid type for field `start`: expected an integer (epoch ms), found a string",
        ),
        (
            br#"{"uuid":"u","stop":true}"#,
            "invalid type for field `stop`: expected an integer (epoch ms), found a boolean",
        ),
        (
            br#"{"uuid":"u","name":["a"]}"#,
            "invalid type for field `name`: expected a string, found an array",
        ),
        (
            br#"{"uuid":"u","steps":{}}"#,
            "invalid type for field `steps`: expected an array, found an object",
        ),
        (
            br#"{"uuid":"u","steps":[{"name":"a"},"b"]}"#,
            "invalid type for field `steps[1]`: expected an object, found a string",
        ),
        (
            br#"{"uuid":"u","steps":[{"steps":[{"start":"x"}]}]}"#,
            "invalid type for field `steps[0].steps[0].start`: expected an integer (epoch ms), found a string",
        ),
        (
            br#"{"uuid":"u","statusDetails":{"flaky":"yes"}}"#,
            "invalid type for field `statusDetails.flaky`: expected a boolean, found a string",
        ),
        (
            br#"{"uuid":"u","attachments":[{"source":1}]}"#,
            "invalid type for field `attachments[0].source`: expected a string, found a number",
        ),
        (
            br#"{"uuid":"u","titlePath":["a",2]}"#,
            "invalid type for field `titlePath[1]`: expected a string, found a number",
        ),
    ];
    for (input, want) in cases {
        expect_message(parse_result(input), want);
    }
}

#[test]
fn deep_nesting_is_refused_without_overflowing_the_stack() {
    const DEPTH: usize = 100_000;
    let mut doc = String::with_capacity(DEPTH * 24);
    doc.push_str(r#"{"uuid":"u","steps":["#);
    for _ in 0..DEPTH {
        doc.push_str(r#"{"name":"s","steps":["#);
    }
    for _ in 0..DEPTH {
        doc.push_str("]}");
    }
    doc.push_str("]}");
    let err = parse_result(doc.as_bytes()).unwrap_err();
    let ModelError::Json { line, message, .. } = &err else {
        panic!("expected a JSON error, got {err}");
    };
    assert_eq!(*line, 1);
    assert!(message.contains("nesting too deep"), "{err}");

    // Deeply nested arrays alone are refused the same way.
    let arrays = format!("{}{}", "[".repeat(DEPTH), "]".repeat(DEPTH));
    assert!(matches!(
        parse_result(arrays.as_bytes()),
        Err(ModelError::Json { .. })
    ));

    // Realistic nesting (30 levels of steps) is fine.
    let mut ok = String::from(r#"{"uuid":"u","steps":["#);
    ok.push_str(&r#"{"name":"s","steps":["#.repeat(30));
    ok.push_str(&"]}".repeat(30));
    ok.push_str("]}");
    let r = parse_result(ok.as_bytes()).unwrap();
    let mut depth = 0;
    let mut steps = &r.steps;
    while let Some(first) = steps.first() {
        depth += 1;
        steps = &first.steps;
    }
    assert_eq!(depth, 30);
}

#[test]
fn serde_deserialize_agrees_with_parse_result() {
    let via_serde: TestResult = serde_json::from_str(FULL_RESULT).unwrap();
    assert_eq!(via_serde, parse_result(FULL_RESULT.as_bytes()).unwrap());
    let err = serde_json::from_str::<TestResult>(r#"{"uuid":"u","start":"x"}"#).unwrap_err();
    assert!(
        err.to_string()
            .contains("invalid type for field `start`: expected an integer (epoch ms)"),
        "{err}"
    );
}

#[test]
fn serialisation_round_trips() {
    let r = parse_result(FULL_RESULT.as_bytes()).unwrap();
    let json = serde_json::to_value(&r).unwrap();
    assert_eq!(json["historyId"], "h-1");
    assert_eq!(json["statusDetails"]["flaky"], true);
    assert_eq!(json["attachments"][0]["type"], "text/plain");
    assert_eq!(json["links"][0]["type"], "issue");
    let again = parse_result(json.to_string().as_bytes()).unwrap();
    assert_eq!(again, r);
}

#[test]
fn containers() {
    let c = parse_container(
        br#"{"uuid":"c1","name":"suite","children":["r1","r2"],
            "befores":[{"name":"setUp","status":"passed","start":1,"stop":2}],
            "afters":[{"name":"tearDown","status":"broken","statusDetails":{"message":"m"}}],
            "start":1,"stop":9}"#,
    )
    .unwrap();
    assert_eq!(c.uuid, "c1");
    assert_eq!(c.name.as_deref(), Some("suite"));
    assert_eq!(c.children, vec!["r1", "r2"]);
    assert_eq!(c.befores[0].name, "setUp");
    assert_eq!(
        c.afters[0]
            .status_details
            .as_ref()
            .unwrap()
            .message
            .as_deref(),
        Some("m")
    );
    assert_eq!((c.start, c.stop), (Some(1), Some(9)));

    let bare = parse_container(br#"{"uuid":"c"}"#).unwrap();
    assert_eq!(
        bare,
        Container {
            uuid: "c".into(),
            ..Container::default()
        }
    );

    assert_eq!(
        parse_container(br#"{"children":[]}"#)
            .unwrap_err()
            .to_string(),
        "missing field `uuid`"
    );
    assert_eq!(
        parse_container(br#"{"uuid":"c","children":"r1"}"#)
            .unwrap_err()
            .to_string(),
        "invalid type for field `children`: expected an array, found a string"
    );
    assert_eq!(
        parse_container(br#"{"uuid":"c","befores":[{"start":"1"}]}"#)
            .unwrap_err()
            .to_string(),
        "invalid type for field `befores[0].start`: expected an integer (epoch ms), found a string"
    );
    assert_eq!(parse_container(b"").unwrap_err(), ModelError::Empty);
    assert!(matches!(
        parse_container(br#"{"uuid":"c","#).unwrap_err(),
        ModelError::Json { .. }
    ));
}

#[test]
fn executor() {
    let e = parse_executor(
        br#"{"name":"Jenkins","type":"jenkins","url":"https://ci","buildOrder":42,
            "buildName":"build 42","buildUrl":"https://ci/42","reportName":"Report","reportUrl":"https://ci/42/allure"}"#,
    )
    .unwrap();
    assert_eq!(
        e,
        Executor {
            name: Some("Jenkins".into()),
            r#type: Some("jenkins".into()),
            url: Some("https://ci".into()),
            build_order: Some(42),
            build_name: Some("build 42".into()),
            build_url: Some("https://ci/42".into()),
            report_name: Some("Report".into()),
            report_url: Some("https://ci/42/allure".into()),
        }
    );
    assert_eq!(
        parse_executor(br#"{"buildOrder":"17"}"#)
            .unwrap()
            .build_order,
        Some(17)
    );
    assert_eq!(parse_executor(b"{}").unwrap(), Executor::default());
    assert_eq!(
        parse_executor(br#"{"buildOrder":"seventeen"}"#)
            .unwrap_err()
            .to_string(),
        "invalid type for field `buildOrder`: expected an integer, found a string"
    );
    assert_eq!(
        parse_executor(br#"{"name":1}"#).unwrap_err().to_string(),
        "invalid type for field `name`: expected a string, found a number"
    );
    assert_eq!(
        parse_executor(b"[]").unwrap_err().to_string(),
        "expected a JSON object, found an array"
    );
    assert_eq!(parse_executor(b"").unwrap_err(), ModelError::Empty);
}

#[test]
fn categories() {
    let c = parse_categories(
        br#"[{"name":"Product defects","matchedStatuses":["failed"],"messageRegex":".*expected.*"},
             null,
             {"name":"Flaky","description":"d","traceRegex":"Timeout","matchedStatuses":["broken","failed"],"flaky":true}]"#,
    )
    .unwrap();
    assert_eq!(c.len(), 2);
    assert_eq!(
        c[0],
        Category {
            name: "Product defects".into(),
            matched_statuses: vec!["failed".into()],
            message_regex: Some(".*expected.*".into()),
            ..Category::default()
        }
    );
    assert!(c[1].flaky);
    assert_eq!(c[1].trace_regex.as_deref(), Some("Timeout"));
    assert!(parse_categories(b"[]").unwrap().is_empty());
    assert_eq!(
        parse_categories(br#"{"name":"x"}"#)
            .unwrap_err()
            .to_string(),
        "expected a JSON array, found an object"
    );
    assert_eq!(
        parse_categories(br#"[{"matchedStatuses":"failed"}]"#)
            .unwrap_err()
            .to_string(),
        "invalid type for field `[0].matchedStatuses`: expected an array, found a string"
    );
    assert_eq!(
        parse_categories(br#"[1]"#).unwrap_err().to_string(),
        "invalid type for field `[0]`: expected an object, found a number"
    );
    assert_eq!(parse_categories(b"").unwrap_err(), ModelError::Empty);
}

#[test]
fn classification() {
    let cases = [
        ("0b7e-result.json", FileKind::Result),
        ("dir/0b7e-result.json", FileKind::Result),
        ("dir\\0b7e-container.json", FileKind::Container),
        ("0b7e-container.json", FileKind::Container),
        ("environment.properties", FileKind::Environment),
        ("environment.xml", FileKind::EnvironmentXml),
        ("executor.json", FileKind::Executor),
        ("categories.json", FileKind::Categories),
        ("a1-globals.json", FileKind::Globals),
        ("TEST-com.example.CalcTest.xml", FileKind::JUnit),
        ("junit.XML", FileKind::JUnit),
        ("0b7e-attachment.xml", FileKind::Other),
        ("0b7e-attachment.png", FileKind::Other),
        ("0b7e-attachment", FileKind::Other),
        ("testplan.json", FileKind::Other),
        ("result.json", FileKind::Other),
        ("notes.txt", FileKind::Other),
        (".xml", FileKind::Other),
        ("", FileKind::Other),
    ];
    for (name, want) in cases {
        assert_eq!(classify(name), want, "{name:?}");
    }
}

#[test]
fn safe_sources() {
    for ok in [
        "0b7e-attachment.png",
        "a b.txt",
        "..hidden",
        "x..y",
        "résumé.pdf",
        "CONFIG.txt",
        "com10.log",
    ] {
        assert!(is_safe_source(ok), "{ok:?} should be safe");
    }
    for bad in [
        "",
        ".",
        "..",
        "/etc/passwd",
        "../secret",
        "a/b.txt",
        "a\\b.txt",
        "..\\..\\x",
        "C:",
        "C:x.txt",
        "c:\\windows\\win.ini",
        "\\\\server\\share",
        "file.txt:stream",
        "nul\0byte",
        "new\nline",
        "tab\there",
        "esc\u{1b}",
        "del\u{7f}",
        "c1\u{85}",
        "CON",
        "nul.txt",
        "com1.log",
        "LPT9",
        "aux ",
    ] {
        assert!(!is_safe_source(bad), "{bad:?} should be unsafe");
    }
}

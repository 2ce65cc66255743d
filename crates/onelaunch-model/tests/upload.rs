//! Conversion to upload DTOs, fixtures and attachment references.

use onelaunch_api::{UploadAttachment, UploadFixture, UploadParameter, UploadStep};
use onelaunch_model::allure::{Attachment, Container, StatusDetails, StepResult, TestResult};
use onelaunch_model::{
    attachment_sources, fixture_attachment_sources, fixture_to_upload, fixtures_by_result,
    parse_result, to_upload,
};

fn attachment(name: &str, source: &str) -> Attachment {
    Attachment {
        name: name.into(),
        source: source.into(),
        r#type: Some("text/plain".into()),
    }
}

fn step(name: &str) -> StepResult {
    StepResult {
        name: name.into(),
        status: Some("passed".into()),
        ..StepResult::default()
    }
}

#[test]
fn result_fields_map_to_the_upload_dto() {
    let r = parse_result(
        br#"{"uuid":"u1","historyId":"h","testCaseId":"tc","name":"n","fullName":"a.n",
            "description":"d","descriptionHtml":"<b>d</b>","status":"FAILED",
            "statusDetails":{"message":"m","trace":"t","flaky":true,"known":true,"muted":true},
            "start":1000,"stop":1600,
            "labels":[{"name":"host","value":""},{"name":"host","value":"ci-1"},{"name":"thread","value":"pool-1"},{"name":"suite","value":"S"}],
            "links":[{"name":"BUG-1","url":"https://bugs/1","type":"issue"},{"url":"https://x"}],
            "parameters":[{"name":"a","value":"1"},{"name":"b","value":"2","mode":"hidden"},
                          {"name":"c","value":"3","mode":"MASKED","excluded":true},{"name":"d","value":"4","mode":"default"}],
            "attachments":[{"name":"log","source":"l-attachment.txt","type":"text/plain"}]}"#,
    )
    .unwrap();
    let u = to_upload(&r);
    assert_eq!(u.uuid, "u1");
    assert_eq!(u.history_id.as_deref(), Some("h"));
    assert_eq!(u.test_case_id.as_deref(), Some("tc"));
    assert_eq!(u.name, "n");
    assert_eq!(u.full_name.as_deref(), Some("a.n"));
    assert_eq!(u.description.as_deref(), Some("d"));
    assert_eq!(u.description_html.as_deref(), Some("<b>d</b>"));
    assert_eq!(
        (u.start, u.stop, u.duration),
        (Some(1000), Some(1600), Some(600))
    );
    assert_eq!(u.status.as_deref(), Some("failed"));
    assert_eq!(
        (u.message.as_deref(), u.trace.as_deref()),
        (Some("m"), Some("t"))
    );
    assert!(u.flaky && u.known && u.muted);
    assert_eq!(u.host_id.as_deref(), Some("ci-1"));
    assert_eq!(u.thread_id.as_deref(), Some("pool-1"));
    assert_eq!(u.labels.len(), 4);
    assert_eq!(u.labels[3].name, "suite");
    assert_eq!(u.labels[3].value, "S");
    assert_eq!(u.links[0].name, "BUG-1");
    assert_eq!(u.links[0].kind.as_deref(), Some("issue"));
    assert_eq!(u.links[1].name, "");
    assert_eq!(u.links[1].kind, None);
    assert_eq!(
        u.parameters,
        vec![
            UploadParameter {
                name: "a".into(),
                value: "1".into(),
                ..UploadParameter::default()
            },
            UploadParameter {
                name: "b".into(),
                value: "2".into(),
                hidden: true,
                ..UploadParameter::default()
            },
            UploadParameter {
                name: "c".into(),
                value: "3".into(),
                masked: true,
                excluded: true,
                ..UploadParameter::default()
            },
            UploadParameter {
                name: "d".into(),
                value: "4".into(),
                ..UploadParameter::default()
            },
        ]
    );
    assert_eq!(
        u.attachments,
        vec![UploadAttachment {
            name: "log".into(),
            original_file_name: "l-attachment.txt".into(),
            content_type: Some("text/plain".into()),
            content_length: None,
        }]
    );
    assert!(u.steps.is_empty());
    assert_eq!(u.named_env, None);

    // The DTO serialises with the wire names.
    let json = serde_json::to_value(&u).unwrap();
    assert_eq!(json["fullName"], "a.n");
    assert_eq!(
        json["attachments"][0]["originalFileName"],
        "l-attachment.txt"
    );
}

#[test]
fn status_is_normalised_and_missing_values_stay_missing() {
    let bare = to_upload(&TestResult {
        uuid: "u".into(),
        ..TestResult::default()
    });
    assert_eq!(bare.status.as_deref(), Some("unknown"));
    assert_eq!((bare.start, bare.stop, bare.duration), (None, None, None));
    assert_eq!((bare.message, bare.trace), (None, None));
    assert!(!bare.flaky && !bare.known && !bare.muted);
    assert_eq!((bare.host_id, bare.thread_id), (None, None));

    let odd = to_upload(&TestResult {
        uuid: "u".into(),
        status: Some("interrupted".into()),
        start: Some(10),
        stop: Some(5),
        ..TestResult::default()
    });
    assert_eq!(odd.status.as_deref(), Some("unknown"));
    assert_eq!(odd.duration, None, "stop before start gives no duration");

    let half = to_upload(&TestResult {
        uuid: "u".into(),
        start: Some(10),
        ..TestResult::default()
    });
    assert_eq!(half.duration, None);
}

#[test]
fn steps_become_body_steps_with_attachment_children() {
    let r = TestResult {
        uuid: "u".into(),
        steps: vec![
            StepResult {
                name: "outer".into(),
                status: Some("Broken".into()),
                status_details: Some(StatusDetails {
                    message: Some("m".into()),
                    trace: Some("t".into()),
                    ..StatusDetails::default()
                }),
                start: Some(1),
                stop: Some(4),
                parameters: vec![onelaunch_model::allure::Parameter {
                    name: "p".into(),
                    value: "v".into(),
                    excluded: false,
                    mode: Some("hidden".into()),
                }],
                steps: vec![step("inner")],
                attachments: vec![attachment("shot", "s-attachment.png")],
                ..StepResult::default()
            },
            // An attachment recorded as its own step (same name): flattened.
            StepResult {
                name: "request.json".into(),
                start: Some(5),
                stop: Some(6),
                attachments: vec![attachment("request.json", "r-attachment.json")],
                ..StepResult::default()
            },
        ],
        ..TestResult::default()
    };
    let u = to_upload(&r);
    assert_eq!(u.steps.len(), 2);

    let outer = &u.steps[0];
    assert_eq!(outer.kind, "body");
    assert_eq!(outer.body.as_deref(), Some("outer"));
    assert_eq!(outer.status.as_deref(), Some("broken"));
    assert_eq!(
        (outer.start, outer.stop, outer.duration),
        (Some(1), Some(4), Some(3))
    );
    assert_eq!(
        (outer.message.as_deref(), outer.trace.as_deref()),
        (Some("m"), Some("t"))
    );
    assert!(outer.parameters[0].hidden);
    assert_eq!(outer.attachment, None);
    assert_eq!(outer.steps.len(), 2);
    assert_eq!(outer.steps[0].kind, "body");
    assert_eq!(outer.steps[0].body.as_deref(), Some("inner"));
    assert_eq!(outer.steps[0].status.as_deref(), Some("passed"));
    assert_eq!(
        outer.steps[1],
        UploadStep {
            kind: "attachment".into(),
            attachment: Some(UploadAttachment {
                name: "shot".into(),
                original_file_name: "s-attachment.png".into(),
                content_type: Some("text/plain".into()),
                content_length: None,
            }),
            ..UploadStep::default()
        }
    );

    let flattened = &u.steps[1];
    assert_eq!(flattened.kind, "attachment");
    assert_eq!(flattened.body, None);
    assert_eq!((flattened.start, flattened.stop), (Some(5), Some(6)));
    assert_eq!(
        flattened.attachment.as_ref().unwrap().original_file_name,
        "r-attachment.json"
    );

    let json = serde_json::to_value(&u).unwrap();
    assert_eq!(json["steps"][0]["type"], "body");
    assert_eq!(json["steps"][0]["steps"][1]["type"], "attachment");
}

#[test]
fn attachment_sources_are_recursive_deduplicated_and_ordered() {
    let r = TestResult {
        uuid: "u".into(),
        attachments: vec![attachment("a", "top.txt"), attachment("empty", "")],
        steps: vec![
            StepResult {
                attachments: vec![attachment("b", "s1.txt")],
                steps: vec![StepResult {
                    attachments: vec![attachment("c", "deep.txt"), attachment("dup", "top.txt")],
                    ..step("inner")
                }],
                ..step("one")
            },
            StepResult {
                attachments: vec![attachment("d", "s2.txt")],
                ..step("two")
            },
        ],
        ..TestResult::default()
    };
    assert_eq!(
        attachment_sources(&r),
        vec!["top.txt", "s1.txt", "deep.txt", "s2.txt"]
    );
    assert!(attachment_sources(&TestResult::default()).is_empty());
}

#[test]
fn fixture_conversion() {
    let f = StepResult {
        name: "setUp".into(),
        status: Some("failed".into()),
        status_details: Some(StatusDetails {
            message: Some("db down".into()),
            trace: Some("trace".into()),
            ..StatusDetails::default()
        }),
        start: Some(100),
        stop: Some(150),
        steps: vec![StepResult {
            attachments: vec![attachment("sql", "q.sql")],
            ..step("connect")
        }],
        attachments: vec![attachment("log", "setup.log")],
        ..StepResult::default()
    };
    let u = fixture_to_upload("BEFORE", "c1:BEFORE:0".into(), &f);
    assert_eq!(u.kind, "BEFORE");
    assert_eq!(u.uuid, "c1:BEFORE:0");
    assert_eq!(u.name, "setUp");
    assert_eq!(
        (u.start, u.stop, u.duration),
        (Some(100), Some(150), Some(50))
    );
    assert_eq!(u.status.as_deref(), Some("failed"));
    assert_eq!(u.message.as_deref(), Some("db down"));
    assert_eq!(u.trace.as_deref(), Some("trace"));
    assert_eq!(u.steps[0].body.as_deref(), Some("connect"));
    assert_eq!(u.attachments[0].original_file_name, "setup.log");
    assert_eq!(fixture_attachment_sources(&u), vec!["setup.log", "q.sql"]);

    let json = serde_json::to_value(&u).unwrap();
    assert_eq!(json["type"], "BEFORE");
}

#[test]
fn fixture_attachment_sources_walk_all_steps() {
    let att = |name: &str| UploadStep {
        kind: "attachment".into(),
        attachment: Some(UploadAttachment {
            name: name.into(),
            original_file_name: name.into(),
            ..UploadAttachment::default()
        }),
        ..UploadStep::default()
    };
    let f = UploadFixture {
        attachments: vec![UploadAttachment {
            original_file_name: "own".into(),
            ..UploadAttachment::default()
        }],
        steps: vec![
            UploadStep {
                kind: "body".into(),
                steps: vec![att("a"), att("own"), att("")],
                ..UploadStep::default()
            },
            att("b"),
        ],
        ..UploadFixture::default()
    };
    assert_eq!(fixture_attachment_sources(&f), vec!["own", "a", "b"]);
    assert!(fixture_attachment_sources(&UploadFixture::default()).is_empty());
}

fn container(uuid: &str, children: &[&str], befores: &[&str], afters: &[&str]) -> Container {
    Container {
        uuid: uuid.into(),
        children: children.iter().map(|c| c.to_string()).collect(),
        befores: befores.iter().map(|n| step(n)).collect(),
        afters: afters.iter().map(|n| step(n)).collect(),
        ..Container::default()
    }
}

fn names(fixtures: &[UploadFixture]) -> Vec<(&str, &str, &str)> {
    fixtures
        .iter()
        .map(|f| (f.kind.as_str(), f.name.as_str(), f.uuid.as_str()))
        .collect()
}

#[test]
fn fixtures_apply_to_each_child() {
    let map = fixtures_by_result(&[container(
        "c1",
        &["r1", "r2"],
        &["setUp", "login"],
        &["tearDown"],
    )]);
    assert_eq!(map.len(), 2);
    for r in ["r1", "r2"] {
        assert_eq!(
            names(&map[r]),
            vec![
                ("BEFORE", "setUp", "c1:BEFORE:0"),
                ("BEFORE", "login", "c1:BEFORE:1"),
                ("AFTER", "tearDown", "c1:AFTER:0"),
            ]
        );
    }
}

#[test]
fn nested_containers_pass_fixtures_down() {
    let containers = [
        container(
            "class",
            &["method-a", "method-b"],
            &["beforeAll"],
            &["afterAll"],
        ),
        container("method-a", &["r1"], &["beforeEach"], &["afterEach"]),
        container("method-b", &["r2"], &[], &[]),
        container("unrelated", &["r3"], &[], &["cleanup"]),
    ];
    let map = fixtures_by_result(&containers);
    assert_eq!(
        names(&map["r1"]),
        vec![
            ("BEFORE", "beforeAll", "class:BEFORE:0"),
            ("BEFORE", "beforeEach", "method-a:BEFORE:0"),
            ("AFTER", "afterEach", "method-a:AFTER:0"),
            ("AFTER", "afterAll", "class:AFTER:0"),
        ]
    );
    assert_eq!(
        names(&map["r2"]),
        vec![
            ("BEFORE", "beforeAll", "class:BEFORE:0"),
            ("AFTER", "afterAll", "class:AFTER:0"),
        ]
    );
    assert_eq!(
        names(&map["r3"]),
        vec![("AFTER", "cleanup", "unrelated:AFTER:0")]
    );
    assert!(!map.contains_key("method-a"), "containers are not results");
    assert!(!map.contains_key("class"));

    // The answer does not depend on the order of the containers.
    let mut reversed = containers.to_vec();
    reversed.reverse();
    assert_eq!(fixtures_by_result(&reversed), map);
}

#[test]
fn fixtures_are_ordered_by_start_time() {
    let mut c = container("c", &["r"], &["second", "first", "unknown"], &[]);
    c.befores[0].start = Some(20);
    c.befores[1].start = Some(10);
    let map = fixtures_by_result(&[c]);
    let order: Vec<&str> = map["r"].iter().map(|f| f.name.as_str()).collect();
    assert_eq!(order, vec!["first", "second", "unknown"]);
}

#[test]
fn cycles_diamonds_and_duplicates_are_harmless() {
    let containers = [
        container("a", &["b", "r1"], &["fa"], &[]),
        container("b", &["a", "b", "r2", ""], &["fb"], &[]),
        // Diamond: r3 reachable from "top" through "left" and "right".
        container("top", &["left", "right"], &["ft"], &[]),
        container("left", &["r3"], &[], &[]),
        container("right", &["r3", "r3"], &[], &[]),
        // A second container with an already used uuid is ignored.
        container("a", &["r9"], &["ignored"], &[]),
    ];
    let map = fixtures_by_result(&containers);
    let fixture_names = |r: &str| map[r].iter().map(|f| f.name.clone()).collect::<Vec<_>>();
    // In the cycle each container is the outer one as seen from the other's child.
    assert_eq!(fixture_names("r1"), vec!["fb", "fa"]);
    assert_eq!(fixture_names("r2"), vec!["fa", "fb"]);
    assert_eq!(fixture_names("r3"), vec!["ft"]);
    assert!(!map.contains_key("r9"));
    assert!(!map.contains_key(""));
    assert!(fixtures_by_result(&[]).is_empty());
    assert!(fixtures_by_result(&[container("empty", &["r"], &[], &[])]).is_empty());
}

#[test]
fn junit_results_convert_like_any_other() {
    let results = onelaunch_model::parse_junit(
        br#"<testsuite name="S" timestamp="2024-01-01T00:00:00Z"><testcase classname="C" name="t" time="1.25"><failure message="bad">trace</failure></testcase></testsuite>"#,
        "junit.xml",
    )
    .unwrap();
    let u = to_upload(&results[0]);
    assert_eq!(u.status.as_deref(), Some("failed"));
    assert_eq!(u.message.as_deref(), Some("bad"));
    assert_eq!(u.trace.as_deref(), Some("trace"));
    assert_eq!(u.duration, Some(1250));
    assert_eq!(u.full_name.as_deref(), Some("C.t"));
    assert!(u
        .labels
        .iter()
        .any(|l| l.name == "framework" && l.value == "junit"));
}

//! Conversion of Allure results into the TestOps upload DTOs of `onelaunch-api`,
//! and the list of attachment files those results reference.

use std::collections::{HashMap, HashSet, VecDeque};

use onelaunch_api::{
    normalize_status, CompactString, LabelDto, LinkDto, UploadAttachment, UploadFixture,
    UploadParameter, UploadStep, UploadTestResult,
};

use crate::allure::{Attachment, Container, Parameter, StatusDetails, StepResult, TestResult};

/// Converts one Allure result into the body item of `POST /api/upload/test-result`.
///
/// Status is normalised to `passed|failed|broken|skipped|unknown`; `duration` is
/// `stop - start` when both are known and `stop >= start`, else the result's own
/// `duration` (JUnit `time` without a timestamp); `hostId`/`threadId` come
/// from the first non-empty `host`/`thread` label. Top-level attachments go to
/// `attachments`; steps become `body` steps whose own attachments follow their
/// sub-steps as `attachment` steps. A step that only wraps one attachment of the same
/// name (how Allure 2.x adapters record an attachment with timing) becomes that
/// `attachment` step directly.
pub fn to_upload(r: &TestResult) -> UploadTestResult {
    into_upload(r.clone())
}

/// [`to_upload`], taking the result: its strings move instead of being copied.
pub fn into_upload(r: TestResult) -> UploadTestResult {
    let host_id = label_value(&r, "host");
    let thread_id = label_value(&r, "thread");
    let details = r.status_details.unwrap_or_default();
    UploadTestResult {
        uuid: r.uuid,
        history_id: r.history_id,
        test_case_id: r.test_case_id,
        name: r.name,
        full_name: r.full_name,
        description: r.description,
        description_html: r.description_html,
        start: r.start,
        stop: r.stop,
        duration: duration(r.start, r.stop).or(r.duration),
        status: Some(normalize_status(r.status.as_deref()).into()),
        message: details.message,
        trace: details.trace,
        host_id,
        thread_id,
        flaky: details.flaky,
        known: details.known,
        muted: details.muted,
        steps: r.steps.into_iter().map(step_to_upload).collect(),
        attachments: r
            .attachments
            .into_iter()
            .map(attachment_to_upload)
            .collect(),
        parameters: r.parameters.into_iter().map(parameter_to_upload).collect(),
        links: r
            .links
            .into_iter()
            .map(|l| LinkDto {
                name: l.name.unwrap_or_default(),
                url: l.url,
                kind: l.r#type,
            })
            .collect(),
        labels: r
            .labels
            .into_iter()
            .map(|l| LabelDto {
                name: l.name,
                value: l.value,
            })
            .collect(),
        named_env: None,
    }
}

/// Converts a fixture (a `befores`/`afters` item of a container) into an upload
/// fixture of the given kind (`BEFORE` or `AFTER`) and uuid. Steps are converted as
/// in [`to_upload`]; the fixture's own attachments go to `attachments`.
pub fn fixture_to_upload(kind: &str, uuid: String, f: &StepResult) -> UploadFixture {
    let (message, trace) = message_trace(f.status_details.as_ref());
    UploadFixture {
        kind: kind.to_string(),
        uuid,
        name: f.name.clone(),
        start: f.start,
        stop: f.stop,
        duration: duration(f.start, f.stop),
        status: Some(normalize_status(f.status.as_deref()).to_string()),
        message,
        trace,
        steps: f.steps.iter().cloned().map(step_to_upload).collect(),
        attachments: f
            .attachments
            .iter()
            .cloned()
            .map(attachment_to_upload)
            .collect(),
    }
}

/// Collects the fixtures that apply to each test result, keyed by result uuid.
///
/// A container's `befores` (kind `BEFORE`) and `afters` (kind `AFTER`) apply to each
/// of its children. A child that is itself a container passes them on to its own
/// children, at any depth; cycles and repeated paths are harmless. Fixture uuids are
/// deterministic: `<container uuid>:<BEFORE|AFTER>:<index>`.
///
/// Each list holds the `BEFORE` fixtures, then the `AFTER` ones, each ordered by start
/// time (unknown last), then in execution order of nesting (outer befores before
/// inner ones, inner afters before outer ones), then by uuid; the answer does not
/// depend on the order of `containers`. Results without fixtures have no entry. When
/// several containers share a uuid, only the first of them counts.
pub fn fixtures_by_result(containers: &[Container]) -> HashMap<String, Vec<UploadFixture>> {
    let mut by_uuid: HashMap<&str, &Container> = HashMap::new();
    for c in containers {
        by_uuid.entry(c.uuid.as_str()).or_insert(c);
    }

    // Per result: each fixture with the nesting distance of its container.
    let mut collected: HashMap<&str, Vec<(usize, UploadFixture)>> = HashMap::new();
    for container in containers {
        let is_first = by_uuid
            .get(container.uuid.as_str())
            .is_some_and(|first| std::ptr::eq(*first, container));
        if !is_first || (container.befores.is_empty() && container.afters.is_empty()) {
            continue;
        }
        let fixtures: Vec<UploadFixture> =
            [("BEFORE", &container.befores), ("AFTER", &container.afters)]
                .into_iter()
                .flat_map(|(kind, items)| {
                    items.iter().enumerate().map(move |(i, f)| {
                        fixture_to_upload(kind, format!("{}:{kind}:{i}", container.uuid), f)
                    })
                })
                .collect();
        for (result, distance) in leaf_results(container, &by_uuid) {
            let list = collected.entry(result).or_default();
            for f in &fixtures {
                if !list.iter().any(|(_, existing)| existing.uuid == f.uuid) {
                    list.push((distance, f.clone()));
                }
            }
        }
    }

    collected
        .into_iter()
        .map(|(result, mut list)| {
            list.sort_by(|(da, a), (db, b)| fixture_order(a, *da).cmp(&fixture_order(b, *db)));
            (
                result.to_string(),
                list.into_iter().map(|(_, f)| f).collect(),
            )
        })
        .collect()
}

/// Sort key of a fixture reaching a result from `distance` levels of nesting above.
fn fixture_order(f: &UploadFixture, distance: usize) -> (bool, bool, Option<i64>, i64, &str) {
    let is_before = f.kind == "BEFORE";
    let distance = i64::try_from(distance).unwrap_or(i64::MAX);
    let nesting = if is_before { -distance } else { distance };
    (!is_before, f.start.is_none(), f.start, nesting, &f.uuid)
}

/// The uuids of the test results under `root` with their nesting distance (1 for
/// direct children), descending through nested containers breadth first; each
/// container is visited once.
fn leaf_results<'a>(
    root: &'a Container,
    by_uuid: &HashMap<&str, &'a Container>,
) -> Vec<(&'a str, usize)> {
    let mut results = Vec::new();
    let mut seen_results = HashSet::new();
    let mut visited: HashSet<&str> = HashSet::from([root.uuid.as_str()]);
    let mut pending = VecDeque::from([(root, 1)]);
    while let Some((container, distance)) = pending.pop_front() {
        for child in &container.children {
            let child = child.as_str();
            if child.trim().is_empty() {
                continue;
            }
            match by_uuid.get(child) {
                Some(inner) => {
                    if visited.insert(child) {
                        pending.push_back((inner, distance + 1));
                    }
                }
                None => {
                    if seen_results.insert(child) {
                        results.push((child, distance));
                    }
                }
            }
        }
    }
    results
}

/// Every attachment file referenced by a result, its steps and their sub-steps,
/// depth first, without duplicates or empty names, in order of first reference.
pub fn attachment_sources(r: &TestResult) -> Vec<String> {
    let mut sources = Sources::default();
    sources.add_all(&r.attachments);
    for step in &r.steps {
        sources.add_step(step);
    }
    sources.list
}

/// Every attachment file (`originalFileName`) referenced by an upload fixture: its
/// own attachments, then those of its steps, depth first, without duplicates or
/// empty names.
pub fn fixture_attachment_sources(f: &UploadFixture) -> Vec<String> {
    let mut sources = Sources::default();
    for a in &f.attachments {
        sources.add(&a.original_file_name);
    }
    let mut pending: Vec<&UploadStep> = f.steps.iter().rev().collect();
    while let Some(step) = pending.pop() {
        if let Some(a) = &step.attachment {
            sources.add(&a.original_file_name);
        }
        pending.extend(step.steps.iter().rev());
    }
    sources.list
}

#[derive(Default)]
struct Sources {
    seen: HashSet<String>,
    list: Vec<String>,
}

impl Sources {
    fn add(&mut self, source: &str) {
        if !source.is_empty() && self.seen.insert(source.to_string()) {
            self.list.push(source.to_string());
        }
    }

    fn add_all(&mut self, attachments: &[Attachment]) {
        for a in attachments {
            self.add(&a.source);
        }
    }

    fn add_step(&mut self, step: &StepResult) {
        let mut pending = vec![step];
        while let Some(step) = pending.pop() {
            self.add_all(&step.attachments);
            pending.extend(step.steps.iter().rev());
        }
    }
}

fn duration(start: Option<i64>, stop: Option<i64>) -> Option<i64> {
    let (start, stop) = (start?, stop?);
    stop.checked_sub(start).filter(|d| *d >= 0)
}

fn message_trace(details: Option<&StatusDetails>) -> (Option<String>, Option<String>) {
    details.map_or((None, None), |d| (d.message.clone(), d.trace.clone()))
}

fn label_value(r: &TestResult, name: &str) -> Option<String> {
    r.labels
        .iter()
        .find(|l| l.name == name && !l.value.trim().is_empty())
        .map(|l| l.value.to_string())
}

fn attachment_to_upload(a: Attachment) -> UploadAttachment {
    UploadAttachment {
        name: a.name,
        original_file_name: a.source,
        content_type: a.r#type.map(Into::into),
        content_length: None,
    }
}

fn attachment_step(a: Attachment, start: Option<i64>, stop: Option<i64>) -> UploadStep {
    UploadStep {
        kind: CompactString::const_new("attachment"),
        start,
        stop,
        attachment: Some(attachment_to_upload(a)),
        ..UploadStep::default()
    }
}

fn parameter_to_upload(p: Parameter) -> UploadParameter {
    let mode = p.mode.as_deref().map(str::trim);
    UploadParameter {
        hidden: mode.is_some_and(|m| m.eq_ignore_ascii_case("hidden")),
        masked: mode.is_some_and(|m| m.eq_ignore_ascii_case("masked")),
        name: p.name,
        value: p.value,
        excluded: p.excluded,
    }
}

fn step_to_upload(mut s: StepResult) -> UploadStep {
    if let ([], [only]) = (s.steps.as_slice(), s.attachments.as_slice()) {
        if only.name == s.name {
            let only = s.attachments.pop().unwrap_or_default();
            return attachment_step(only, s.start, s.stop);
        }
    }
    let details = s.status_details.unwrap_or_default();
    let mut steps: Vec<UploadStep> = s.steps.into_iter().map(step_to_upload).collect();
    steps.extend(
        s.attachments
            .into_iter()
            .map(|a| attachment_step(a, None, None)),
    );
    UploadStep {
        kind: CompactString::const_new("body"),
        body: Some(s.name),
        status: Some(normalize_status(s.status.as_deref()).into()),
        start: s.start,
        stop: s.stop,
        duration: duration(s.start, s.stop),
        message: details.message,
        trace: details.trace,
        parameters: s.parameters.into_iter().map(parameter_to_upload).collect(),
        steps,
        attachment: None,
    }
}

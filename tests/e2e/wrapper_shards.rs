//! The shard scenario shared by the CI wrapper tests (wrapper_github.rs,
//! wrapper_gitlab.rs, wrapper_jenkins.rs): a start step creates the launch and
//! the CI run's job run; two shards of that run share the job run; the fast
//! shard uploads and ends; the finish step (`job-run stop`, then
//! `launch close --wait`) runs while the slow shard's `watch` is still
//! uploading. Every result of both shards must end up in the closed launch.
//!
//! The order is forced with marker files, never with timed assertions:
//! 1. the slow shard's test command writes its first result (`slow 1`) and
//!    waits for `finish-started`;
//! 2. a watcher thread of the test sees `slow 1` on the server (the slow
//!    shard's upload is in flight) and writes `slow-uploading`;
//! 3. the fast shard, after its own upload, waits for `slow-uploading`, writes
//!    `finish-started` and runs the finish;
//! 4. the slow command then writes its last two results a few seconds later
//!    and ends; its `watch` uploads them and ends its upload session.
//!
//! Every wait is bounded (the scripts give up after 120 s, the watcher after
//! [`WATCH_LIMIT`]), and every runner run has its own timeout.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::support::Api;

/// How long the watcher waits for the slow shard's first result.
const WATCH_LIMIT: Duration = Duration::from_secs(150);

/// The results each shard writes: (name, status).
pub const FAST: &[(&str, &str)] = &[("fast 1", "passed"), ("fast 2", "failed")];
pub const SLOW: &[(&str, &str)] = &[
    ("slow 1", "passed"),
    ("slow 2", "broken"),
    ("slow 3", "skipped"),
];

/// Marker files, result data and the two shard scripts, under one directory.
pub struct Shards {
    pub dir: PathBuf,
}

fn result_json(name: &str, status: &str) -> String {
    let slug = name.replace(' ', "-");
    json!({
        "uuid": format!("{slug}-uuid"),
        "historyId": format!("{slug}-history"),
        "name": name,
        "fullName": format!("shards.{slug}"),
        "status": status,
        "start": 1_700_000_000_000i64,
        "stop": 1_700_000_000_500i64,
        "labels": [{"name": "suite", "value": "shards"}],
    })
    .to_string()
}

impl Shards {
    /// Writes the data and scripts under `dir` (an absolute path the CI jobs
    /// can read: every runner here runs its jobs on this machine).
    pub fn new(dir: &Path) -> Shards {
        let s = Shards {
            dir: dir.to_path_buf(),
        };
        for (leg, results) in [("fast", FAST), ("slow", SLOW)] {
            let data = dir.join("data").join(leg);
            fs::create_dir_all(&data).unwrap();
            for (name, status) in results {
                fs::write(
                    data.join(format!("{}-result.json", name.replace(' ', "-"))),
                    result_json(name, status),
                )
                .unwrap();
            }
        }
        fs::create_dir_all(dir.join("sync")).unwrap();
        let d = dir.display();
        // A bounded wait for a marker file (120 s).
        let wait = |marker: &str, who: &str| {
            format!(
                "i=0\nuntil [ -f \"{d}/sync/{marker}\" ]; do\n  i=$((i + 1))\n  if [ \"$i\" -gt 1200 ]; then echo \"{who}: gave up waiting for {marker}\" >&2; exit 1; fi\n  sleep 0.1\ndone\n"
            )
        };
        // slow.sh RESULTS: one result, wait until the finish started, then the
        // last two (moved in whole, so the watcher never sees half a file).
        fs::write(
            dir.join("slow.sh"),
            format!(
                "set -e\nresults=\"$1\"\nmkdir -p \"$results\" \"$results.tmp\"\n\
                 cp '{d}/data/slow/slow-1-result.json' \"$results/\"\n\
                 echo 'slow shard: first result written'\n{}\
                 echo 'slow shard: the finish has started; more tests run'\n\
                 sleep 3\n\
                 cp '{d}/data/slow/slow-2-result.json' '{d}/data/slow/slow-3-result.json' \"$results.tmp/\"\n\
                 mv \"$results.tmp\"/* \"$results/\"\n\
                 echo 'slow shard: done'\n",
                wait("finish-started", "slow shard")
            ),
        )
        .unwrap();
        // fast.sh RESULTS: the fast shard's tests.
        fs::write(
            dir.join("fast.sh"),
            format!(
                "set -e\nmkdir -p \"$1\"\ncp '{d}'/data/fast/*-result.json \"$1/\"\necho 'fast shard: done'\n"
            ),
        )
        .unwrap();
        // before-finish.sh [MARKER]: what runs just before the finish step
        // (after MARKER too when given: the end of the fast shard).
        fs::write(
            dir.join("before-finish.sh"),
            format!(
                "set -e\nif [ -n \"${{1:-}}\" ]; then\n{}fi\n{}touch '{d}/sync/finish-started'\necho 'finish: the fast shard has ended and the slow shard is uploading; finishing'\n",
                wait("$1", "finish").replace('\n', "\n  "),
                wait("slow-uploading", "finish")
            ),
        )
        .unwrap();
        s
    }

    /// `sh <dir>/<name>.sh`, for the CI job definitions.
    pub fn script(&self, name: &str) -> String {
        format!("sh '{}/{name}.sh'", self.dir.display())
    }

    /// Starts the watcher: it writes `slow-uploading` once the server holds
    /// `slow 1` in any launch of project 1.
    pub fn watch(&self, api: &Api) -> Watcher {
        let api = api.with_token(&api.token);
        let marker = self.dir.join("sync/slow-uploading");
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let handle = std::thread::spawn(move || {
            let deadline = Instant::now() + WATCH_LIMIT;
            while Instant::now() < deadline && !stopped.load(Ordering::Relaxed) {
                let (code, v) = api.get_raw("/api/launch?projectId=1&size=1000");
                let launches = if code == 200 {
                    v["content"].as_array().cloned().unwrap_or_default()
                } else {
                    Vec::new()
                };
                for l in launches {
                    let id = l["id"].as_i64().unwrap_or(0);
                    let (code, v) =
                        api.get_raw(&format!("/api/testresult?launchId={id}&size=1000"));
                    let seen = code == 200
                        && v["content"]
                            .as_array()
                            .is_some_and(|rs| rs.iter().any(|r| r["name"] == "slow 1"));
                    if seen {
                        fs::write(&marker, "").unwrap();
                        return true;
                    }
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            false
        });
        Watcher {
            stop,
            handle: Some(handle),
        }
    }

    /// Whether the fast shard reached its finish step.
    pub fn finish_started(&self) -> bool {
        self.dir.join("sync/finish-started").exists()
    }
}

/// The watcher thread; `done` stops it and says whether it saw `slow 1`.
pub struct Watcher {
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<bool>>,
}

impl Watcher {
    pub fn done(mut self) -> bool {
        self.stop.store(true, Ordering::Relaxed);
        self.handle.take().unwrap().join().unwrap()
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// (name, status) of every result of both shards, sorted.
pub fn expected() -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = FAST
        .iter()
        .chain(SLOW)
        .map(|(n, s)| (n.to_string(), s.to_string()))
        .collect();
    v.sort();
    v
}

/// The one launch of project 1: closed, holding exactly the results of both
/// shards with their statuses, in one job run that the finish stopped.
#[track_caller]
pub fn assert_every_result_in_the_closed_launch(api: &Api, context: &str) {
    let launches = api.launches(1);
    assert_eq!(launches.len(), 1, "{launches:#?}\n{context}");
    let launch = &launches[0];
    let id = launch["id"].as_i64().unwrap();
    let results = api.results(id);
    let mut got: Vec<(String, String)> = results
        .iter()
        .map(|r| {
            (
                r["name"].as_str().unwrap_or("").to_string(),
                r["status"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    got.sort();
    assert_eq!(
        got,
        expected(),
        "every result of both shards must be in the launch\n{context}"
    );
    assert_eq!(
        launch["closed"], true,
        "the finish closes the launch\n{context}"
    );
    let mut by_status: BTreeMap<String, i64> = BTreeMap::new();
    for (_, s) in expected() {
        *by_status.entry(s).or_insert(0) += 1;
    }
    assert_eq!(api.statistic(id), by_status, "{context}");
    let runs: Vec<Value> = api.job_runs(id);
    assert_eq!(runs.len(), 1, "both shards share one job run: {runs:#?}");
    assert_eq!(runs[0]["stage"], "finished", "{context}");
    assert_eq!(
        runs[0]["resultCount"].as_i64().unwrap_or(-1) as usize,
        expected().len(),
        "{context}"
    );
}

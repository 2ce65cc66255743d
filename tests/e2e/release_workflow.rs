//! The release workflow (issue 15) lints clean and keeps its guarantees:
//! actionlint (with ShellCheck on every `run:` script) finds nothing in
//! `.github/workflows/*.yml`, and the release publishes only after every
//! build and the verification passed, on runners that exist.

use std::process::Command;

use crate::support::*;

#[test]
fn every_workflow_lints_clean_with_actionlint() {
    let workflows: Vec<String> = std::fs::read_dir(repo().join(".github/workflows"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "yml" || x == "yaml"))
        .map(|p| p.strip_prefix(repo()).unwrap().display().to_string())
        .collect();
    assert!(workflows.len() >= 2, "{workflows:?}");
    for tool in ["actionlint", "shellcheck"] {
        let found = Command::new(tool).arg("--version").output();
        assert!(
            found.is_ok_and(|o| o.status.success()),
            "`{tool}` is not installed: scripts/tools/actionlint.sh installs it"
        );
    }
    let out = Command::new("actionlint")
        .args(["-no-color"])
        .args(&workflows)
        .current_dir(repo())
        .output()
        .expect("run actionlint");
    assert!(
        out.status.success(),
        "actionlint found problems:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn release_builds_every_platform_and_publishes_only_what_was_verified() {
    let text = std::fs::read_to_string(repo().join(".github/workflows/release.yml")).unwrap();
    assert!(text.contains("fail-fast: false"));
    assert!(!text.contains("macos-13"), "macos-13 runners are retired");
    for target in [
        "x86_64-unknown-linux-musl",
        "aarch64-unknown-linux-musl",
        "x86_64-apple-darwin",
        "aarch64-apple-darwin",
        "x86_64-pc-windows-msvc",
    ] {
        assert!(
            text.contains(&format!("target: {target}")),
            "no build for {target}"
        );
    }
    assert!(text.contains("needs: [check, build, verify]"));
    assert!(text.contains("SHA256SUMS") && text.contains("checksums.json"));
    assert!(text.contains("actions/attest-build-provenance@"));
}

//! The release workflow (issue 15) lints clean and keeps its guarantees:
//! actionlint (with ShellCheck on every `run:` script) finds nothing in
//! `.github/workflows/*.yml`, and the release publishes only after every
//! build and the verification passed, on runners that exist — the container
//! images included: the `image` job builds them from the verified assets and
//! only `publish`, which needs it, pushes them.

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
    assert!(text.contains("needs: [check, build, verify, image]"));
    assert!(text.contains("SHA256SUMS") && text.contains("checksums.json"));
    assert!(text.contains("actions/attest-build-provenance@"));
}

/// The lines of job `name`, up to the next job.
fn job(text: &str, name: &str) -> String {
    let header = format!("  {name}:");
    let mut lines = text.lines().skip_while(|l| *l != header);
    let first = lines.next().unwrap_or_else(|| panic!("no job `{name}`"));
    let body = lines.take_while(|l| {
        let indent = l.len() - l.trim_start().len();
        l.is_empty() || indent > 2 || (indent == 2 && l.trim_start().starts_with('#'))
    });
    std::iter::once(first)
        .chain(body)
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn release_builds_the_images_after_verify_and_publish_pushes_them() {
    let text = std::fs::read_to_string(repo().join(".github/workflows/release.yml")).unwrap();
    let image = &job(&text, "image");
    assert!(image.contains("needs: verify"), "{image}");
    assert!(
        image.contains("name: release"),
        "image does not use the verified assets"
    );
    assert!(image.contains("sha256sum -c SHA256SUMS"), "{image}");
    assert!(image.contains("deploy/image/build"), "{image}");
    for arch in ["amd64", "arm64"] {
        assert!(image.contains(&format!("arch: {arch}")), "no {arch} image");
    }
    assert!(image.contains("--arch \"$ARCH\""), "{image}");
    assert!(
        image.contains("umoci unpack"),
        "the image is not run from its root"
    );
    assert!(
        image.contains("/usr/local/bin/onelaunch --version"),
        "{image}"
    );
    assert!(image.contains("actions/upload-artifact@"), "{image}");
    assert!(!image.contains("docker://"), "the image job pushes");

    let publish = &job(&text, "publish");
    assert!(publish.contains("needs: [check, build, verify, image]"));
    assert!(publish.contains("packages: write"), "{publish}");
    assert!(publish.contains("buildah manifest create"), "{publish}");
    assert!(publish.contains("buildah manifest push --all"), "{publish}");
    assert!(
        publish.contains("--password-stdin"),
        "the token is not piped"
    );
    assert!(
        publish.contains("\"$VERSION\" \"$VERSION-ci\""),
        "{publish}"
    );
    assert!(publish.contains("inputs.move-major-tag"), "{publish}");
    assert!(publish.contains("$major-ci"), "no major -ci tag");
    assert!(publish.contains("subject-digest:"), "{publish}");
    assert!(publish.contains("push-to-registry: true"), "{publish}");
    // Only publish pushes: no other job talks to the registry.
    assert_eq!(
        text.matches("docker://").count(),
        publish.matches("docker://").count()
    );
}

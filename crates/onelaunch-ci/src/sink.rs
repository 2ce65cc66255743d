//! Renderers for handing `KEY=value` pairs to the next CI step.
//!
//! | Function | Consumer | Values |
//! |---|---|---|
//! | [`export_safe`] | `export $(onelaunch job-run env)` | percent-encoded where needed, see its docs |
//! | [`shell`] | `eval "$(onelaunch job-run env --format shell)"` | exact |
//! | [`dotenv`] | GitLab `artifacts:reports:dotenv` | exact, or an error |
//! | [`json`] | scripts, `launch.json` artifacts | exact |
//! | [`github`] | `$GITHUB_OUTPUT`, `$GITHUB_ENV` | exact |
//!
//! Variable names are expected to be environment variable names
//! (`[A-Za-z_][A-Za-z0-9_]*`, for example `ALLURE_LAUNCH_ID`). [`dotenv`]
//! rejects anything else; the shell-facing and GitHub renderers replace every
//! other character with `_` (and prefix `_` to an empty name or one that
//! starts with a digit), so a name can never inject syntax. [`json`] keeps
//! names as given.

use std::collections::HashMap;
use std::fmt::Write as _;

use rand::Rng;

/// Maximum size of a GitLab dotenv report, in bytes.
pub const GITLAB_DOTENV_MAX_BYTES: usize = 5 * 1024;

/// Maximum number of variables in a GitLab dotenv report (the default of
/// self-managed instances; GitLab.com plans allow more).
pub const GITLAB_DOTENV_MAX_VARIABLES: usize = 20;

/// Why a set of variables could not be rendered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SinkError {
    /// A variable name is not `[A-Za-z_][A-Za-z0-9_]*`.
    #[error("invalid variable name {name:?}: names must match [A-Za-z_][A-Za-z0-9_]*")]
    InvalidName {
        /// The offending name.
        name: String,
    },
    /// A value contains a line feed or carriage return.
    #[error("the value of {name} contains a line break; GitLab rejects multi-line dotenv values")]
    MultilineValue {
        /// Name of the variable.
        name: String,
    },
    /// More variables than GitLab accepts.
    #[error("{count} variables; a GitLab dotenv report may hold at most {limit}")]
    TooManyVariables {
        /// Number of variables given.
        count: usize,
        /// The limit.
        limit: usize,
    },
    /// The rendered file is larger than GitLab accepts.
    #[error("the dotenv report would be {size} bytes; GitLab accepts at most {limit}")]
    TooLarge {
        /// Size of the rendered file in bytes.
        size: usize,
        /// The limit in bytes.
        limit: usize,
    },
    /// The rendered file breaks other GitLab dotenv rules (see
    /// [`validate_gitlab_dotenv`]).
    #[error("the dotenv report breaks GitLab's rules: {}", .0.join("; "))]
    Invalid(Vec<String>),
}

fn is_valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// `name` with every character outside `[A-Za-z0-9_]` replaced by `_`, and a
/// leading `_` added if it would otherwise be empty or start with a digit.
fn sanitize_name(name: &str) -> String {
    let mut out: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if out.is_empty() || out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, '_');
    }
    out
}

/// Bytes that [`export_safe`] writes unencoded.
fn is_export_safe_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"#+,-./:=@_~".contains(&b)
}

/// `KEY=VALUE` lines that survive `export $(onelaunch job-run env)` exactly as
/// written.
///
/// The command substitution in `export $(...)` is unquoted, so bash splits its
/// output into words on `IFS` (space, tab, newline by default) and then treats
/// each word as a pathname pattern; quotes and backslashes in the output are
/// *not* removed. To make every line exactly one word that is never a glob,
/// each value byte outside
///
/// ```text
/// A-Z a-z 0-9 # + , - . / : = @ _ ~
/// ```
///
/// is percent-encoded as `%XX` (upper-case hex of the UTF-8 byte). That covers
/// whitespace and control characters, the glob characters `* ? [ ]`, the
/// extended-glob characters `( ) ! ^ |`, quotes, backslash, `$`, backtick,
/// `{ } < > ; &`, every non-ASCII byte, and `%` itself, so decoding is plain
/// percent-decoding (see [`decode_export_safe`]). Ids and plain URLs such as
/// `https://testops.example.com/launch/42` pass unchanged; a URL with a query
/// string gets its `?`, `&` and `%` encoded.
///
/// Use [`shell`] with `eval` when values must arrive unencoded.
///
/// ```
/// use onelaunch_ci::sink::export_safe;
/// let out = export_safe(&[
///     ("ALLURE_LAUNCH_ID", "42".to_string()),
///     ("ALLURE_LAUNCH_NAME", "Nightly * 100%".to_string()),
/// ]);
/// assert_eq!(out, "ALLURE_LAUNCH_ID=42\nALLURE_LAUNCH_NAME=Nightly%20%2A%20100%25\n");
/// ```
pub fn export_safe(vars: &[(&str, String)]) -> String {
    let mut out = String::new();
    for (name, value) in vars {
        out.push_str(&sanitize_name(name));
        out.push('=');
        for &b in value.as_bytes() {
            if is_export_safe_byte(b) {
                out.push(char::from(b));
            } else {
                // Writing to a String cannot fail.
                let _ = write!(out, "%{b:02X}");
            }
        }
        out.push('\n');
    }
    out
}

/// Reverses the value encoding of [`export_safe`] (plain percent-decoding).
/// `None` if a `%` is not followed by two hex digits or the bytes are not
/// UTF-8.
pub fn decode_export_safe(value: &str) -> Option<String> {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = value.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// `export KEY='value'` lines for `eval "$(...)"` in any POSIX shell.
///
/// Values are wrapped in single quotes, inside which nothing is special; a
/// single quote in the value is written as `'\''`. The shell therefore sees
/// the exact value, including newlines, `$`, backticks and non-ASCII text.
/// (A NUL byte cannot be stored in a shell variable and should not be passed.)
///
/// ```
/// use onelaunch_ci::sink::shell;
/// assert_eq!(
///     shell(&[("ALLURE_LAUNCH_NAME", "it's $HOME".to_string())]),
///     "export ALLURE_LAUNCH_NAME='it'\\''s $HOME'\n"
/// );
/// ```
pub fn shell(vars: &[(&str, String)]) -> String {
    let mut out = String::new();
    for (name, value) in vars {
        out.push_str("export ");
        out.push_str(&sanitize_name(name));
        out.push_str("='");
        out.push_str(&value.replace('\'', r"'\''"));
        out.push_str("'\n");
    }
    out
}

/// A GitLab `artifacts:reports:dotenv` file: one `KEY=value` line per
/// variable, nothing else.
///
/// GitLab's format is strict and keeps values literally, so nothing is quoted
/// or escaped. Instead of producing a file GitLab would reject or misread,
/// this fails when a name is not `[A-Za-z_][A-Za-z0-9_]*`, a value contains a
/// line feed or carriage return, there are more than
/// [`GITLAB_DOTENV_MAX_VARIABLES`] variables, the file would exceed
/// [`GITLAB_DOTENV_MAX_BYTES`], or [`validate_gitlab_dotenv`] finds any other
/// problem (a value with leading or trailing whitespace, which GitLab strips;
/// a value wrapped in quotes, which GitLab keeps; a duplicate name).
///
/// ```
/// use onelaunch_ci::sink::dotenv;
/// let vars = [("ALLURE_LAUNCH_ID", "42".to_string()), ("ALLURE_LAUNCH_NAME", "Nightly #7".to_string())];
/// assert_eq!(dotenv(&vars).unwrap(), "ALLURE_LAUNCH_ID=42\nALLURE_LAUNCH_NAME=Nightly #7\n");
/// assert!(dotenv(&[("A", "two\nlines".to_string())]).is_err());
/// ```
pub fn dotenv(vars: &[(&str, String)]) -> Result<String, SinkError> {
    if let Some((name, _)) = vars.iter().find(|(name, _)| !is_valid_name(name)) {
        return Err(SinkError::InvalidName {
            name: (*name).to_string(),
        });
    }
    if let Some((name, _)) = vars.iter().find(|(_, value)| value.contains(['\n', '\r'])) {
        return Err(SinkError::MultilineValue {
            name: (*name).to_string(),
        });
    }
    if vars.len() > GITLAB_DOTENV_MAX_VARIABLES {
        return Err(SinkError::TooManyVariables {
            count: vars.len(),
            limit: GITLAB_DOTENV_MAX_VARIABLES,
        });
    }
    let mut out = String::new();
    for (name, value) in vars {
        out.push_str(name);
        out.push('=');
        out.push_str(value);
        out.push('\n');
    }
    if out.len() > GITLAB_DOTENV_MAX_BYTES {
        return Err(SinkError::TooLarge {
            size: out.len(),
            limit: GITLAB_DOTENV_MAX_BYTES,
        });
    }
    validate_gitlab_dotenv(&out).map_err(SinkError::Invalid)?;
    Ok(out)
}

/// Checks a GitLab dotenv report against GitLab's rules and returns every
/// violation, each message starting with `line N:` and naming the rule.
///
/// Rules (from GitLab's dotenv documentation, plus two that protect values
/// from being silently changed):
///
/// - no carriage returns (no CRLF line endings, no multi-line values);
/// - no blank lines;
/// - no `#` comment lines;
/// - every line is `NAME=value`;
/// - names match `[A-Za-z_][A-Za-z0-9_]*`, with no whitespace around them;
/// - no leading or trailing whitespace in a value (GitLab strips it);
/// - no value wrapped in matching quotes (GitLab keeps quotes literally);
/// - no duplicate names (GitLab silently keeps the last one);
/// - at most [`GITLAB_DOTENV_MAX_VARIABLES`] variables;
/// - at most [`GITLAB_DOTENV_MAX_BYTES`] bytes in total.
///
/// A single trailing newline at the end of the file is allowed; an empty file
/// is valid.
pub fn validate_gitlab_dotenv(text: &str) -> Result<(), Vec<String>> {
    let mut errors = Vec::new();
    let body = text.strip_suffix('\n').unwrap_or(text);
    if text.is_empty() {
        return Ok(());
    }

    let mut first_seen: HashMap<String, usize> = HashMap::new();
    let mut variables = 0usize;
    let mut offset = 0usize;
    let mut size_reported = false;

    for (index, raw) in body.split('\n').enumerate() {
        let n = index + 1;
        offset += raw.len() + 1;
        if !size_reported && offset.min(text.len()) > GITLAB_DOTENV_MAX_BYTES {
            size_reported = true;
            errors.push(format!(
                "line {n}: file size limit: the file is {} bytes, GitLab accepts at most {GITLAB_DOTENV_MAX_BYTES}",
                text.len()
            ));
        }

        if raw.contains('\r') {
            errors.push(format!(
                "line {n}: carriage return: CRLF line endings and multi-line values are rejected"
            ));
        }
        let line = raw.replace('\r', "");

        if line.trim().is_empty() {
            errors.push(format!("line {n}: blank line: empty lines are rejected"));
            continue;
        }
        if line.trim_start().starts_with('#') {
            errors.push(format!("line {n}: comment: `#` comment lines are rejected"));
            continue;
        }
        let Some((raw_name, value)) = line.split_once('=') else {
            errors.push(format!(
                "line {n}: not an assignment: every line must be NAME=value (multi-line values are rejected)"
            ));
            continue;
        };
        let name = raw_name.trim();
        if name != raw_name {
            errors.push(format!(
                "line {n}: whitespace around name: write {name}=value without spaces"
            ));
        }
        if !is_valid_name(name) {
            errors.push(format!(
                "line {n}: invalid name {name:?}: names must match [A-Za-z_][A-Za-z0-9_]*"
            ));
        }
        if value.trim() != value {
            errors.push(format!(
                "line {n}: surrounding whitespace in the value of {name}: GitLab strips it, so the value would change"
            ));
        }
        let quoted = value.len() >= 2
            && ((value.starts_with('"') && value.ends_with('"'))
                || (value.starts_with('\'') && value.ends_with('\'')));
        if quoted {
            errors.push(format!(
                "line {n}: quoted value of {name}: GitLab keeps quotes literally, write the value unquoted"
            ));
        }
        if let Some(first) = first_seen.get(name) {
            errors.push(format!(
                "line {n}: duplicate name {name} (first on line {first}): GitLab keeps only the last value"
            ));
        } else {
            first_seen.insert(name.to_string(), n);
        }
        variables += 1;
        if variables == GITLAB_DOTENV_MAX_VARIABLES + 1 {
            errors.push(format!(
                "line {n}: variable limit: more than {GITLAB_DOTENV_MAX_VARIABLES} variables"
            ));
        }
    }

    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

fn json_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{08}' => out.push_str("\\b"),
            '\u{0c}' => out.push_str("\\f"),
            c if u32::from(c) < 0x20 => {
                // Writing to a String cannot fail.
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// A pretty-printed JSON object `{"KEY": "value", ...}` in the given order.
///
/// Names are kept as given. If a name repeats, the object keeps its first
/// position and its last value, as a shell would.
///
/// ```
/// use onelaunch_ci::sink::json;
/// assert_eq!(
///     json(&[("ALLURE_LAUNCH_ID", "42".to_string())]),
///     "{\n  \"ALLURE_LAUNCH_ID\": \"42\"\n}"
/// );
/// ```
pub fn json(vars: &[(&str, String)]) -> String {
    let mut entries: Vec<(&str, &str)> = Vec::with_capacity(vars.len());
    for (name, value) in vars {
        match entries.iter_mut().find(|(n, _)| n == name) {
            Some(entry) => entry.1 = value,
            None => entries.push((name, value)),
        }
    }
    if entries.is_empty() {
        return "{}".to_string();
    }
    let mut out = String::from("{\n");
    for (i, (name, value)) in entries.iter().enumerate() {
        out.push_str("  ");
        json_string(&mut out, name);
        out.push_str(": ");
        json_string(&mut out, value);
        if i + 1 < entries.len() {
            out.push(',');
        }
        out.push('\n');
    }
    out.push('}');
    out
}

fn random_delimiter() -> String {
    let bytes: [u8; 16] = rand::thread_rng().gen();
    let mut out = String::from("ghadelimiter_");
    for b in bytes {
        // Writing to a String cannot fail.
        let _ = write!(out, "{b:02x}");
    }
    out
}

/// Blocks for `$GITHUB_OUTPUT` and `$GITHUB_ENV`, one per variable:
///
/// ```text
/// KEY<<ghadelimiter_<32 random hex digits>
/// value
/// ghadelimiter_<same hex digits>
/// ```
///
/// This heredoc form carries any value, including multi-line ones. The
/// delimiter is drawn afresh for each variable and drawn again until it occurs
/// in neither the name nor the value, so the value cannot end the block early
/// or inject further variables.
pub fn github(vars: &[(&str, String)]) -> String {
    github_with(vars, random_delimiter)
}

fn github_with(vars: &[(&str, String)], mut next_delimiter: impl FnMut() -> String) -> String {
    let mut out = String::new();
    for (name, value) in vars {
        let name = sanitize_name(name);
        let delimiter = loop {
            let candidate = next_delimiter();
            if !candidate.is_empty() && !value.contains(&candidate) && !name.contains(&candidate) {
                break candidate;
            }
        };
        out.push_str(&name);
        out.push_str("<<");
        out.push_str(&delimiter);
        out.push('\n');
        out.push_str(value);
        out.push('\n');
        out.push_str(&delimiter);
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use std::io::ErrorKind;
    use std::path::{Path, PathBuf};
    use std::process::{Command, Output};

    use super::*;

    const NASTY: &str = r#"Release 1.2 "rc" * $HOME; rm -rf /"#;

    fn vars_with_name(name: &str) -> Vec<(&'static str, String)> {
        vec![
            ("ALLURE_LAUNCH_ID", "4242".to_string()),
            (
                "ALLURE_LAUNCH_URL",
                "https://testops.example.com/launch/4242".to_string(),
            ),
            ("ALLURE_JOB_RUN_ID", "77".to_string()),
            (
                "ALLURE_JOB_RUN_URL",
                "https://testops.example.com:8443/jobrun/77".to_string(),
            ),
            ("ALLURE_LAUNCH_NAME", name.to_string()),
        ]
    }

    /// A directory under the system temp dir, removed on drop.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new() -> Self {
            let suffix: u64 = rand::thread_rng().gen();
            let path = std::env::temp_dir()
                .join(format!("onelaunch-ci-{}-{suffix:016x}", std::process::id()));
            std::fs::create_dir_all(&path).expect("create temp dir");
            TempDir(path)
        }

        fn path(&self) -> &Path {
            &self.0
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    /// Runs `bash -c script` with `$1`, `$2` = `args`; `None` if bash is not
    /// installed.
    fn bash(script: &str, args: &[&Path]) -> Option<Output> {
        match Command::new("bash")
            .arg("-c")
            .arg(script)
            .arg("bash")
            .args(args)
            .env("HOME", "/home/should-not-appear")
            .output()
        {
            Ok(output) => Some(output),
            Err(e) if e.kind() == ErrorKind::NotFound => {
                eprintln!("skipping: bash is not installed");
                None
            }
            Err(e) => panic!("failed to run bash: {e}"),
        }
    }

    /// A directory full of files that the usual glob patterns would match.
    fn glob_bait() -> TempDir {
        let dir = TempDir::new();
        for name in [
            "a", "b", "x", "rc", "Release", "1.2", "HOME", "-rf", "ab", "zz",
        ] {
            std::fs::write(dir.path().join(name), b"").expect("write bait file");
        }
        dir
    }

    #[test]
    fn export_safe_encoding() {
        let out = export_safe(&vars_with_name(NASTY));
        assert_eq!(
            out,
            "ALLURE_LAUNCH_ID=4242\n\
             ALLURE_LAUNCH_URL=https://testops.example.com/launch/4242\n\
             ALLURE_JOB_RUN_ID=77\n\
             ALLURE_JOB_RUN_URL=https://testops.example.com:8443/jobrun/77\n\
             ALLURE_LAUNCH_NAME=Release%201.2%20%22rc%22%20%2A%20%24HOME%3B%20rm%20-rf%20/\n"
        );
        for line in out.lines() {
            assert!(!line.contains([' ', '\t', '*', '?', '[', ']', '"', '\'', '\\', '$', '`']));
        }
        assert_eq!(
            decode_export_safe("Release%201.2%20%22rc%22%20%2A%20%24HOME%3B%20rm%20-rf%20/")
                .as_deref(),
            Some(NASTY)
        );
    }

    #[test]
    fn export_safe_edge_cases() {
        let weird = "tab\there\nnewline ü ✓ 100% [ab] ?(x) `id` \\ 'q'\u{7f}";
        let out = export_safe(&[("WEIRD", weird.to_string())]);
        let value = out
            .strip_prefix("WEIRD=")
            .and_then(|v| v.strip_suffix('\n'));
        let value = value.expect("one line");
        assert!(value.bytes().all(is_export_safe_byte_or_percent));
        assert_eq!(decode_export_safe(value).as_deref(), Some(weird));

        // Names cannot inject anything either.
        assert_eq!(export_safe(&[("A B;c", "1".into())]), "A_B_c=1\n");
        assert_eq!(export_safe(&[("1X", "1".into())]), "_1X=1\n");
        assert_eq!(export_safe(&[("E", String::new())]), "E=\n");

        assert_eq!(decode_export_safe("%2"), None);
        assert_eq!(decode_export_safe("%zz"), None);
        assert_eq!(decode_export_safe("%FF"), None);
    }

    fn is_export_safe_byte_or_percent(b: u8) -> bool {
        is_export_safe_byte(b) || b == b'%'
    }

    #[test]
    fn export_safe_survives_unquoted_bash_export() {
        let weird = "tab\there\nnl ü ✓ 100% [ab] ? * ?(x) !(y) ~ {a,b} `id` $(id) \\n 'q' \"d\"";
        let mut vars = vars_with_name(NASTY);
        vars.push(("ALLURE_WEIRD", weird.to_string()));
        vars.push(("ALLURE_STAR", "*".to_string()));
        vars.push(("ALLURE_QUESTION", "?".to_string()));
        vars.push(("ALLURE_CLASS", "[ab]".to_string()));
        let out = export_safe(&vars);

        let dir = glob_bait();
        let file = dir.path().join("env.txt");
        std::fs::write(&file, &out).expect("write env file");

        let print = vars
            .iter()
            .map(|(k, _)| format!("\"${k}\""))
            .collect::<Vec<_>>()
            .join(" ");
        for options in [
            "",
            "shopt -s extglob failglob",
            "shopt -s nullglob dotglob globstar",
        ] {
            let script = format!(
                "set -u\ncd \"$1\"\n{options}\nexport $(cat \"$2\")\nprintf '%s\\n' {print}\n"
            );
            let Some(output) = bash(&script, &[dir.path(), &file]) else {
                return;
            };
            assert!(
                output.status.success(),
                "bash failed with [{options}]: {}",
                String::from_utf8_lossy(&output.stderr)
            );
            assert!(
                output.stderr.is_empty(),
                "{}",
                String::from_utf8_lossy(&output.stderr)
            );
            let stdout = String::from_utf8(output.stdout).expect("utf-8");
            let printed: Vec<&str> = stdout.lines().collect();
            let expected: Vec<&str> = out
                .lines()
                .map(|l| l.split_once('=').map_or("", |(_, v)| v))
                .collect();
            assert_eq!(printed, expected, "options [{options}]");
            // Ids and URLs arrive exactly; the rest decodes to the original.
            assert_eq!(printed[0], "4242");
            assert_eq!(printed[1], "https://testops.example.com/launch/4242");
            assert_eq!(printed[2], "77");
            assert_eq!(printed[3], "https://testops.example.com:8443/jobrun/77");
            for (got, (_, original)) in printed.iter().zip(&vars) {
                assert_eq!(decode_export_safe(got).as_deref(), Some(original.as_str()));
            }
        }
    }

    #[test]
    fn unencoded_values_do_not_survive_bash_export() {
        // The negative control: without encoding, word splitting breaks the
        // assignment and `export` fails on the stray words.
        let dir = glob_bait();
        let file = dir.path().join("env.txt");
        std::fs::write(&file, "ALLURE_LAUNCH_NAME=a b * c\n").expect("write env file");
        let Some(output) = bash("cd \"$1\"; export $(cat \"$2\")", &[dir.path(), &file]) else {
            return;
        };
        assert!(!output.status.success());
    }

    #[test]
    fn shell_round_trips_through_bash_eval() {
        let values = [
            NASTY.to_string(),
            "it's 'quoted' ''".to_string(),
            "multi\nline\n\ttabbed\n".to_string(),
            "$(touch pwned) `touch pwned` ${HOME} \\ \\\\ \"\"".to_string(),
            "ünïcødé ✓ 100%".to_string(),
            String::new(),
        ];
        let names = ["V0", "V1", "V2", "V3", "V4", "V5"];
        let vars: Vec<(&str, String)> = names.iter().copied().zip(values.clone()).collect();
        let out = shell(&vars);
        assert!(out.starts_with(
            "export V0='Release 1.2 \"rc\" * $HOME; rm -rf /'\nexport V1='it'\\''s '\\''quoted'\\'' '\\'''\\'''\n"
        ));

        let dir = glob_bait();
        let file = dir.path().join("env.sh");
        std::fs::write(&file, &out).expect("write env file");
        let print = names
            .iter()
            .map(|k| format!("\"${k}\""))
            .collect::<Vec<_>>()
            .join(" ");
        let script = format!("set -u\ncd \"$1\"\neval \"$(cat \"$2\")\"\nprintf '%s\\0' {print}\n");
        let Some(output) = bash(&script, &[dir.path(), &file]) else {
            return;
        };
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let stdout = String::from_utf8(output.stdout).expect("utf-8");
        let printed: Vec<&str> = stdout.split('\0').collect();
        // printf ends every value with NUL, so the last piece is empty.
        assert_eq!(printed.len(), values.len() + 1);
        for (got, want) in printed.iter().zip(&values) {
            assert_eq!(got, want);
        }
        assert!(!dir.path().join("pwned").exists());
    }

    #[test]
    fn dotenv_renders_exact_values() {
        let out = dotenv(&vars_with_name(NASTY)).expect("valid");
        assert_eq!(
            out,
            "ALLURE_LAUNCH_ID=4242\n\
             ALLURE_LAUNCH_URL=https://testops.example.com/launch/4242\n\
             ALLURE_JOB_RUN_ID=77\n\
             ALLURE_JOB_RUN_URL=https://testops.example.com:8443/jobrun/77\n\
             ALLURE_LAUNCH_NAME=Release 1.2 \"rc\" * $HOME; rm -rf /\n"
        );
        assert_eq!(validate_gitlab_dotenv(&out), Ok(()));
        assert_eq!(dotenv(&[]).as_deref(), Ok(""));
    }

    #[test]
    fn dotenv_rejects_what_gitlab_would_reject() {
        assert_eq!(
            dotenv(&[("ALLURE-LAUNCH", "1".into())]),
            Err(SinkError::InvalidName {
                name: "ALLURE-LAUNCH".into()
            })
        );
        assert_eq!(
            dotenv(&[("N", "a\r\nb".into())]),
            Err(SinkError::MultilineValue { name: "N".into() })
        );
        let many: Vec<(String, String)> =
            (0..21).map(|i| (format!("V{i}"), i.to_string())).collect();
        let many: Vec<(&str, String)> = many.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
        assert_eq!(
            dotenv(&many),
            Err(SinkError::TooManyVariables {
                count: 21,
                limit: 20
            })
        );
        assert!(dotenv(&many[..20]).is_ok());
        let big = [("BIG", "x".repeat(5200))];
        assert!(matches!(
            dotenv(&big),
            Err(SinkError::TooLarge {
                size: 5205,
                limit: 5120
            })
        ));
        let fits = [("BIG", "x".repeat(5120 - 5))];
        assert!(dotenv(&fits).is_ok());

        let Err(SinkError::Invalid(errors)) = dotenv(&[
            ("A", " padded".into()),
            ("B", "\"quoted\"".into()),
            ("A", "again".into()),
        ]) else {
            panic!("expected Invalid");
        };
        assert_eq!(errors.len(), 3, "{errors:?}");
        assert!(errors[0].starts_with("line 1: surrounding whitespace"));
        assert!(errors[1].starts_with("line 2: quoted value"));
        assert!(errors[2].starts_with("line 3: duplicate name A (first on line 1)"));
        // Error messages are readable.
        assert_eq!(
            SinkError::MultilineValue { name: "N".into() }.to_string(),
            "the value of N contains a line break; GitLab rejects multi-line dotenv values"
        );
    }

    #[test]
    fn validator_reports_every_rule_with_line_numbers() {
        let text = "GOOD=1\n\
                    \n\
                    # a comment\n\
                    CRLF=1\r\n\
                    no_assignment\n\
                    1BAD=x\n\
                    BAD-NAME=x\n\
                    SPACED = x\n\
                    TRAIL=x \n\
                    QUOTED='x'\n\
                    GOOD=2\n";
        let errors = validate_gitlab_dotenv(text).expect_err("invalid");
        let expected_prefixes = [
            "line 2: blank line",
            "line 3: comment",
            "line 4: carriage return",
            "line 5: not an assignment",
            "line 6: invalid name \"1BAD\"",
            "line 7: invalid name \"BAD-NAME\"",
            "line 8: whitespace around name",
            "line 8: surrounding whitespace in the value of SPACED",
            "line 9: surrounding whitespace in the value of TRAIL",
            "line 10: quoted value of QUOTED",
            "line 11: duplicate name GOOD (first on line 1)",
        ];
        assert_eq!(errors.len(), expected_prefixes.len(), "{errors:#?}");
        for (error, prefix) in errors.iter().zip(expected_prefixes) {
            assert!(
                error.starts_with(prefix),
                "{error:?} should start with {prefix:?}"
            );
        }

        // Limits.
        let many: String = (0..22).map(|i| format!("V{i}=1\n")).collect();
        assert_eq!(
            validate_gitlab_dotenv(&many),
            Err(vec![
                "line 21: variable limit: more than 20 variables".to_string()
            ])
        );
        let big = format!("A=1\nB={}\nC=3\n", "y".repeat(5200));
        let errors = validate_gitlab_dotenv(&big).expect_err("too big");
        assert_eq!(errors.len(), 1);
        assert!(errors[0].starts_with("line 2: file size limit: the file is 5211 bytes"));

        // Valid files.
        assert_eq!(validate_gitlab_dotenv(""), Ok(()));
        assert_eq!(validate_gitlab_dotenv("A=1"), Ok(()));
        assert_eq!(
            validate_gitlab_dotenv("A=\nB=x=y\nC=#not a comment\n"),
            Ok(())
        );
        // A trailing blank line is a blank line.
        assert_eq!(
            validate_gitlab_dotenv("A=1\n\n"),
            Err(vec![
                "line 2: blank line: empty lines are rejected".to_string()
            ])
        );
    }

    #[test]
    fn json_renders_exact_values_in_order() {
        let mut vars = vars_with_name(NASTY);
        vars.push(("CONTROL", "tab\t\u{1}\n\"\\ü".into()));
        vars.push(("ALLURE_LAUNCH_ID", "4243".into()));
        let out = json(&vars);
        assert!(out.starts_with("{\n  \"ALLURE_LAUNCH_ID\": \"4243\",\n  \"ALLURE_LAUNCH_URL\""));
        assert!(out
            .contains("  \"ALLURE_LAUNCH_NAME\": \"Release 1.2 \\\"rc\\\" * $HOME; rm -rf /\",\n"));
        assert!(out.contains("\"CONTROL\": \"tab\\t\\u0001\\n\\\"\\\\ü\"\n}"));
        let parsed: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(&out).expect("valid JSON");
        assert_eq!(parsed.len(), 6);
        assert_eq!(parsed["ALLURE_LAUNCH_NAME"], NASTY);
        assert_eq!(parsed["CONTROL"], "tab\t\u{1}\n\"\\ü");
        assert_eq!(parsed["ALLURE_LAUNCH_ID"], "4243");
        assert_eq!(json(&[]), "{}");
    }

    /// Parses `$GITHUB_OUTPUT` heredoc blocks the way the runner does.
    fn parse_github(text: &str) -> Vec<(String, String)> {
        let mut out = Vec::new();
        let mut lines = text.split('\n');
        while let Some(header) = lines.next() {
            if header.is_empty() {
                continue;
            }
            let (name, delimiter) = header.split_once("<<").expect("heredoc header");
            let mut value = Vec::new();
            loop {
                let line = lines.next().expect("unterminated block");
                if line == delimiter {
                    break;
                }
                value.push(line);
            }
            out.push((name.to_string(), value.join("\n")));
        }
        out
    }

    #[test]
    fn github_heredoc_blocks() {
        let mut vars = vars_with_name(NASTY);
        vars.push(("MULTI", "line 1\nline 2\nghadelimiter_\nEOF".into()));
        let out = github(&vars);
        let parsed = parse_github(&out);
        let expected: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect();
        assert_eq!(parsed, expected);

        let first = out.lines().next().expect("header");
        let (name, delimiter) = first.split_once("<<").expect("header");
        assert_eq!(name, "ALLURE_LAUNCH_ID");
        let hex = delimiter.strip_prefix("ghadelimiter_").expect("prefix");
        assert_eq!(hex.len(), 32);
        assert!(hex.bytes().all(|b| b.is_ascii_hexdigit()));
        assert!(out.starts_with(&format!(
            "ALLURE_LAUNCH_ID<<{delimiter}\n4242\n{delimiter}\n"
        )));
        // Fresh delimiter per variable.
        let headers: Vec<&str> = out.lines().filter(|l| l.contains("<<")).collect();
        assert_eq!(headers.len(), vars.len());
        assert_ne!(headers[0].split_once("<<"), headers[1].split_once("<<"));
    }

    #[test]
    fn github_redraws_delimiters_found_in_the_value() {
        let vars = [("OUT", "x\nghadelimiter_0\ny".to_string())];
        let mut candidates = ["ghadelimiter_0", "", "ghadelimiter_1"].into_iter();
        let out = github_with(&vars, || {
            candidates.next().unwrap_or("unreachable").to_string()
        });
        assert_eq!(
            out,
            "OUT<<ghadelimiter_1\nx\nghadelimiter_0\ny\nghadelimiter_1\n"
        );
        assert_eq!(
            github(&[("bad name", "v".into())])
                .split_once("<<")
                .map(|p| p.0),
            Some("bad_name")
        );
    }
}

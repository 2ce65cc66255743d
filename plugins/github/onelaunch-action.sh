#!/usr/bin/env bash
# The onelaunch GitHub Action (action.yml at the repository root runs this).
#
# Every input arrives as an ONELAUNCH_IN_* environment variable; nothing is
# interpolated into shell text. The token is masked before anything else runs
# and is only ever handed to onelaunch through its environment.
#
# Runs on Linux, macOS and Windows (Git Bash) runners (bash 3.2 or newer).
set -euo pipefail

# ------------------------------------------------------------------ the token
token="${ONELAUNCH_IN_TOKEN:-}"
if [ -z "$token" ]; then
  token="${ALLURE_TOKEN:-}"
fi
if [ -n "$token" ]; then
  # One mask per line: GitHub masks line by line.
  while IFS= read -r line; do
    if [ -n "$line" ]; then
      echo "::add-mask::$line"
    fi
  done <<EOF_TOKEN
$token
EOF_TOKEN
fi
unset ONELAUNCH_IN_TOKEN
# Kept out of the exported environment; onelaunch gets it per call (see ol).
unset ALLURE_TOKEN

# ------------------------------------------------------------------ helpers
action_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"

log() { printf 'onelaunch: %s\n' "$*"; }
fail() {
  printf '::error title=onelaunch::%s\n' "$*"
  exit 1
}
lower() { printf '%s' "$1" | tr '[:upper:]' '[:lower:]'; }
is_true() {
  case "$(lower "$1")" in
    true | yes | y | on | 1) return 0 ;;
    *) return 1 ;;
  esac
}
is_id() {
  case "$1" in
    '' | *[!0-9]*) return 1 ;;
    *) return 0 ;;
  esac
}
# Appends to the job summary when there is one.
summary() {
  if [ -n "${GITHUB_STEP_SUMMARY:-}" ]; then
    printf '%s\n' "$@" >>"$GITHUB_STEP_SUMMARY"
  fi
}

# ------------------------------------------------------------------ inputs
command="$(lower "${ONELAUNCH_IN_COMMAND:-}")"
case "$command" in
  start | upload | watch | finish | plan) ;;
  '') fail "the 'command' input is required: start, upload, watch, finish or plan" ;;
  *) fail "unknown command '$command': expected start, upload, watch, finish or plan" ;;
esac

if [ -n "${ONELAUNCH_IN_ENDPOINT:-}" ]; then
  export ALLURE_ENDPOINT="$ONELAUNCH_IN_ENDPOINT"
fi
if [ -n "${ONELAUNCH_IN_PROJECT_ID:-}" ]; then
  export ALLURE_PROJECT_ID="$ONELAUNCH_IN_PROJECT_ID"
fi
if [ -z "${ALLURE_ENDPOINT:-}" ]; then
  fail "no server: set the 'endpoint' input (or ALLURE_ENDPOINT)"
fi
if [ -z "$token" ]; then
  fail "no API token: set the 'token' input from a secret (or ALLURE_TOKEN)"
fi

launch_id="${ONELAUNCH_IN_LAUNCH_ID:-${ALLURE_LAUNCH_ID:-}}"
job_run_id="${ONELAUNCH_IN_JOB_RUN_ID:-${ALLURE_JOB_RUN_ID:-}}"
if [ -n "$launch_id" ] && ! is_id "$launch_id"; then
  fail "launch-id must be a number, got '$launch_id'"
fi
if [ -n "$job_run_id" ] && ! is_id "$job_run_id"; then
  fail "job-run-id must be a number, got '$job_run_id'"
fi
# The ids go to onelaunch as flags only, so that exactly the resolved ones count.
unset ALLURE_LAUNCH_ID ALLURE_JOB_RUN_ID

reopen=()
if is_true "${ONELAUNCH_IN_REOPEN_CLOSED_LAUNCH:-false}"; then
  reopen=(--reopen-closed-launch)
elif [ "${GITHUB_RUN_ATTEMPT:-1}" -gt 1 ] 2>/dev/null; then
  # A re-run reports into its first attempt's launch, which that attempt's
  # finish job may have closed: reopen it (the re-run's finish closes it again).
  reopen=(--reopen-closed-launch)
fi
unset ALLURE_REOPEN_CLOSED_LAUNCH

# Matrix legs of one job share GITHUB_JOB: their matrix values tell their
# executions apart, so JUnit reports of the same name never collide. (Where the
# runner gives the action no matrix context, ONELAUNCH_CI_EXECUTION set on the
# job does the same.)
matrix="$(printf '%s' "${ONELAUNCH_MATRIX:-}" | tr -d '\n' | tr -s ' ')"
if [ -z "${ONELAUNCH_CI_EXECUTION:-}" ] && [ -n "$matrix" ] && [ "$matrix" != "null" ]; then
  export ONELAUNCH_CI_EXECUTION="$matrix"
fi
unset ONELAUNCH_MATRIX

# ------------------------------------------------------------------ the binary
# Which release asset this runner runs; sets target, asset_ext, exe, windows.
# Windows runners run this script in Git Bash (uname -s: MINGW64_NT-…,
# MSYS_NT-…); Windows on arm64 runs the x86_64 build under emulation.
platform() {
  local os arch
  os="$(uname -s)"
  arch="$(lower "$(uname -m)")"
  case "$arch" in
    x86_64 | amd64) arch=x86_64 ;;
    aarch64 | arm64) arch=aarch64 ;;
    *) return 1 ;;
  esac
  asset_ext=tar.gz
  exe=onelaunch
  windows=false
  case "$os" in
    Linux) target="$arch-unknown-linux-musl" ;;
    Darwin) target="$arch-apple-darwin" ;;
    MINGW* | MSYS* | CYGWIN* | Windows_NT)
      target=x86_64-pc-windows-msvc
      asset_ext=zip
      exe=onelaunch.exe
      windows=true
      ;;
    *) return 1 ;;
  esac
}

# A path as Windows programs (and the runner, for GITHUB_PATH) spell it.
native_path() {
  if [ "$windows" = true ] && command -v cygpath >/dev/null 2>&1; then
    cygpath -w "$1"
  else
    printf '%s\n' "$1"
  fi
}

# A value of plugins/github/checksums.json, which has one "key": "value" pair
# per line: "version" and "<asset>": "<sha256>". Empty when there is none.
committed_sha256() {
  local file="$action_root/plugins/github/checksums.json"
  [ -f "$file" ] || return 0
  awk -F'"' -v name="$1" '$2 == name && NF >= 5 { print $4; exit }' "$file"
}

# The base URL the release assets are downloaded from (release_url, without
# a trailing slash): the release-url input, else ONELAUNCH_RELEASE_URL, else
# the releases of the repository the action comes from. Empty for a local
# action (uses: ./) without release-url. Must be https.
release_base() {
  local repo what
  release_url="${ONELAUNCH_IN_RELEASE_URL:-${ONELAUNCH_RELEASE_URL:-}}"
  what="release-url"
  if [ -z "$release_url" ]; then
    repo="${ONELAUNCH_ACTION_REPOSITORY:-${GITHUB_ACTION_REPOSITORY:-}}"
    if [ -z "$repo" ]; then
      return 0
    fi
    release_url="${GITHUB_SERVER_URL:-https://github.com}/$repo/releases/download"
    what="the release URL derived from GITHUB_SERVER_URL"
  fi
  case "$release_url" in
    *[[:space:][:cntrl:]\"\'\`\\\<\>]*)
      fail "$what must be a URL without blanks, quotes or backslashes, e.g. https://github.example.com/onelaunch/onelaunch/releases/download; got '$(printf '%s' "$release_url" | tr -d '\r\n')'"
      ;;
    https://?*) ;;
    *) fail "$what must be an https:// URL (assets are fetched from <release-url>/<version>/<asset>), e.g. https://github.example.com/onelaunch/onelaunch/releases/download; got '$release_url'" ;;
  esac
  while [ "${release_url%/}" != "$release_url" ]; do
    release_url="${release_url%/}"
  done
}

# SHA-256 of a file in lower-case hex: sha256sum (Linux, Git Bash), shasum
# (macOS) or certutil (Windows).
sha256_of() {
  local out
  if command -v sha256sum >/dev/null 2>&1; then
    out="$(sha256sum <"$1")"
  elif command -v shasum >/dev/null 2>&1; then
    out="$(shasum -a 256 <"$1")"
  elif command -v certutil >/dev/null 2>&1; then
    # The hash is the second line (spaced out by older versions).
    out="$(certutil -hashfile "$(native_path "$1")" SHA256 | sed -n 2p | tr -d ' ')"
  fi
  printf '%s' "${out%% *}" | tr -d '\r' | tr '[:upper:]' '[:lower:]'
}

# Extracts the binary ($exe) of the archive $1 into the directory $2: tar for
# .tar.gz; for .zip unzip, else tar (Windows' own tar.exe, bsdtar, reads zip),
# else PowerShell's Expand-Archive.
extract() {
  local archive="$1" into="$2"
  mkdir -p "$into"
  case "$asset_ext" in
    zip)
      if command -v unzip >/dev/null 2>&1 && unzip -q -o "$archive" "$exe" -d "$into" >&2; then
        :
      elif command -v tar >/dev/null 2>&1 && tar -xf "$archive" -C "$into" "$exe" 2>/dev/null; then
        :
      elif command -v powershell >/dev/null 2>&1; then
        # shellcheck disable=SC2016 # PowerShell expands $env:…, not bash
        OL_ZIP="$(native_path "$archive")" OL_DEST="$(native_path "$into")" \
          powershell -NoProfile -NonInteractive -Command \
          'Expand-Archive -LiteralPath $env:OL_ZIP -DestinationPath $env:OL_DEST -Force' >&2 || true
      fi
      ;;
    *)
      tar -xzf "$archive" -C "$into" "$exe" || true
      ;;
  esac
  if [ ! -f "$into/$exe" ]; then
    fail "could not extract $exe from $asset (a .zip needs unzip, a tar that reads zip, or PowerShell)"
  fi
}

# Downloads $asset from the release, verifies it against the committed
# checksum ($expected) and installs its binary into $1 with the hash recorded
# next to it (.sha256). Never falls back to a source build: a failed download
# or a different hash fails the step.
install_release() {
  local dir="$1" url tmp actual
  url="$release_url/$version/$asset"
  if ! command -v sha256sum >/dev/null 2>&1 && ! command -v shasum >/dev/null 2>&1 &&
    ! command -v certutil >/dev/null 2>&1; then
    fail "no sha256sum, shasum or certutil on this runner to verify $asset with"
  fi
  tmp="$(mktemp -d)"
  log "downloading $url"
  if ! curl --proto '=https' --tlsv1.2 -fsSL --retry 5 --retry-delay 2 -o "$tmp/$asset" "$url"; then
    rm -rf "$tmp"
    fail "could not download $asset from $url: check the version and release-url inputs (or set the 'binary' input)"
  fi
  actual="$(sha256_of "$tmp/$asset")"
  if [ "$actual" != "$expected" ]; then
    rm -rf "$tmp"
    fail "checksum mismatch for $asset: expected $expected (plugins/github/checksums.json of the action), got $actual from $url; refusing to install it"
  fi
  extract "$tmp/$asset" "$tmp/x"
  mkdir -p "$dir"
  rm -f "$dir/.sha256"
  mv -f "$tmp/x/$exe" "$dir/$exe.new"
  chmod +x "$dir/$exe.new"
  mv -f "$dir/$exe.new" "$dir/$exe"
  echo release >"$dir/.origin"
  # Written last: a cache entry counts only once its binary is complete.
  printf '%s\n' "$expected" >"$dir/.sha256"
  rm -rf "$tmp"
  log "installed $asset (sha256 $actual) into $dir"
}

# Builds the action's own source (cargo, incremental in the cache directory).
install_from_source() {
  local dir="$1"
  if ! command -v cargo >/dev/null 2>&1; then
    fail "no release binary for this runner and no cargo to build one: install Rust (e.g. dtolnay/rust-toolchain) or set the 'binary' input"
  fi
  if [ ! -f "$action_root/Cargo.toml" ]; then
    fail "cannot build from source: $action_root/Cargo.toml is missing"
  fi
  log "building onelaunch from $action_root (cargo build --release --locked)"
  mkdir -p "$dir"
  rm -f "$dir/.sha256"
  # From the action's root, so that its .cargo/config.toml (how the bundled
  # SQLite is compiled) applies: cargo reads configuration from the
  # directory it runs in, not from the manifest's.
  local build
  build="$(mkdir -p "$dir/build" && cd "$dir/build" && pwd)"
  if ! (cd "$action_root" && cargo build --release --locked \
    --target-dir "$build" --bin onelaunch >&2); then
    fail "cargo build of onelaunch failed"
  fi
  cp "$dir/build/release/$exe" "$dir/$exe.new"
  mv -f "$dir/$exe.new" "$dir/$exe"
  echo source >"$dir/.origin"
}

resolve_binary() {
  if [ -n "${ONELAUNCH_IN_BINARY:-}" ]; then
    if [ ! -x "$ONELAUNCH_IN_BINARY" ]; then
      fail "binary '$ONELAUNCH_IN_BINARY' does not exist or is not executable"
    fi
    OL="$ONELAUNCH_IN_BINARY"
    log "using the preinstalled binary $OL (not checksum-verified)"
    return
  fi
  local version target asset_ext exe windows cache dir asset expected release_url=""
  # The release this commit of the action was published with (checksums.json
  # "version"; equal to the tag at release tags, and what a major tag such as
  # v1 points to), else the action ref.
  version="${ONELAUNCH_IN_VERSION:-}"
  if [ -z "$version" ]; then
    version="$(committed_sha256 version)"
    case "$version" in
      unreleased) version="" ;;
    esac
  fi
  version="${version:-${ONELAUNCH_ACTION_REF:-${GITHUB_ACTION_REF:-}}}"
  version="${version:-local}"
  platform || fail "no onelaunch build for $(uname -s)/$(uname -m): set the 'binary' input"
  if [ -n "${ONELAUNCH_IN_RELEASE_URL:-${ONELAUNCH_RELEASE_URL:-}}" ]; then
    release_base # a malformed release-url fails even when nothing is downloaded
  fi
  cache="${RUNNER_TOOL_CACHE:-$HOME/.cache}"
  if [ "$windows" = true ] && command -v cygpath >/dev/null 2>&1; then
    cache="$(cygpath -u "$cache")"
  fi
  # Refs may contain slashes (feature/x) or anything else a ref allows: one
  # directory level per version, never `.`, `..` or a path outside the cache.
  version_dir="$(printf '%s' "$version" | tr -c 'A-Za-z0-9._+-' '_')"
  case "$version_dir" in
    .*) version_dir="_${version_dir#.}" ;;
  esac
  dir="$cache/onelaunch/$version_dir/$target"
  asset="onelaunch-$version-$target.$asset_ext"
  expected=""
  case "$version" in
    *[!A-Za-z0-9._+-]*) log "version '$version' is not a release tag" ;;
    *) expected="$(committed_sha256 "$asset")" ;;
  esac
  if [ -z "$expected" ]; then
    # The last resort: no pinned checksum, so nothing is downloaded.
    log "no committed checksum for $asset in plugins/github/checksums.json: building from source"
    install_from_source "$dir"
  else
    case "$expected" in
      *[!0-9a-f]*) fail "checksums.json: malformed SHA-256 for $asset" ;;
    esac
    if [ "${#expected}" -ne 64 ]; then
      fail "checksums.json: malformed SHA-256 for $asset"
    fi
    if [ -x "$dir/$exe" ] && [ -f "$dir/.sha256" ] && [ "$(cat "$dir/.sha256")" = "$expected" ]; then
      log "using the cached $asset in $dir (sha256 $expected, as pinned)"
    else
      release_base
      if [ -n "$release_url" ]; then
        install_release "$dir"
      else
        log "local action (no action repository) and no release-url: building from source"
        install_from_source "$dir"
      fi
    fi
  fi
  OL="$dir/$exe"
  if [ -n "${GITHUB_PATH:-}" ]; then
    native_path "$dir" >>"$GITHUB_PATH"
  fi
}

OL=""
resolve_binary
log "$("$OL" --version)"

# Runs onelaunch with the token in its environment only.
ol() {
  ALLURE_TOKEN="$token" "$OL" "$@"
}

# ------------------------------------------------------------------ publishing
# Step outputs (launch_id, launch_name, launch_url, job_run_id, job_run_url)
# and, unless $2 is "outputs-only", ALLURE_* for the later steps of this job.
publish() {
  local run="$1"
  if [ -n "${GITHUB_OUTPUT:-}" ]; then
    ol job-run env --job-run-id "$run" --format github-output --output-file "$GITHUB_OUTPUT"
  fi
  if [ "${2:-}" != outputs-only ] && [ -n "${GITHUB_ENV:-}" ]; then
    ol job-run env --job-run-id "$run" --format github --output-file "$GITHUB_ENV"
  fi
}

# Exact values of the job run's variables (ALLURE_LAUNCH_ID, ...) in this shell.
load_job_run() {
  local vars
  vars="$(ol job-run env --job-run-id "$1" --format shell)"
  eval "$vars"
}

# Markdown link text without characters that would break it.
md_text() { printf '%s' "$1" | tr '[]|\n\r' '()/  '; }

# The ids onelaunch printed while uploading ("Launch [1] ...", "Job Run [2]").
parse_upload_log() {
  local file="$1"
  up_launch="$(sed -n 's/^Launch \[\([0-9][0-9]*\)\].*/\1/p' "$file" | tail -n 1)"
  up_run="$(sed -n 's/^Job Run \[\([0-9][0-9]*\)\].*/\1/p' "$file" | tail -n 1)"
  up_counts="$(sed -n 's/^\(Uploaded .*\)/\1/p' "$file" | tail -n 1)"
  up_link="$(sed -n 's/^Launch link: //p' "$file" | tail -n 1)"
}

results_paths() {
  local raw="${ONELAUNCH_IN_RESULTS:-}"
  if [ -z "$raw" ]; then
    raw="${ALLURE_RESULTS:-allure-results}"
  fi
  paths=()
  while IFS= read -r p; do
    # Trim surrounding blanks; skip empty lines.
    p="$(printf '%s' "$p" | sed 's/^[[:space:]]*//; s/[[:space:]]*$//')"
    if [ -n "$p" ]; then
      paths+=("$p")
    fi
  done <<EOF_RESULTS
$raw
EOF_RESULTS
  if [ "${#paths[@]}" -eq 0 ]; then
    fail "no results to upload: set the 'results' input"
  fi
}

target_flags() {
  tflags=()
  if [ -n "$job_run_id" ]; then
    tflags+=(--job-run-id "$job_run_id")
  fi
  if [ -n "$launch_id" ]; then
    tflags+=(--launch-id "$launch_id")
  fi
  if [ -n "${ONELAUNCH_IN_LAUNCH_NAME:-}" ]; then
    tflags+=(--launch-name "$ONELAUNCH_IN_LAUNCH_NAME")
  fi
  if [ -n "${ONELAUNCH_IN_LAUNCH_TAGS:-}" ]; then
    tflags+=(--launch-tags "$ONELAUNCH_IN_LAUNCH_TAGS")
  fi
  tflags+=(${reopen[@]+"${reopen[@]}"})
  if is_true "${ONELAUNCH_IN_ALLOW_EMPTY:-false}"; then
    tflags+=(--allow-empty)
  fi
  log "target: launch-id=${launch_id:--} job-run-id=${job_run_id:--} (- = this workflow run's own)"
}

after_upload() {
  local what="$1" code="$2" log_file="$3"
  parse_upload_log "$log_file"
  if [ -n "$up_counts" ]; then
    summary "- onelaunch $what into [launch #$up_launch]($up_link)${up_run:+, job run #$up_run}: $up_counts"
  else
    summary "- onelaunch $what failed (exit code $code)"
  fi
  local run="${job_run_id:-$up_run}"
  if [ -n "$run" ] && [ -n "$up_counts" ]; then
    publish "$run"
  fi
}

# ------------------------------------------------------------------ commands
cmd_start() {
  local args=(job-run start) out
  if [ -n "$launch_id" ]; then
    args+=(--launch-id "$launch_id")
  fi
  if [ -n "${ONELAUNCH_IN_LAUNCH_NAME:-}" ]; then
    args+=(--launch-name "$ONELAUNCH_IN_LAUNCH_NAME")
  fi
  if [ -n "${ONELAUNCH_IN_LAUNCH_TAGS:-}" ]; then
    args+=(--launch-tags "$ONELAUNCH_IN_LAUNCH_TAGS")
  fi
  args+=(${reopen[@]+"${reopen[@]}"})
  out="$(ol --output json "${args[@]}")"
  local run
  run="$(printf '%s\n' "$out" | sed -n 's/^[[:space:]]*"jobRunId":[[:space:]]*\([0-9][0-9]*\).*/\1/p' | head -n 1)"
  if [ -z "$run" ]; then
    fail "onelaunch job-run start did not report a job run id"
  fi
  load_job_run "$run"
  log "launch $ALLURE_LAUNCH_ID ($ALLURE_LAUNCH_URL), job run $ALLURE_JOB_RUN_ID ($ALLURE_JOB_RUN_URL)"
  publish "$run"
  summary "### onelaunch" "" \
    "Launch [$(md_text "$ALLURE_LAUNCH_NAME") (#$ALLURE_LAUNCH_ID)]($ALLURE_LAUNCH_URL) started; job run [#$ALLURE_JOB_RUN_ID]($ALLURE_JOB_RUN_URL)." ""
}

# upload and watch never stop the job run that start created: matrix shards
# and parallel jobs of one workflow run share it, and only finish (or
# `onelaunch job-run stop`) ends it. Each upload ends only its own upload
# session.
cmd_upload() {
  local paths tflags code log_file
  results_paths
  target_flags
  log_file="$(mktemp)"
  set +e
  ol upload ${tflags[@]+"${tflags[@]}"} "${paths[@]}" 2>&1 | tee "$log_file"
  code="${PIPESTATUS[0]}"
  set -e
  after_upload "upload of ${paths[*]}" "$code" "$log_file"
  rm -f "$log_file"
  if [ "$code" -ne 0 ]; then
    fail "onelaunch upload failed (exit code $code)"
  fi
}

cmd_watch() {
  local paths tflags code log_file
  if [ -z "${ONELAUNCH_IN_RUN:-}" ]; then
    fail "watch needs the 'run' input (the test command)"
  fi
  results_paths
  target_flags
  log_file="$(mktemp)"
  set +e
  # The test command gets neither the token nor the inputs.
  ol watch --results "${paths[0]}" ${tflags[@]+"${tflags[@]}"} -- \
    env -u ALLURE_TOKEN -u ONELAUNCH_IN_RUN bash -eo pipefail -c "$ONELAUNCH_IN_RUN" 2>&1 | tee "$log_file"
  code="${PIPESTATUS[0]}"
  set -e
  after_upload "watch of ${paths[0]}" "$code" "$log_file"
  rm -f "$log_file"
  if [ "$code" -ne 0 ]; then
    printf '::error title=onelaunch::the test command or the upload failed (exit code %s)\n' "$code"
    exit "$code"
  fi
}

# The gate-rules input as `launch gate` arguments (in gargs). The text is
# split on blanks only (read -a: no globbing, quoting or expansion) and every
# word must be a known flag or its value; anything else fails the step.
gate_args() {
  local raw w value has_value i n
  local -a words=()
  gargs=()
  raw="$(printf '%s' "${ONELAUNCH_IN_GATE_RULES:-}" | tr '\n\r\t' '   ')"
  IFS=' ' read -r -a words <<<"$raw" || true
  n="${#words[@]}"
  i=0
  while [ "$i" -lt "$n" ]; do
    w="${words[$i]}"
    has_value=false
    value=""
    case "$w" in
      --*=*)
        value="${w#*=}"
        w="${w%%=*}"
        has_value=true
        ;;
    esac
    case "$w" in
      --max-failures | --min-tests | --min-pass-rate | --failure-statuses)
        if [ "$has_value" = false ]; then
          i=$((i + 1))
          if [ "$i" -ge "$n" ]; then
            fail "gate-rules: $w needs a value"
          fi
          value="${words[$i]}"
        fi
        case "$w" in
          --max-failures | --min-tests)
            case "$value" in
              '' | *[!0-9]*) fail "gate-rules: $w expects a whole number, got '$value'" ;;
            esac
            ;;
          --min-pass-rate)
            case "$value" in
              '' | . | *[!0-9.]* | *.*.*) fail "gate-rules: $w expects a percentage such as 95 or 99.5, got '$value'" ;;
            esac
            ;;
          *)
            case "$value" in
              '' | *[!a-z,]*) fail "gate-rules: $w expects statuses such as failed,broken, got '$value'" ;;
            esac
            ;;
        esac
        gargs+=("$w" "$value")
        ;;
      --all-job-runs | --all-planned | --no-new-failures)
        if [ "$has_value" = true ]; then
          fail "gate-rules: $w takes no value"
        fi
        gargs+=("$w")
        ;;
      *)
        fail "gate-rules: unknown word '$w': expected --max-failures N, --min-pass-rate P, --min-tests N, --all-job-runs, --all-planned, --no-new-failures or --failure-statuses a,b"
        ;;
    esac
    i=$((i + 1))
  done
}

# Text for a workflow command's message (GitHub's escaping).
wf_escape() { printf '%s' "$1" | sed 's/%/%25/g' | tr -d '\r\n'; }

# Judges the launch's quality gate: the Markdown table goes to the log and
# the job summary, one ::error line per broken rule. Returns 1 when the gate
# failed or could not be judged.
run_gate() {
  local md code
  md="$(mktemp)"
  set +e
  ol --output markdown launch gate "$launch_id" ${gargs[@]+"${gargs[@]}"} >"$md"
  code=$?
  set -e
  cat "$md"
  if [ -n "${GITHUB_STEP_SUMMARY:-}" ]; then
    printf '\n' >>"$GITHUB_STEP_SUMMARY"
    cat "$md" >>"$GITHUB_STEP_SUMMARY"
  fi
  if [ "$code" -eq 0 ]; then
    rm -f "$md"
    log "quality gate of launch $launch_id passed"
    return 0
  fi
  if [ "$code" -eq 10 ]; then
    # Rows "| rule | expected | measured | **fail** |" of the table.
    awk '
      /^\| .* \| \*\*fail\*\* \|$/ {
        row = substr($0, 3, length($0) - 15)
        gsub(/ \| \| /, " |  | ", row)
        n = split(row, col, / \| /)
        if (col[2] == "" || col[2] == " ") {
          print col[1] ": " col[3]
        } else {
          print col[1] ": " col[3] " (expected " col[2] ")"
        }
      }' "$md" | while IFS= read -r broken; do
      printf '::error title=onelaunch quality gate::%s\n' "$(wf_escape "$broken")"
    done
    printf '::error title=onelaunch::the quality gate of launch %s failed (the launch itself was finished as asked)\n' "$launch_id"
  else
    printf '::error title=onelaunch::the quality gate of launch %s could not be judged (exit code %s)\n' "$launch_id" "$code"
  fi
  rm -f "$md"
  return 1
}

cmd_finish() {
  local status_flags=() close_timeout gargs=() gate=false
  close_timeout="${ONELAUNCH_IN_CLOSE_TIMEOUT:-5m}"
  case "$close_timeout" in
    '' | *[!0-9smhd]* | [!0-9]*) fail "close-timeout must be a duration such as 30s, 5m or 1h, got '$close_timeout'" ;;
  esac
  if is_true "${ONELAUNCH_IN_QUALITY_GATE:-false}"; then
    gate=true
    gate_args
  elif [ -n "${ONELAUNCH_IN_GATE_RULES:-}" ]; then
    fail "gate-rules is set but quality-gate is not true"
  fi
  if [ -n "${ONELAUNCH_IN_STATUS:-}" ]; then
    status_flags=(--status "$(lower "$ONELAUNCH_IN_STATUS")")
  fi
  if [ -z "$job_run_id" ] && [ -z "$launch_id" ]; then
    # Nothing given: this workflow run's own job run, if it has one.
    local found
    if found="$(ol job-run env --format shell 2>/dev/null)"; then
      eval "$found"
      job_run_id="$ALLURE_JOB_RUN_ID"
    fi
  fi
  if [ -n "$job_run_id" ]; then
    ol job-run stop --job-run-id "$job_run_id" ${status_flags[@]+"${status_flags[@]}"}
    load_job_run "$job_run_id"
    if [ -z "$launch_id" ]; then
      launch_id="$ALLURE_LAUNCH_ID"
    fi
    publish "$job_run_id" outputs-only
  elif [ -n "${GITHUB_OUTPUT:-}" ]; then
    echo "launch_id=$launch_id" >>"$GITHUB_OUTPUT"
  fi
  if [ -z "$launch_id" ]; then
    fail "finish: no launch to close: set the 'launch-id' (or 'job-run-id') input"
  fi
  if is_true "${ONELAUNCH_IN_CLOSE_LAUNCH:-true}"; then
    # Waits for the uploads still in flight (a shard that has not ended yet
    # shares this job run) before closing; idempotent: closing a closed launch
    # succeeds.
    ol launch close "$launch_id" --wait --timeout "$close_timeout"
  else
    log "leaving launch $launch_id open (close-launch: false)"
  fi
  if [ -n "${GITHUB_STEP_SUMMARY:-}" ]; then
    ol launch show "$launch_id" --output markdown >>"$GITHUB_STEP_SUMMARY"
  fi
  ol launch show "$launch_id"
  # After the close, so the verdict stored at close is the one judged; a
  # failed gate fails the step but never undoes the close.
  if [ "$gate" = true ] && ! run_gate; then
    exit 1
  fi
}

cmd_plan() {
  local file
  if [ -z "$job_run_id" ]; then
    fail "plan needs the job run the server triggered: set the 'job-run-id' input (or ALLURE_JOB_RUN_ID)"
  fi
  file="${ALLURE_TESTPLAN_PATH:-${RUNNER_TEMP:-${TMPDIR:-/tmp}}/onelaunch-testplan.json}"
  case "$file" in
    *"
"*) fail "ALLURE_TESTPLAN_PATH must be a single line" ;;
  esac
  ol job-run plan --job-run-id "$job_run_id" --output-file "$file"
  publish "$job_run_id"
  if [ -n "${GITHUB_ENV:-}" ]; then
    echo "ALLURE_TESTPLAN_PATH=$file" >>"$GITHUB_ENV"
  fi
  if [ -n "${GITHUB_OUTPUT:-}" ]; then
    echo "testplan_path=$file" >>"$GITHUB_OUTPUT"
  fi
}

"cmd_$command"

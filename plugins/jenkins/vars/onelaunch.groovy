// onelaunch: one launch per Jenkins build, shared by every stage and parallel
// branch. Wraps the `onelaunch` CLI; see onelaunch.txt for the step reference.
//
// Conventions that keep the API token out of Groovy and out of the build log:
// the token is bound by withCredentials and read by the CLI from ALLURE_TOKEN;
// every other value reaches the shell through withEnv, so the shell text is a
// fixed, single-quoted string. Values come back from the CLI through a JSON
// file read with readFile.
//
// Unix agents run the CLI with `sh`, Windows agents (isUnix() false) with
// `bat`. Without a configured binary and without `onelaunch` on the agent's
// PATH, the release pinned in resources/onelaunch/checksums.json is downloaded
// (sh: curl or wget; Windows: powershell), verified against that file and
// cached per version on the agent.

import com.cloudbees.groovy.cps.NonCPS
import groovy.json.JsonSlurperClassic

/** `onelaunch(config) { ... }` is `onelaunch.withLaunch(config) { ... }`. */
def call(Map config = [:], Closure body) {
    return withLaunch(config, body)
}

/**
 * Creates (or joins) the launch and this build's job run. Publishes
 * ALLURE_LAUNCH_ID, ALLURE_JOB_RUN_ID and ALLURE_LAUNCH_URL in env for later
 * and parallel stages, and remembers endpoint, project, credential and binary.
 * Returns [launchId:, jobRunId:, launchUrl:] (strings).
 */
Map start(Map config = [:]) {
    Map c = settings('start', config)
    requireEndpoint('start', c)
    List vars = connectionEnv(c)
    vars.add('ONELAUNCH_ENV_FILE=' + envFile())
    if (c.launchName) {
        vars.add('ALLURE_LAUNCH_NAME=' + c.launchName)
    }
    if (c.launchTags) {
        vars.add('ALLURE_LAUNCH_TAGS=' + tagList(c.launchTags))
    }
    if (c.launchId) {
        vars.add('ALLURE_LAUNCH_ID=' + c.launchId)
    }
    withEnv(vars) {
        withToken(c) {
            cli(c, false, '''
unset ALLURE_JOB_RUN_ID
rm -f "$ONELAUNCH_ENV_FILE"
"$ONELAUNCH_BINARY" job-run start
"$ONELAUNCH_BINARY" job-run env --format json --output-file "$ONELAUNCH_ENV_FILE"
''', '''
set ALLURE_JOB_RUN_ID=
if exist "!ONELAUNCH_ENV_FILE!" del /f /q "!ONELAUNCH_ENV_FILE!"
"!ONELAUNCH_BINARY!" job-run start
if errorlevel 1 exit /b !errorlevel!
"!ONELAUNCH_BINARY!" job-run env --format json --output-file "!ONELAUNCH_ENV_FILE!"
exit /b !errorlevel!
''')
        }
    }
    Map ids = parseEnvJson(readFile(file: envFile()))
    if (!ids.ALLURE_LAUNCH_ID || !ids.ALLURE_JOB_RUN_ID) {
        error('onelaunch.start: the CLI reported no launch or job run id')
    }
    for (String key : publishedKeys()) {
        if (ids[key]) {
            env.setProperty(key, ids[key])
        }
    }
    if (c.credentialsId) {
        env.ONELAUNCH_CREDENTIALS_ID = c.credentialsId
    }
    if (c.binary) {
        env.ONELAUNCH_BINARY = c.binary
    }
    if (config.releaseUrl) {
        env.ONELAUNCH_RELEASE_URL = c.releaseUrl
    }
    echo("onelaunch: launch ${ids.ALLURE_LAUNCH_ID}, job run ${ids.ALLURE_JOB_RUN_ID}: ${ids.ALLURE_LAUNCH_URL}")
    return [launchId: ids.ALLURE_LAUNCH_ID, jobRunId: ids.ALLURE_JOB_RUN_ID, launchUrl: ids.ALLURE_LAUNCH_URL]
}

/**
 * Uploads result directories, files or glob patterns into the launch (into
 * this build's job run when start ran). Safe in parallel branches: it reads
 * env but never changes it. Missing paths are reported and skipped. Returns
 * the CLI exit code: 0, or 3 when some files were refused (the rest uploaded).
 */
int upload(Map config = [:]) {
    Map c = settings('upload', config)
    requireEndpoint('upload', c)
    List wanted = pathList(c.results ?: env.ALLURE_RESULTS ?: 'allure-results')
    List paths = []
    for (String p : wanted) {
        if (isPattern(p) || fileExists(p)) {
            paths.add(p)
        } else {
            echo("onelaunch: no results at ${p}, skipped")
        }
    }
    if (paths.isEmpty()) {
        echo('onelaunch: nothing to upload')
        return 0
    }
    List vars = connectionEnv(c)
    vars.add('ONELAUNCH_RESULTS=' + paths.join('\n'))
    // cmd cannot split a list: one variable per path, named in the bat text.
    String batPaths = ''
    if (!c.unix) {
        for (int i = 0; i < paths.size(); i++) {
            vars.add("ONELAUNCH_RESULT_${i + 1}=${paths[i]}".toString())
            batPaths += " \"!ONELAUNCH_RESULT_${i + 1}!\""
        }
    }
    vars.add('ONELAUNCH_ALLOW_EMPTY_FLAG=' + (str(c.allowEmpty) == 'true' ? '--allow-empty' : ''))
    if (c.launchId) {
        vars.add('ALLURE_LAUNCH_ID=' + c.launchId)
    }
    if (c.jobRunId) {
        vars.add('ALLURE_JOB_RUN_ID=' + c.jobRunId)
    }
    int code = withEnv(vars) {
        withToken(c) {
            cli(c, true, '''
set --
while IFS= read -r results_path; do
  if [ -n "$results_path" ]; then set -- "$@" "$results_path"; fi
done <<ONELAUNCH_RESULTS_END
$ONELAUNCH_RESULTS
ONELAUNCH_RESULTS_END
if [ -n "$ONELAUNCH_ALLOW_EMPTY_FLAG" ]; then set -- "$ONELAUNCH_ALLOW_EMPTY_FLAG" "$@"; fi
"$ONELAUNCH_BINARY" upload "$@"
''', '''
"!ONELAUNCH_BINARY!" upload !ONELAUNCH_ALLOW_EMPTY_FLAG!''' + batPaths + '''
exit /b !errorlevel!
''')
        }
    }
    if (code == 3) {
        echo('onelaunch: WARNING: some result files were refused (listed above); the others were uploaded')
    } else if (code != 0) {
        error("onelaunch.upload failed: ${exitMeaning(code)}")
    }
    return code
}

/**
 * Runs a test command (`command`, run with sh) and uploads the results it
 * writes into `results` (one directory) while it runs, into the launch and
 * this build's job run. Its upload stays in flight until the command ends, so
 * a finish in another branch waits for it. Safe in parallel branches; the
 * command gets ALLURE_LAUNCH_ID and ALLURE_JOB_RUN_ID but never the token.
 * Returns the exit code: the command's when it failed, else the upload's
 * (0, or 3 when some files were refused); other upload failures are errors.
 */
int watch(Map config = [:]) {
    Map c = settings('watch', config)
    requireEndpoint('watch', c)
    if (!c.command) {
        error('onelaunch.watch: command is required (the test command to run)')
    }
    List vars = connectionEnv(c)
    vars.add('ONELAUNCH_RESULTS=' + str(c.results ?: env.ALLURE_RESULTS ?: 'allure-results'))
    vars.add('ONELAUNCH_COMMAND=' + str(c.command))
    if (!c.unix) {
        // cmd has no `sh -c`: the command becomes a batch file, as `bat` does.
        String file = "onelaunch-watch-${UUID.randomUUID()}.cmd".toString()
        writeFile(file: file, text: '@echo off\r\n' + str(c.command).replace('\r\n', '\n').replace('\n', '\r\n') + '\r\n')
        vars.add('ONELAUNCH_COMMAND_FILE=' + file)
    }
    vars.add('ONELAUNCH_ALLOW_EMPTY_FLAG=' + (str(c.allowEmpty) == 'true' ? '--allow-empty' : ''))
    if (c.launchId) {
        vars.add('ALLURE_LAUNCH_ID=' + c.launchId)
    }
    if (c.jobRunId) {
        vars.add('ALLURE_JOB_RUN_ID=' + c.jobRunId)
    }
    int code = withEnv(vars) {
        withToken(c) {
            cli(c, true, '''
set --
if [ -n "$ONELAUNCH_ALLOW_EMPTY_FLAG" ]; then set -- "$ONELAUNCH_ALLOW_EMPTY_FLAG"; fi
"$ONELAUNCH_BINARY" watch --results "$ONELAUNCH_RESULTS" "$@" -- sh -ec "$ONELAUNCH_COMMAND"
''', '''
"!ONELAUNCH_BINARY!" watch --results "!ONELAUNCH_RESULTS!" !ONELAUNCH_ALLOW_EMPTY_FLAG! -- cmd /d /c "!ONELAUNCH_COMMAND_FILE!"
set rc=!errorlevel!
del /f /q "!ONELAUNCH_COMMAND_FILE!" >nul 2>&1
exit /b !rc!
''')
        }
    }
    if (code == 3) {
        echo('onelaunch: WARNING: some result files were refused (listed above), or the tests exited 3')
    } else if (code != 0) {
        error("onelaunch.watch failed: ${exitMeaning(code)} (the test command's own exit code when it failed)")
    }
    return code
}

/**
 * Stops this build's job run and closes the launch, once every upload still
 * in flight (a parallel branch that has not ended yet) is done or
 * `closeTimeout` (default 5m) has passed. Only finish (or an explicit
 * `onelaunch job-run stop`) ends the build's job run: upload and watch never
 * do. Idempotent: a second call for the same launch and job run only reports
 * that they are finished.
 */
def finish(Map config = [:]) {
    Map c = settings('finish', config)
    if (c.status && !(c.status in ['passed', 'failed', 'cancelled', 'unknown'])) {
        error("onelaunch.finish: status must be passed, failed, cancelled or unknown, not '${c.status}'")
    }
    if (!c.launchId && !c.jobRunId) {
        echo('onelaunch: no launch to finish (onelaunch.start did not run)')
        return
    }
    requireEndpoint('finish', c)
    String done = (c.launchId ?: '') + '/' + (c.jobRunId ?: '')
    if (env.ONELAUNCH_FINISHED == done) {
        echo("onelaunch: launch ${c.launchId ?: '-'}, job run ${c.jobRunId ?: '-'} already finished")
        if (isTrue(config.qualityGate)) {
            qualityGate(c, gateRuleArgs(config))
        }
        return
    }
    String timeout = str(config.closeTimeout ?: '5m')
    if (!(timeout ==~ /[0-9]+(ms|s|m|h|d)?/)) {
        error("onelaunch.finish: closeTimeout must be a duration such as 30s, 5m or 1h, not '${timeout}'")
    }
    List gateArgs = gateRuleArgs(config)
    List vars = connectionEnv(c)
    vars.add('ONELAUNCH_CLOSE_LAUNCH=' + (c.closeLaunch == 'false' ? 'false' : 'true'))
    vars.add('ONELAUNCH_CLOSE_TIMEOUT=' + timeout)
    if (c.status) {
        vars.add('ONELAUNCH_STATUS=' + c.status)
    }
    if (c.launchId) {
        vars.add('ALLURE_LAUNCH_ID=' + c.launchId)
    }
    if (c.jobRunId) {
        vars.add('ALLURE_JOB_RUN_ID=' + c.jobRunId)
    }
    int code = withEnv(vars) {
        withToken(c) {
            cli(c, true, '''
rc=0
if [ -n "${ALLURE_JOB_RUN_ID:-}" ]; then
  if [ -n "${ONELAUNCH_STATUS:-}" ]; then
    "$ONELAUNCH_BINARY" job-run stop --status "$ONELAUNCH_STATUS" || rc=$?
  else
    "$ONELAUNCH_BINARY" job-run stop || rc=$?
  fi
fi
if [ "$ONELAUNCH_CLOSE_LAUNCH" = true ] && [ -n "${ALLURE_LAUNCH_ID:-}" ]; then
  # Waits for uploads still in flight (parallel branches that share this job
  # run and have not ended yet) before closing.
  "$ONELAUNCH_BINARY" launch close "$ALLURE_LAUNCH_ID" --wait --timeout "$ONELAUNCH_CLOSE_TIMEOUT" || rc=$?
fi
exit "$rc"
''', '''
set rc=0
if defined ALLURE_JOB_RUN_ID (
  if defined ONELAUNCH_STATUS (
    "!ONELAUNCH_BINARY!" job-run stop --status "!ONELAUNCH_STATUS!"
  ) else (
    "!ONELAUNCH_BINARY!" job-run stop
  )
  if errorlevel 1 set rc=!errorlevel!
)
if "!ONELAUNCH_CLOSE_LAUNCH!"=="true" if defined ALLURE_LAUNCH_ID (
  "!ONELAUNCH_BINARY!" launch close "!ALLURE_LAUNCH_ID!" --wait --timeout "!ONELAUNCH_CLOSE_TIMEOUT!"
  if errorlevel 1 set rc=!errorlevel!
)
exit /b !rc!
''')
        }
    }
    if (code != 0) {
        error("onelaunch.finish failed: ${exitMeaning(code)}")
    }
    env.ONELAUNCH_FINISHED = done
    // After the close, so the verdict stored at close is the one judged; a
    // broken gate fails the build but never undoes the close.
    if (isTrue(config.qualityGate)) {
        qualityGate(c, gateArgs)
    }
}

/**
 * Judges the launch's quality gate (`onelaunch launch gate`): echoes the
 * Markdown table, keeps it in onelaunch-gate.md and fails the build with the
 * broken rules.
 */
def qualityGate(Map c, List gateArgs) {
    if (!c.launchId) {
        error('onelaunch.finish: qualityGate needs the launch: pass launchId or set ALLURE_LAUNCH_ID')
    }
    List vars = connectionEnv(c)
    vars.add('ALLURE_LAUNCH_ID=' + c.launchId)
    // Words already checked against the known flags (gateRuleArgs): no blanks,
    // no shell syntax; split with globbing off, never run as script text.
    vars.add('ONELAUNCH_GATE_ARGS=' + gateArgs.join(' '))
    int code = withEnv(vars) {
        withToken(c) {
            cli(c, true, '''
set -f
# shellcheck disable=SC2086
"$ONELAUNCH_BINARY" --output markdown launch gate "$ALLURE_LAUNCH_ID" $ONELAUNCH_GATE_ARGS > onelaunch-gate.md
''', '''
"!ONELAUNCH_BINARY!" --output markdown launch gate "!ALLURE_LAUNCH_ID!" !ONELAUNCH_GATE_ARGS! > onelaunch-gate.md
exit /b !errorlevel!
''')
        }
    }
    String table = fileExists('onelaunch-gate.md') ? readFile('onelaunch-gate.md') : ''
    if (table) {
        echo(table)
    }
    if (code == 10) {
        error("onelaunch.finish: the quality gate of launch ${c.launchId} failed (the launch itself was finished): " +
                brokenRules(table).join('; '))
    }
    if (code != 0) {
        error("onelaunch.finish: the quality gate of launch ${c.launchId} could not be judged: ${exitMeaning(code)}")
    }
}

/** The `gateRules` list as `launch gate` arguments, each word checked. */
List gateRuleArgs(Map config) {
    Object raw = config.gateRules
    if (raw == null) {
        return []
    }
    if (!isTrue(config.qualityGate)) {
        error('onelaunch.finish: gateRules is set but qualityGate is not true')
    }
    String problem = gateRuleProblem(raw)
    if (problem) {
        error("onelaunch.finish: gateRules: ${problem}")
    }
    return stringList(raw)
}

@NonCPS
List stringList(Object raw) {
    return (raw as List).collect { it.toString() }
}

@NonCPS
boolean isTrue(Object value) {
    return value != null && value.toString() == 'true'
}

/** What is wrong with a gateRules list, or null. */
@NonCPS
String gateRuleProblem(Object raw) {
    if (!(raw instanceof Collection)) {
        return "expected a list such as ['--max-failures', '0'], got '${raw}'".toString()
    }
    List words = (raw as List).collect { it == null ? '' : it.toString() }
    Map values = ['--max-failures': /[0-9]+/, '--min-tests': /[0-9]+/, '--min-pass-rate': /[0-9]+(\.[0-9]+)?/,
                  '--failure-statuses': /[a-z]+(,[a-z]+)*/]
    List flags = ['--all-job-runs', '--all-planned', '--no-new-failures']
    int i = 0
    while (i < words.size()) {
        String w = words[i]
        if (values.containsKey(w)) {
            if (i + 1 >= words.size()) {
                return "${w} needs a value".toString()
            }
            String v = words[i + 1]
            if (!(v ==~ values[w])) {
                return "${w} expects a value such as 0, 95 or failed,broken, got '${v}'".toString()
            }
            i += 2
        } else if (flags.contains(w)) {
            i += 1
        } else {
            return ("unknown word '${w}': expected --max-failures N, --min-pass-rate P, --min-tests N, " +
                    '--all-job-runs, --all-planned, --no-new-failures or --failure-statuses a,b').toString()
        }
    }
    return null
}

/** "rule: measured (expected …)" of each failed row of the gate's table. */
@NonCPS
List brokenRules(String table) {
    List out = []
    for (String line : table.readLines()) {
        if (!(line.startsWith('| ') && line.endsWith(' | **fail** |'))) {
            continue
        }
        String row = line.substring(2, line.length() - ' | **fail** |'.length())
        List cols = row.split(/ \| /, -1) as List
        if (cols.size() >= 3 && cols[1].trim()) {
            out.add("${cols[0]}: ${cols[2..-1].join(' | ')} (expected ${cols[1]})".toString())
        } else if (cols.size() >= 3) {
            out.add("${cols[0]}: ${cols[2..-1].join(' | ')}".toString())
        } else {
            out.add(row)
        }
    }
    return out
}

/**
 * start, run the body, then (always) upload `results` when given and finish.
 * A failing body finishes the job run as failed (cancelled when the build was
 * aborted) and its error is rethrown; errors of the final upload or finish
 * are then only reported. Returns the body's value.
 */
def withLaunch(Map config = [:], Closure body) {
    settings('withLaunch', config)
    start(subset(config, startKeys()))
    String status = str(config.status)
    Throwable failure = null
    try {
        return body()
    } catch (Throwable e) {
        failure = e
        status = statusFor(e)
        throw e
    } finally {
        Throwable cleanup = null
        if (config.results) {
            try {
                upload(subset(config, uploadKeys()))
            } catch (Throwable e) {
                cleanup = e
            }
        }
        try {
            Map f = subset(config, finishKeys())
            if (status) {
                f.status = status
            }
            finish(f)
        } catch (Throwable e) {
            if (cleanup == null) {
                cleanup = e
            }
        }
        if (cleanup != null) {
            if (failure == null) {
                throw cleanup
            }
            echo("onelaunch: ${cleanup.message}")
        }
    }
}

// ---------------------------------------------------------------- internals

/** Validates the keys of `config` and resolves defaults from env. */
Map settings(String step, Map config) {
    String unknown = unknownKeys(config, keysOf(step))
    if (unknown) {
        error("onelaunch.${step}: unknown key(s) ${unknown}; see the onelaunch step reference")
    }
    Map c = [:]
    c.putAll(config)
    c.step = step
    c.unix = isUnix()
    c.endpoint = str(config.endpoint ?: env.ALLURE_ENDPOINT)
    c.projectId = str(config.projectId ?: env.ALLURE_PROJECT_ID)
    c.credentialsId = str(config.credentialsId ?: env.ONELAUNCH_CREDENTIALS_ID)
    c.binary = str(config.binary ?: env.ONELAUNCH_BINARY)
    c.releaseUrl = str(config.releaseUrl ?: env.ONELAUNCH_RELEASE_URL ?: defaultReleaseUrl())
    if (!(c.releaseUrl ==~ /https?:\/\/[A-Za-z0-9._~:\/?#\[\]@!$&()*+,;=%-]+/)) {
        error("onelaunch.${step}: releaseUrl must be an http(s) URL such as ${defaultReleaseUrl()}, not '${c.releaseUrl}'")
    }
    c.launchId = str(config.launchId ?: env.ALLURE_LAUNCH_ID)
    c.status = str(config.status)
    c.closeLaunch = str(config.closeLaunch)
    if (step != 'start') {
        c.jobRunId = str(config.jobRunId ?: env.ALLURE_JOB_RUN_ID)
    }
    return c
}

void requireEndpoint(String step, Map c) {
    if (!c.endpoint) {
        error("onelaunch.${step}: no endpoint: pass endpoint or set ALLURE_ENDPOINT")
    }
}

List connectionEnv(Map c) {
    List vars = ['ALLURE_ENDPOINT=' + c.endpoint, 'ONELAUNCH_BINARY=' + binaryFor(c)]
    if (c.projectId) {
        vars.add('ALLURE_PROJECT_ID=' + c.projectId)
    }
    String original = originalBuild()
    if (original) {
        // A restarted, replayed or rebuilt build is a new attempt of the
        // original build's job run: it reports there (its JUnit results keyed
        // on its own BUILD_NUMBER) and reopens the launch the original closed.
        vars.add('ALLURE_JOB_RUN_UID=' + original)
        vars.add('ALLURE_REOPEN_CLOSED_LAUNCH=true')
    }
    return vars
}

/**
 * The number of the build this one re-runs (Restart from Stage, Replay,
 * Rebuild), followed back to the first build of the chain; null for a build
 * that re-runs nothing.
 */
String originalBuild() {
    def build = currentBuild
    Integer wanted = rerunOf(build.getBuildCauses())
    String original = null
    int hops = 0
    while (wanted != null && hops < 500) {
        original = wanted.toString()
        while (build != null && build.number > wanted && hops < 500) {
            build = build.previousBuild
            hops++
        }
        if (build == null || build.number != wanted) {
            break
        }
        wanted = rerunOf(build.getBuildCauses())
    }
    return original
}

/** The build number a list of build causes says this build re-runs, or null. */
@NonCPS
Integer rerunOf(Object causes) {
    for (Object cause : (causes ?: [])) {
        String kind = cause instanceof Map ? str(cause['_class']) : null
        String text = cause instanceof Map ? str(cause['shortDescription']) : null
        if (!kind || !text) {
            continue
        }
        if (kind.endsWith('.RestartDeclarativePipelineCause') || kind.endsWith('.ReplayCause') ||
                kind.endsWith('.RebuildCause')) {
            java.util.regex.Matcher m = text =~ /#(\d+)/
            if (m.find()) {
                return Integer.valueOf(m.group(1))
            }
        }
    }
    return null
}

/** Binds the secret-text credential to ALLURE_TOKEN (read by the CLI only). */
def withToken(Map c, Closure body) {
    if (c.credentialsId) {
        return withCredentials([string(credentialsId: c.credentialsId, variable: 'ALLURE_TOKEN')]) {
            body()
        }
    }
    return body()
}

/**
 * Runs one CLI script: `sh` (with prelude()) on a Unix agent, `bat` (with
 * batPrelude()) on a Windows agent. With `status`, returns the exit code;
 * else a non-zero exit fails the step.
 */
def cli(Map c, boolean status, String unixScript, String windowsScript) {
    if (c.unix) {
        return status ? sh(returnStatus: true, script: prelude() + unixScript) : sh(script: prelude() + unixScript)
    }
    String script = batPrelude() + windowsScript
    return status ? bat(returnStatus: true, script: script) : bat(script: script)
}

@NonCPS
String batPrelude() {
    // No command echo (the `bat` default); values are read with delayed
    // expansion (!VAR!), which happens after cmd has parsed the line, so
    // quotes, &, |, <, > and % in a value are never taken as syntax.
    return '@echo off\nsetlocal EnableDelayedExpansion\n'
}

// ---------------------------------------------------------- the binary

@NonCPS
String defaultReleaseUrl() {
    return 'https://github.com/onelaunch/onelaunch/releases/download'
}

@NonCPS
String windowsTarget() {
    // The only Windows build; Windows on ARM runs it emulated.
    return 'x86_64-pc-windows-msvc'
}

/**
 * The onelaunch executable for this step on this agent: `binary` (or
 * ONELAUNCH_BINARY) when configured, else `onelaunch` from the agent's PATH,
 * else the pinned release, installed (or reused) in the agent's cache.
 */
String binaryFor(Map c) {
    if (c.binary) {
        return c.binary
    }
    if (!c.resolvedBinary) {
        c.resolvedBinary = c.unix ? installUnix(c) : installWindows(c)
    }
    return c.resolvedBinary
}

/**
 * The release this library version was published with, from
 * resources/onelaunch/checksums.json: [version:, sums: [asset: sha256]];
 * version is null when the file says "unreleased".
 */
Map pinnedRelease(Map c) {
    String text = libraryResource('onelaunch/checksums.json')
    String problem = checksumsProblem(text)
    if (problem) {
        error("onelaunch.${c.step}: the library's onelaunch/checksums.json ${problem}")
    }
    return parseChecksums(text)
}

@NonCPS
String checksumsProblem(String text) {
    Object doc
    try {
        doc = new JsonSlurperClassic().parseText(text)
    } catch (Exception e) {
        return 'is not valid JSON'
    }
    if (!(doc instanceof Map) || !(doc.version instanceof String)) {
        return 'has no "version"'
    }
    if (doc.version != 'unreleased' && !(doc.version ==~ /[A-Za-z0-9._+-]+/)) {
        return "has a malformed \"version\": '${doc.version}'".toString()
    }
    for (Object k : doc.keySet()) {
        if (k != 'version' && !(doc[k] instanceof String && doc[k] ==~ /[0-9a-f]{64}/)) {
            return "has a malformed SHA-256 for ${k}: expected 64 lowercase hex digits".toString()
        }
    }
    return null
}

@NonCPS
Map parseChecksums(String text) {
    Map doc = (Map) new JsonSlurperClassic().parseText(text)
    Map sums = [:]
    for (Object k : doc.keySet()) {
        if (k != 'version') {
            sums[k.toString()] = doc[k].toString()
        }
    }
    return [version: doc.version == 'unreleased' ? null : doc.version.toString(), sums: sums]
}

/** The agent's per-build temporary directory, where installs are cached. */
String agentCache(Map c) {
    String tmp = str(env.WORKSPACE_TMP) ?: (env.WORKSPACE ? env.WORKSPACE + '@tmp' : null)
    if (!tmp) {
        error("onelaunch.${c.step}: no workspace (WORKSPACE_TMP or WORKSPACE) to install onelaunch into: run the step inside node")
    }
    return tmp + (c.unix ? '/onelaunch' : '\\onelaunch')
}

@NonCPS
String trimSlash(String url) {
    String u = url.trim()
    while (u.endsWith('/')) {
        u = u.substring(0, u.length() - 1)
    }
    return u
}

@NonCPS
String sumLines(Map sums) {
    return sums.collect { k, v -> "${k} ${v}".toString() }.join('\n')
}

/** The last `onelaunch-install: STATUS REST` line of an install script's output, as [status, rest]. */
@NonCPS
List installLine(String output) {
    String line = null
    for (String l : output.readLines()) {
        if (l.trim().startsWith('onelaunch-install: ')) {
            line = l.trim().substring('onelaunch-install: '.length())
        }
    }
    if (line == null) {
        return null
    }
    int blank = line.indexOf(' ')
    return blank < 0 ? [line, ''] : [line.substring(0, blank), line.substring(blank + 1)]
}

/** Acts on an install script's report: returns the executable, or fails the step. */
String installOutcome(Map c, Map release, String output, String windowsExe) {
    List report = installLine(output)
    if (report == null) {
        error("onelaunch.${c.step}: the onelaunch install script reported nothing (see the log above)")
    }
    String status = report[0]
    String rest = report[1]
    if (status == 'found') {
        return rest
    }
    if (status == 'missing') {
        error("onelaunch.${c.step}: no onelaunch binary: none configured, none on the agent's PATH, and this " +
                "library version pins no release (its onelaunch/checksums.json says \"unreleased\"): set binary " +
                "(or ONELAUNCH_BINARY) to an installed onelaunch, or use a released library version " +
                "(@Library('onelaunch@<release tag>') _)")
    }
    if (status == 'unsupported') {
        error("onelaunch.${c.step}: onelaunch ${release.version} has no build for this agent (${rest}): " +
                'set binary (or ONELAUNCH_BINARY) to an installed onelaunch')
    }
    if (status == 'failed') {
        error("onelaunch.${c.step}: could not install onelaunch ${release.version}: ${rest}")
    }
    if (status == 'installed' || status == 'cached') {
        String exe = windowsExe ?: rest.substring(rest.indexOf(' ') + 1)
        if (status == 'installed') {
            echo("onelaunch: installed onelaunch ${release.version} (SHA-256 verified against the library's " +
                    "onelaunch/checksums.json) as ${exe}")
        }
        return exe
    }
    error("onelaunch.${c.step}: the onelaunch install script reported '${status} ${rest}'")
}

/** `command -v onelaunch`, else the pinned release for `uname -s`/`uname -m`. */
String installUnix(Map c) {
    Map release = pinnedRelease(c)
    List vars = ['ONELAUNCH_RELEASE_VERSION=' + (release.version ?: ''),
                 'ONELAUNCH_RELEASE_URL=' + trimSlash(c.releaseUrl),
                 'ONELAUNCH_RELEASE_SUMS=' + sumLines(release.sums),
                 'ONELAUNCH_CACHE=' + agentCache(c)]
    String out = withEnv(vars) {
        sh(returnStdout: true, script: unixInstallScript())
    }
    return installOutcome(c, release, out, null)
}

@NonCPS
String unixInstallScript() {
    // Prints one `onelaunch-install: …` line on stdout and exits 0 for every
    // expected outcome; progress goes to stderr (the build log).
    return '''set +x
say() { echo "onelaunch-install: $*"; exit 0; }
found="$(command -v onelaunch 2>/dev/null || true)"
if [ -n "$found" ]; then say found "$found"; fi
if [ -z "$ONELAUNCH_RELEASE_VERSION" ]; then say missing; fi
os="$(uname -s)"
arch="$(uname -m)"
case "$arch" in
  x86_64 | amd64) cpu=x86_64 ;;
  aarch64 | arm64) cpu=aarch64 ;;
  *) say unsupported "$os $arch" ;;
esac
case "$os" in
  Linux) target="$cpu-unknown-linux-musl" ;;
  Darwin) target="$cpu-apple-darwin" ;;
  *) say unsupported "$os $arch" ;;
esac
asset="onelaunch-$ONELAUNCH_RELEASE_VERSION-$target.tar.gz"
expected="$(printf '%s\\n' "$ONELAUNCH_RELEASE_SUMS" | awk -v a="$asset" '$1 == a { print $2; exit }')"
if [ -z "$expected" ]; then say failed "$asset is not in the library's onelaunch/checksums.json"; fi
sha256() {
  if command -v sha256sum >/dev/null 2>&1; then sha256sum "$1" | cut -d' ' -f1; else shasum -a 256 "$1" | cut -d' ' -f1; fi
}
command -v sha256sum >/dev/null 2>&1 || command -v shasum >/dev/null 2>&1 ||
  say failed "neither sha256sum nor shasum is on the agent to verify $asset"
dir="$ONELAUNCH_CACHE/$ONELAUNCH_RELEASE_VERSION/$target"
# Reused when the archive hash recorded at install is the pinned one and the
# executable still has the hash recorded with it.
if [ -x "$dir/onelaunch" ] && [ -f "$dir/onelaunch.sha256" ]; then
  read -r archive_sum binary_sum < "$dir/onelaunch.sha256" || true
  if [ "${archive_sum:-}" = "$expected" ] && [ "${binary_sum:-}" = "$(sha256 "$dir/onelaunch")" ]; then
    say cached "$asset" "$dir/onelaunch"
  fi
fi
url="$ONELAUNCH_RELEASE_URL/$ONELAUNCH_RELEASE_VERSION/$asset"
mkdir -p "$dir"
tmp="$(mktemp -d "$dir/download.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
echo "onelaunch: downloading $url" >&2
if command -v curl >/dev/null 2>&1; then
  curl --proto '=https,http' -fsSL --retry 3 --retry-delay 2 -o "$tmp/$asset" "$url" ||
    say failed "downloading $url with curl failed"
elif command -v wget >/dev/null 2>&1; then
  wget -q -O "$tmp/$asset" "$url" || say failed "downloading $url with wget failed"
else
  say failed "neither curl nor wget is on the agent to download $url"
fi
actual="$(sha256 "$tmp/$asset")"
if [ "$actual" != "$expected" ]; then
  say failed "checksum mismatch for $asset from $url: expected $expected (the library's onelaunch/checksums.json), got $actual; not running it"
fi
tar -xzf "$tmp/$asset" -C "$tmp" onelaunch || say failed "$asset holds no onelaunch executable"
chmod 755 "$tmp/onelaunch"
printf '%s %s\\n' "$expected" "$(sha256 "$tmp/onelaunch")" > "$tmp/onelaunch.sha256"
mv -f "$tmp/onelaunch" "$dir/onelaunch"
mv -f "$tmp/onelaunch.sha256" "$dir/onelaunch.sha256"
say installed "$asset" "$dir/onelaunch"
'''
}

/** Get-Command onelaunch (the `where` lookup), else the pinned Windows release. */
String installWindows(Map c) {
    Map release = pinnedRelease(c)
    String version = release.version ?: ''
    String asset = "onelaunch-${version}-${windowsTarget()}.zip".toString()
    String expected = release.version ? release.sums[asset] : ''
    if (release.version && !expected) {
        error("onelaunch.${c.step}: could not install onelaunch ${version}: ${asset} is not in the library's " +
                'onelaunch/checksums.json')
    }
    String dir = agentCache(c) + '\\' + version + '\\' + windowsTarget()
    String url = trimSlash(c.releaseUrl) + '/' + version + '/' + asset
    String out = powershell(returnStdout: true, script: windowsInstallScript(version, asset, url, expected ?: '', dir))
    return installOutcome(c, release, out, dir + '\\onelaunch.exe')
}

/**
 * A PowerShell string literal ('…'): never expanded. Every character
 * PowerShell takes for a single quote (' and the typographic U+2018 to U+201B) is
 * doubled.
 */
@NonCPS
String psQuote(String value) {
    StringBuilder sb = new StringBuilder("'")
    for (char ch : value.toCharArray()) {
        sb.append(ch)
        if (ch == (char) 0x27 || ch == (char) 0x2018 || ch == (char) 0x2019 || ch == (char) 0x201A || ch == (char) 0x201B) {
            sb.append(ch)
        }
    }
    return sb.append("'").toString()
}

@NonCPS
String windowsInstallScript(String version, String asset, String url, String expected, String dir) {
    // Values are PowerShell string literals (psQuote): the script text shows
    // exactly which asset, URL and pinned hash it checks. Prints one
    // `onelaunch-install: …` line and exits 0 for every expected outcome.
    return '''$ErrorActionPreference = 'Stop'
$ProgressPreference = 'SilentlyContinue'
function Say([string] $what) { Write-Output ('onelaunch-install: ' + $what); exit 0 }
$found = Get-Command -Name 'onelaunch.exe' -CommandType Application -ErrorAction SilentlyContinue | Select-Object -First 1
if ($found) { Say ('found ' + $found.Source) }
$version = @VERSION@
if (-not $version) { Say 'missing' }
$asset = @ASSET@
$url = @URL@
$expected = @SHA256@
$dir = @DIR@
$exe = Join-Path $dir 'onelaunch.exe'
$stamp = Join-Path $dir 'onelaunch.sha256'
# Reused when the archive hash recorded at install is the pinned one and the
# executable still has the hash recorded with it.
if ((Test-Path -LiteralPath $exe) -and (Test-Path -LiteralPath $stamp)) {
  $recorded = ([string](Get-Content -LiteralPath $stamp -Raw)).Trim().Split(' ')
  if ($recorded.Count -eq 2 -and $recorded[0] -eq $expected -and
      $recorded[1] -eq (Get-FileHash -Algorithm SHA256 -LiteralPath $exe).Hash.ToLowerInvariant()) {
    Say 'cached'
  }
}
try {
  [Net.ServicePointManager]::SecurityProtocol = [Net.ServicePointManager]::SecurityProtocol -bor [Net.SecurityProtocolType]::Tls12
  New-Item -ItemType Directory -Force -Path $dir | Out-Null
  $tmp = Join-Path $dir ('download-' + [guid]::NewGuid().ToString('N'))
  New-Item -ItemType Directory -Path $tmp | Out-Null
  try {
    $zip = Join-Path $tmp $asset
    [Console]::Error.WriteLine('onelaunch: downloading ' + $url)
    Invoke-WebRequest -UseBasicParsing -Uri $url -OutFile $zip
    $actual = (Get-FileHash -Algorithm SHA256 -LiteralPath $zip).Hash.ToLowerInvariant()
    if ($actual -ne $expected) {
      throw ('checksum mismatch for ' + $asset + ' from ' + $url + ': expected ' + $expected + " (the library's onelaunch/checksums.json), got " + $actual + '; not running it')
    }
    Expand-Archive -LiteralPath $zip -DestinationPath $tmp -Force
    $new = Join-Path $tmp 'onelaunch.exe'
    if (-not (Test-Path -LiteralPath $new)) { throw ($asset + ' holds no onelaunch.exe') }
    $binary = (Get-FileHash -Algorithm SHA256 -LiteralPath $new).Hash.ToLowerInvariant()
    Move-Item -Force -LiteralPath $new -Destination $exe
    Set-Content -LiteralPath $stamp -Value ($expected + ' ' + $binary) -Encoding Ascii
  } finally {
    Remove-Item -Recurse -Force -LiteralPath $tmp -ErrorAction SilentlyContinue
  }
} catch {
  Say ('failed ' + $_.Exception.Message)
}
Say 'installed'
'''.replace('@VERSION@', psQuote(version)).replace('@ASSET@', psQuote(asset)).replace('@URL@', psQuote(url))
            .replace('@SHA256@', psQuote(expected)).replace('@DIR@', psQuote(dir))
}

@NonCPS
String prelude() {
    // No tracing (the default `sh -xe` would echo every line), and numeric
    // variables that are set but empty are removed so the CLI ignores them.
    return '''set +x
[ -n "${ALLURE_PROJECT_ID:-}" ] || unset ALLURE_PROJECT_ID
[ -n "${ALLURE_LAUNCH_ID:-}" ] || unset ALLURE_LAUNCH_ID
[ -n "${ALLURE_JOB_RUN_ID:-}" ] || unset ALLURE_JOB_RUN_ID
'''
}

@NonCPS
String envFile() {
    return 'onelaunch-env.json'
}

@NonCPS
List publishedKeys() {
    return ['ALLURE_ENDPOINT', 'ALLURE_PROJECT_ID', 'ALLURE_LAUNCH_ID', 'ALLURE_LAUNCH_NAME',
            'ALLURE_LAUNCH_URL', 'ALLURE_JOB_RUN_ID', 'ALLURE_JOB_RUN_URL']
}

@NonCPS
List connectionKeys() {
    return ['endpoint', 'projectId', 'credentialsId', 'binary', 'releaseUrl', 'launchId']
}

@NonCPS
List startKeys() {
    return connectionKeys() + ['launchName', 'launchTags']
}

@NonCPS
List uploadKeys() {
    return connectionKeys() + ['jobRunId', 'results', 'allowEmpty']
}

@NonCPS
List watchKeys() {
    return connectionKeys() + ['jobRunId', 'results', 'command', 'allowEmpty']
}

@NonCPS
List finishKeys() {
    return connectionKeys() + ['jobRunId', 'status', 'closeLaunch', 'closeTimeout', 'qualityGate', 'gateRules']
}

@NonCPS
List keysOf(String step) {
    switch (step) {
        case 'start': return startKeys()
        case 'upload': return uploadKeys()
        case 'watch': return watchKeys()
        case 'finish': return finishKeys()
        default: return (startKeys() + uploadKeys() + finishKeys()).unique()
    }
}

@NonCPS
String unknownKeys(Map config, List known) {
    List unknown = []
    for (Object k : config.keySet()) {
        if (!known.contains(k.toString())) {
            unknown.add(k.toString())
        }
    }
    return unknown.join(', ')
}

@NonCPS
Map subset(Map config, List keys) {
    Map out = [:]
    for (Object k : config.keySet()) {
        if (keys.contains(k.toString())) {
            out[k.toString()] = config[k]
        }
    }
    return out
}

@NonCPS
String str(Object value) {
    return value == null ? null : value.toString()
}

@NonCPS
String tagList(Object tags) {
    if (tags instanceof Collection) {
        return tags.collect { it.toString().trim() }.findAll { it }.join(', ')
    }
    return tags.toString()
}

@NonCPS
List pathList(Object results) {
    List raw = results instanceof Collection ? results as List : [results]
    List out = []
    for (Object r : raw) {
        // The Allure Jenkins plugin's shape: results: [[path: 'allure-results']].
        Object p = r instanceof Map ? r.path : r
        String s = p == null ? '' : p.toString().trim()
        if (s && !out.contains(s)) {
            out.add(s)
        }
    }
    return out
}

@NonCPS
boolean isPattern(String path) {
    return path.contains('*') || path.contains('?') || path.contains('[')
}

/** Parses the output of `onelaunch job-run env --format json` (string values). */
@NonCPS
Map parseEnvJson(String text) {
    Object parsed = new JsonSlurperClassic().parseText(text)
    Map out = [:]
    if (parsed instanceof Map) {
        for (Object k : parsed.keySet()) {
            Object v = parsed[k]
            out[k.toString()] = v == null ? null : v.toString()
        }
    }
    return out
}

@NonCPS
String statusFor(Throwable e) {
    String name = e.getClass().name
    return name.endsWith('.FlowInterruptedException') || name.endsWith('.AbortedException') ? 'cancelled' : 'failed'
}

@NonCPS
String exitMeaning(int code) {
    switch (code) {
        case 2: return 'exit 2, usage error'
        case 4: return 'exit 4, server unreachable'
        case 5: return 'exit 5, not authorised (check the credential)'
        case 6: return 'exit 6, the launch is closed'
        case 7: return 'exit 7, not found'
        case 8: return 'exit 8, spooled: run onelaunch upload --resume'
        case 9: return 'exit 9, no results found (allowEmpty: true accepts that)'
        default: return "exit ${code}".toString()
    }
}

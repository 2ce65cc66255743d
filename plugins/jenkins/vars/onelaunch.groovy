// onelaunch: one launch per Jenkins build, shared by every stage and parallel
// branch. Wraps the `onelaunch` CLI; see onelaunch.txt for the step reference.
//
// Conventions that keep the API token out of Groovy and out of the build log:
// the token is bound by withCredentials and read by the CLI from ALLURE_TOKEN;
// every other value reaches the shell through withEnv, so the shell text is a
// fixed, single-quoted string. Values come back from the CLI through a JSON
// file read with readFile.

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
            sh(script: prelude() + '''
unset ALLURE_JOB_RUN_ID
rm -f "$ONELAUNCH_ENV_FILE"
"$ONELAUNCH_BINARY" job-run start
"$ONELAUNCH_BINARY" job-run env --format json --output-file "$ONELAUNCH_ENV_FILE"
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
    env.ONELAUNCH_BINARY = c.binary
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
    vars.add('ONELAUNCH_ALLOW_EMPTY_FLAG=' + (str(c.allowEmpty) == 'true' ? '--allow-empty' : ''))
    if (c.launchId) {
        vars.add('ALLURE_LAUNCH_ID=' + c.launchId)
    }
    if (c.jobRunId) {
        vars.add('ALLURE_JOB_RUN_ID=' + c.jobRunId)
    }
    int code = withEnv(vars) {
        withToken(c) {
            sh(returnStatus: true, script: prelude() + '''
set --
while IFS= read -r results_path; do
  if [ -n "$results_path" ]; then set -- "$@" "$results_path"; fi
done <<ONELAUNCH_RESULTS_END
$ONELAUNCH_RESULTS
ONELAUNCH_RESULTS_END
if [ -n "$ONELAUNCH_ALLOW_EMPTY_FLAG" ]; then set -- "$ONELAUNCH_ALLOW_EMPTY_FLAG" "$@"; fi
"$ONELAUNCH_BINARY" upload "$@"
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
    vars.add('ONELAUNCH_ALLOW_EMPTY_FLAG=' + (str(c.allowEmpty) == 'true' ? '--allow-empty' : ''))
    if (c.launchId) {
        vars.add('ALLURE_LAUNCH_ID=' + c.launchId)
    }
    if (c.jobRunId) {
        vars.add('ALLURE_JOB_RUN_ID=' + c.jobRunId)
    }
    int code = withEnv(vars) {
        withToken(c) {
            sh(returnStatus: true, script: prelude() + '''
set --
if [ -n "$ONELAUNCH_ALLOW_EMPTY_FLAG" ]; then set -- "$ONELAUNCH_ALLOW_EMPTY_FLAG"; fi
"$ONELAUNCH_BINARY" watch --results "$ONELAUNCH_RESULTS" "$@" -- sh -ec "$ONELAUNCH_COMMAND"
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
    List vars = connectionEnv(c)
    vars.add('ONELAUNCH_CLOSE_LAUNCH=' + (c.closeLaunch == 'false' ? 'false' : 'true'))
    String timeout = str(config.closeTimeout ?: '5m')
    if (!(timeout ==~ /[0-9]+(ms|s|m|h|d)?/)) {
        error("onelaunch.finish: closeTimeout must be a duration such as 30s, 5m or 1h, not '${timeout}'")
    }
    vars.add('ONELAUNCH_CLOSE_TIMEOUT=' + timeout)
    List gateArgs = gateRuleArgs(config)
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
            sh(returnStatus: true, script: prelude() + '''
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
            sh(returnStatus: true, script: prelude() + '''
set -f
# shellcheck disable=SC2086
"$ONELAUNCH_BINARY" --output markdown launch gate "$ALLURE_LAUNCH_ID" $ONELAUNCH_GATE_ARGS > onelaunch-gate.md
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
    if (!isUnix()) {
        error("onelaunch.${step}: needs a Unix agent (sh)")
    }
    Map c = [:]
    c.putAll(config)
    c.endpoint = str(config.endpoint ?: env.ALLURE_ENDPOINT)
    c.projectId = str(config.projectId ?: env.ALLURE_PROJECT_ID)
    c.credentialsId = str(config.credentialsId ?: env.ONELAUNCH_CREDENTIALS_ID)
    c.binary = str(config.binary ?: env.ONELAUNCH_BINARY ?: 'onelaunch')
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
    List vars = ['ALLURE_ENDPOINT=' + c.endpoint, 'ONELAUNCH_BINARY=' + c.binary]
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
    return ['endpoint', 'projectId', 'credentialsId', 'binary', 'launchId']
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

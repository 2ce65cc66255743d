// Runs a scripted pipeline against the shared library outside Jenkins.
//
//   groovy harness.groovy --library DIR --workspace DIR --step-log FILE PIPELINE.groovy
//
// The binding implements exactly the pipeline steps the library may use (sh,
// bat, powershell, withEnv, withCredentials + string, echo, error, writeFile,
// readFile, fileExists, isUnix, libraryResource, env, and currentBuild
// read-only: number, causes and previousBuild from ONELAUNCH_TEST_BUILDS_JSON)
// plus parallel, stage and node for the pipeline script. Any other step throws
// "step X is not allowed". `sh` really runs, as Jenkins does (`sh -xe
// script`), with the environment of the enclosing withEnv/withCredentials
// blocks. libraryResource reads the library's resources/ directory.
// Credentials come from the JSON object in ONELAUNCH_TEST_CREDENTIALS_JSON (id
// -> secret text), which is removed from the environment the pipeline sees.
//
// The agent is a Unix one (isUnix() true; bat and powershell fail as on a
// Linux agent) unless ONELAUNCH_TEST_AGENT=windows: then isUnix() is false,
// sh fails, and bat and powershell are recorded, not run (this machine has no
// cmd.exe or PowerShell): bat returns exit code 0 (and '' for returnStdout),
// powershell returns, for returnStdout, the next string of the JSON list in
// ONELAUNCH_TEST_POWERSHELL_STDOUT (the last one repeats), as the agent's
// answer.
//
// Every step call is recorded as one JSON line in the step log. The run fails
// when a secret appears in any recorded sh, bat or powershell script, echo
// message, the console output or the step log, or when Groovy code reads a
// bound secret from env.

import groovy.json.JsonOutput
import groovy.json.JsonSlurperClassic
import java.util.concurrent.atomic.AtomicInteger
import org.codehaus.groovy.control.CompilerConfiguration

class StepNotAllowed extends RuntimeException {
    StepNotAllowed(String step) {
        super("step ${step} is not allowed".toString())
    }
}

/** What the `error` step throws (hudson.AbortException in Jenkins). */
class AbortException extends RuntimeException {
    AbortException(String message) {
        super(message)
    }
}

/** Base class of the library and pipeline scripts. */
abstract class PipelineScript extends Script {
    void println() { throw new StepNotAllowed('println') }
    void println(Object value) { throw new StepNotAllowed('println') }
    void print(Object value) { throw new StepNotAllowed('print') }
    void printf(String format, Object value) { throw new StepNotAllowed('printf') }
    void printf(String format, Object[] values) { throw new StepNotAllowed('printf') }

    Object invokeMethod(String name, Object args) {
        try {
            return super.invokeMethod(name, args)
        } catch (MissingMethodException e) {
            if (e.method != name || e.type != getClass() || getClass().metaClass.respondsTo(this, name)) {
                throw e
            }
            // `onelaunch(...)`: a global variable called as a step runs its call().
            Object value = getBinding().getVariable(name)
            if (value instanceof Script) {
                return ((Script) value).invokeMethod('call', args)
            }
            throw e
        }
    }
}

/**
 * `currentBuild` (Jenkins' RunWrapper), read-only: number, getBuildCauses()
 * (the JSON maps Jenkins gives: `_class`, `shortDescription`) and
 * previousBuild, from the recorded builds of the job. Setting any property
 * (e.g. `result`) is not allowed.
 */
class RunStandIn extends GroovyObjectSupport {
    private final List<Map> builds
    private final int index

    RunStandIn(List<Map> builds, int index) {
        this.builds = builds
        this.index = index
    }

    int getNumber() { builds[index].number as int }

    List<Map> getBuildCauses() {
        return (builds[index].causes ?: []).collect { new LinkedHashMap((Map) it) }
    }

    RunStandIn getPreviousBuild() {
        return index > 0 ? new RunStandIn(builds, index - 1) : null
    }

    void setProperty(String name, Object value) { throw new StepNotAllowed('currentBuild') }

    String toString() { "build #${getNumber()}" }
}

/** Binding whose unknown names are steps that are not allowed. */
class StepBinding extends Binding {
    Object getVariable(String name) {
        if (!hasVariable(name)) {
            throw new StepNotAllowed(name)
        }
        return super.getVariable(name)
    }
}

/** `env`: property and map access; changes feed later `sh` calls. */
class EnvProxy extends GroovyObjectSupport {
    private final Pipeline p

    EnvProxy(Pipeline p) { this.p = p }

    Object getProperty(String name) { p.envGet(name) }

    void setProperty(String name, Object value) { p.envSet(name, value) }

    Object getAt(String name) { p.envGet(name) }

    void putAt(String name, Object value) { p.envSet(name, value) }

    Map<String, String> getEnvironment() { p.effectiveEnv() }

    String toString() { 'env' }
}

class Pipeline {
    final File workspace
    final File tmpDir
    final Map<String, String> secrets
    final Map<String, String> globalEnv = new TreeMap<String, String>()
    final File stepLog
    final StringBuffer console = new StringBuffer()
    final List<String> shScripts = Collections.synchronizedList(new ArrayList<String>())
    final List<String> echoes = Collections.synchronizedList(new ArrayList<String>())
    final List<String> violations = Collections.synchronizedList(new ArrayList<String>())
    final AtomicInteger seq = new AtomicInteger()
    final AtomicInteger scriptSeq = new AtomicInteger()
    final Object lock = new Object()
    final boolean quiet
    /** false: a Windows agent whose bat and powershell steps are recorded only. */
    boolean unix = true
    List<String> powershellStdout = []
    final AtomicInteger powershellCalls = new AtomicInteger()
    File libraryDir

    /** withEnv / withCredentials scopes of the current thread (inherited by branches). */
    final InheritableThreadLocal<List<Map>> scopes = new InheritableThreadLocal<List<Map>>() {
        protected List<Map> initialValue() { new ArrayList<Map>() }
        protected List<Map> childValue(List<Map> parent) { new ArrayList<Map>(parent) }
    }
    final InheritableThreadLocal<String> branch = new InheritableThreadLocal<String>() {
        protected String initialValue() { '' }
    }

    Pipeline(File workspace, Map<String, String> baseEnv, Map<String, String> secrets, File stepLog, boolean quiet) {
        this.workspace = workspace.canonicalFile
        this.tmpDir = new File(this.workspace.path + '@tmp')
        this.secrets = secrets
        this.stepLog = stepLog
        this.quiet = quiet
        globalEnv.putAll(baseEnv)
        globalEnv.put('WORKSPACE', this.workspace.path)
        stepLog.parentFile?.mkdirs()
        stepLog.text = ''
        tmpDir.mkdirs()
    }

    // ------------------------------------------------------------ console, log

    void out(String text) {
        String prefix = branch.get() ? "[${branch.get()}] " : ''
        StringBuilder sb = new StringBuilder()
        text.readLines().each { sb.append(prefix).append(it).append('\n') }
        synchronized (lock) {
            console.append(sb)
            if (!quiet) {
                System.out.print(sb)
                System.out.flush()
            }
        }
    }

    void record(String step, Map details) {
        Map entry = [seq: seq.incrementAndGet(), branch: branch.get(), step: step]
        entry.putAll(details)
        String line = JsonOutput.toJson(plain(entry))
        synchronized (lock) {
            stepLog << line + '\n'
        }
    }

    static Object plain(Object v) {
        if (v == null || v instanceof Number || v instanceof Boolean) return v
        if (v instanceof Closure) return '<closure>'
        if (v instanceof Map) {
            Map m = new LinkedHashMap()
            v.each { k, x -> m[k.toString()] = plain(x) }
            return m
        }
        if (v instanceof Collection || v instanceof Object[]) return v.collect { plain(it) }
        return v.toString()
    }

    // ------------------------------------------------------------ environment

    Map<String, String> effectiveEnv() {
        Map<String, String> e
        synchronized (lock) {
            e = new TreeMap<String, String>(globalEnv)
        }
        for (Map scope : scopes.get()) {
            scope.vars.each { String k, String v -> apply(e, k, v) }
        }
        return e
    }

    /** Jenkins EnvVars.override: empty removes, `PATH+X=dir` prepends. */
    static void apply(Map<String, String> e, String key, String value) {
        int plus = key.indexOf('+')
        if (plus > 0) {
            String real = key.substring(0, plus)
            if (value) {
                e[real] = e[real] ? value + File.pathSeparator + e[real] : value
            }
        } else if (value == null || value.isEmpty()) {
            e.remove(key)
        } else {
            e[key] = value
        }
    }

    Set<String> boundSecretNames() {
        Set<String> names = new HashSet<String>()
        for (Map scope : scopes.get()) {
            if (scope.secret) names.addAll(scope.vars.keySet())
        }
        return names
    }

    Object envGet(String name) {
        if (boundSecretNames().contains(name)) {
            violations.add("Groovy code read the bound secret env.${name}".toString())
        }
        return effectiveEnv().get(name)
    }

    void envSet(String name, Object value) {
        record('env', [set: name, value: value])
        synchronized (lock) {
            if (value == null) globalEnv.remove(name) else globalEnv[name] = value.toString()
        }
    }

    List<Map> pushScope(Map scope) {
        List<Map> saved = scopes.get()
        List<Map> next = new ArrayList<Map>(saved)
        next.add(scope)
        scopes.set(next)
        return saved
    }

    // ------------------------------------------------------------ builds

    /** The job's builds, oldest first (see ONELAUNCH_TEST_BUILDS_JSON). */
    List<Map> builds = []

    RunStandIn currentBuild() {
        int number = (globalEnv.BUILD_NUMBER ?: '1') as int
        List<Map> known = builds.findAll { (it.number as int) < number }.sort { it.number as int }
        Map current = builds.find { (it.number as int) == number } ?:
                [number: number, causes: [[_class: 'hudson.model.Cause$UserIdCause', shortDescription: 'Started by user CI']]]
        known.add(current)
        return new RunStandIn(known, known.size() - 1)
    }

    // ------------------------------------------------------------ files

    File file(Object path) {
        File f = new File(path.toString())
        return f.absolute ? f : new File(workspace, path.toString())
    }

    static String fileArg(Object arg) {
        return arg instanceof Map ? arg.file?.toString() : arg?.toString()
    }

    // ------------------------------------------------------------ sh

    Object sh(Object arg) {
        Map a = arg instanceof Map ? new LinkedHashMap(arg) : [script: arg]
        String script = a.script?.toString()
        if (script == null) throw new IllegalArgumentException('sh: no script')
        Set<String> unknown = new HashSet<String>(a.keySet()*.toString())
        unknown.removeAll(['script', 'returnStdout', 'returnStatus', 'label', 'encoding'])
        if (unknown) throw new IllegalArgumentException("sh: unsupported arguments ${unknown}")
        boolean returnStdout = a.returnStdout as boolean
        boolean returnStatus = a.returnStatus as boolean
        shScripts.add(script)
        if (!unix) {
            record('sh', [script: script, refused: 'Windows agent'])
            throw new AbortException('sh: cannot run program "nohup" on a Windows agent')
        }

        Map<String, String> scoped = [:]
        List<String> credentials = []
        for (Map scope : scopes.get()) {
            if (scope.secret) {
                credentials.addAll(scope.vars.keySet())
            } else {
                scope.vars.each { String k, String v -> scoped[k] = v }
            }
        }

        File scriptFile = new File(tmpDir, "script-${scriptSeq.incrementAndGet()}.sh")
        scriptFile.text = script
        List<String> command = script.startsWith('#!') ?
                [scriptFile.path] : ['sh', '-xe', scriptFile.path]
        if (script.startsWith('#!')) scriptFile.setExecutable(true)
        ProcessBuilder pb = new ProcessBuilder(command)
        pb.directory(workspace)
        pb.environment().clear()
        pb.environment().putAll(effectiveEnv())
        Process proc = pb.start()
        proc.outputStream.close()
        StringBuffer captured = new StringBuffer()
        Thread err = Thread.start { proc.errorStream.eachLine('UTF-8') { out(it) } }
        if (returnStdout) {
            captured.append(proc.inputStream.getText('UTF-8'))
        } else {
            proc.inputStream.eachLine('UTF-8') { out(it) }
        }
        err.join()
        int code = proc.waitFor()
        scriptFile.delete()
        Map details = [script: script, returnStdout: returnStdout, returnStatus: returnStatus,
                       env: scoped, credentialVariables: credentials, exitCode: code]
        if (returnStdout) {
            details.stdout = captured.toString()
            synchronized (lock) { console.append(captured) }
        }
        record('sh', details)
        if (code != 0 && !returnStatus) {
            throw new AbortException("script returned exit code ${code}")
        }
        if (returnStatus) return code
        if (returnStdout) return captured.toString()
        return null
    }

    // ------------------------------------------------------------ Windows steps

    /** `bat` / `powershell` on the Windows agent: recorded with their environment, not run. */
    Object windowsStep(String step, Object arg) {
        Map a = arg instanceof Map ? new LinkedHashMap(arg) : [script: arg]
        String script = a.script?.toString()
        if (script == null) throw new IllegalArgumentException("${step}: no script")
        Set<String> unknown = new HashSet<String>(a.keySet()*.toString())
        unknown.removeAll(['script', 'returnStdout', 'returnStatus', 'label', 'encoding'])
        if (unknown) throw new IllegalArgumentException("${step}: unsupported arguments ${unknown}")
        shScripts.add(script)
        if (unix) {
            record(step, [script: script, refused: 'Unix agent'])
            throw new AbortException("${step}: cannot run program \"${step == 'bat' ? 'cmd' : 'powershell'}\" on a Unix agent")
        }
        Map<String, String> scoped = [:]
        List<String> credentials = []
        for (Map scope : scopes.get()) {
            if (scope.secret) {
                credentials.addAll(scope.vars.keySet())
            } else {
                scope.vars.each { String k, String v -> scoped[k] = v }
            }
        }
        String stdout = ''
        if (a.returnStdout && step == 'powershell' && powershellStdout) {
            int n = powershellCalls.getAndIncrement()
            stdout = powershellStdout[Math.min(n, powershellStdout.size() - 1)]
        }
        record(step, [script: script, returnStdout: a.returnStdout as boolean, returnStatus: a.returnStatus as boolean,
                      env: scoped, credentialVariables: credentials, recordedOnly: true, stdout: stdout])
        if (a.returnStatus) return 0
        if (a.returnStdout) return stdout
        return null
    }

    /** `libraryResource`: a file of the library's resources/ directory. */
    String libraryResource(Object arg) {
        String path = arg instanceof Map ? arg.resource?.toString() : arg?.toString()
        record('libraryResource', [resource: path])
        File f = new File(new File(libraryDir, 'resources'), path)
        if (path == null || path.contains('..') || !f.isFile()) {
            throw new AbortException("No such library resource ${path} could be found.")
        }
        return f.getText('UTF-8')
    }

    // ------------------------------------------------------------ binding

    Binding binding() {
        Pipeline p = this
        Binding b = new StepBinding()
        b.setVariable('env', new EnvProxy(p))
        b.setVariable('currentBuild', p.currentBuild())
        b.setVariable('sh', { Object arg -> p.sh(arg) })
        b.setVariable('bat', { Object arg -> p.windowsStep('bat', arg) })
        b.setVariable('powershell', { Object arg -> p.windowsStep('powershell', arg) })
        b.setVariable('libraryResource', { Object arg -> p.libraryResource(arg) })
        b.setVariable('echo', { Object message ->
            String m = message?.toString()
            p.record('echo', [message: m])
            p.echoes.add(m)
            p.out(m)
            null
        })
        b.setVariable('error', { Object message ->
            p.record('error', [message: message?.toString()])
            throw new AbortException(message?.toString())
        })
        b.setVariable('withEnv', { List vars, Closure body ->
            Map m = new LinkedHashMap()
            for (Object v : vars) {
                String s = v.toString()
                int eq = s.indexOf('=')
                if (eq <= 0) throw new IllegalArgumentException("withEnv: not KEY=VALUE: ${s}")
                m[s.substring(0, eq)] = s.substring(eq + 1)
            }
            p.record('withEnv', [vars: vars])
            List<Map> saved = p.pushScope([vars: m, secret: false])
            try {
                return body.call()
            } finally {
                p.scopes.set(saved)
            }
        })
        b.setVariable('string', { Map args ->
            p.record('string', [args: args])
            [type: 'string', credentialsId: args.credentialsId?.toString(), variable: args.variable?.toString()]
        })
        b.setVariable('withCredentials', { List bindings, Closure body ->
            p.record('withCredentials', [bindings: bindings])
            Map m = new LinkedHashMap()
            for (Object x : bindings) {
                if (!(x instanceof Map) || x.type != 'string' || !x.credentialsId || !x.variable) {
                    throw new IllegalArgumentException("withCredentials: unsupported binding ${x}")
                }
                String secret = p.secrets[x.credentialsId]
                if (secret == null) {
                    throw new AbortException("Could not find credentials entry with ID '${x.credentialsId}'")
                }
                m[x.variable] = secret
            }
            List<Map> saved = p.pushScope([vars: m, secret: true])
            try {
                return body.call()
            } finally {
                p.scopes.set(saved)
            }
        })
        b.setVariable('writeFile', { Map args ->
            p.record('writeFile', [file: args.file, length: args.text?.toString()?.length()])
            File f = p.file(args.file)
            f.parentFile?.mkdirs()
            f.setText(args.text?.toString() ?: '', 'UTF-8')
            null
        })
        b.setVariable('readFile', { Object arg ->
            String path = fileArg(arg)
            p.record('readFile', [file: path])
            p.file(path).getText('UTF-8')
        })
        b.setVariable('fileExists', { Object arg ->
            String path = fileArg(arg)
            boolean exists = p.file(path).exists()
            p.record('fileExists', [file: path, result: exists])
            exists
        })
        b.setVariable('isUnix', { ->
            p.record('isUnix', [result: p.unix])
            p.unix
        })
        // Used by the pipeline script, not by the library.
        b.setVariable('stage', { String name, Closure body ->
            p.record('stage', [name: name])
            p.out("[Pipeline] stage: ${name}")
            body.call()
        })
        b.setVariable('node', { Object label = null, Closure body = null ->
            Closure c = label instanceof Closure ? (Closure) label : body
            p.record('node', [label: label instanceof Closure ? null : label])
            c.call()
        })
        b.setVariable('parallel', { Map branches ->
            p.record('parallel', [branches: branches.keySet().findAll { it != 'failFast' }])
            Map<String, Throwable> failures = Collections.synchronizedMap(new LinkedHashMap<String, Throwable>())
            List<Thread> threads = []
            branches.each { String name, Object body ->
                if (name == 'failFast') return
                Thread t = new Thread({
                    p.branch.set(p.branch.get() ? "${p.branch.get()}/${name}".toString() : name)
                    try {
                        ((Closure) body).call()
                    } catch (Throwable e) {
                        failures[name] = e
                        p.out("Failed in branch ${name}: ${e.message}")
                    }
                } as Runnable, "branch-${name}")
                threads << t
            }
            threads*.start()
            threads*.join()
            if (failures) {
                throw failures.values().iterator().next()
            }
            null
        })
        return b
    }

    /** Compiles the library into the binding as `onelaunch` and returns a pipeline script. */
    Script load(File libraryDir, String pipelineName, String pipelineText) {
        this.libraryDir = libraryDir
        Binding b = binding()
        GroovyClassLoader loader = new GroovyClassLoader(Pipeline.classLoader)
        // Stand-in for the annotation the CPS engine provides.
        loader.parseClass('''package com.cloudbees.groovy.cps
import java.lang.annotation.*
@Retention(RetentionPolicy.RUNTIME) @Target([ElementType.METHOD, ElementType.TYPE])
@interface NonCPS {}
''', 'NonCPS.groovy')
        CompilerConfiguration cc = new CompilerConfiguration()
        cc.scriptBaseClass = PipelineScript.name
        GroovyShell shell = new GroovyShell(loader, b, cc)
        File vars = new File(libraryDir, 'vars')
        vars.listFiles().findAll { it.name.endsWith('.groovy') }.sort().each { File f ->
            Script s = shell.parse(f)
            b.setVariable(f.name[0..-8], s)
        }
        // The script name becomes a class name.
        return shell.parse(pipelineText, pipelineName.replaceAll(/\.groovy$/, '').replaceAll(/[^A-Za-z0-9_]/, '_') + '.groovy')
    }

    /** Where each secret appeared; empty when none leaked. */
    List<String> leaks() {
        List<String> found = new ArrayList<String>(violations)
        secrets.each { String id, String secret ->
            if (!secret) return
            if (shScripts.any { it.contains(secret) }) found << "credential '${id}' appears in a sh, bat or powershell script".toString()
            if (echoes.any { it?.contains(secret) }) found << "credential '${id}' appears in an echo message".toString()
            if (console.toString().contains(secret)) found << "credential '${id}' appears in the console output".toString()
            if (stepLog.getText('UTF-8').contains(secret)) found << "credential '${id}' appears in the step log".toString()
        }
        return found
    }
}

// ---------------------------------------------------------------- self-check

/** Proves the binding enforces what the real run relies on. */
void selfCheck(File libraryDir, Map<String, String> baseEnv) {
    File dir = File.createTempDir('onelaunch-harness', '')
    try {
        File ws = new File(dir, 'ws')
        ws.mkdirs()
        Pipeline p = new Pipeline(ws, baseEnv, ['check-credential': 'check-secret-9d1e'],
                new File(dir, 'steps.log'), true)
        Script s = p.load(libraryDir, 'selfcheck.groovy', '''
def expectNotAllowed(String step, Closure c) {
    try { c(); error("${step} ran") } catch (StepNotAllowed e) {
        if (e.message != "step ${step} is not allowed") error("wrong message: ${e.message}")
    }
}
expectNotAllowed('readJSON') { readJSON(text: '{}') }
expectNotAllowed('println') { println 'x' }
expectNotAllowed('currentBuild') { currentBuild.result = 'FAILURE' }
withEnv(['CHECK_A=1', 'PATH+CHECK=/check-bin']) {
    if (sh(script: 'printf %s "$CHECK_A"', returnStdout: true) != '1') error('withEnv not seen by sh')
    if (env.CHECK_A != '1') error('withEnv not seen by env')
    if (!sh(script: 'printf %s "$PATH"', returnStdout: true).startsWith('/check-bin:')) error('PATH+X not prepended')
}
if (env.CHECK_A != null || sh(script: 'test -z "${CHECK_A:-}"', returnStatus: true) != 0) error('withEnv leaked out of its block')
withCredentials([string(credentialsId: 'check-credential', variable: 'CHECK_TOKEN')]) {
    // Compared in two halves: the full secret must not appear in a script.
    if (sh(script: 'test "${CHECK_TOKEN%-9d1e}" = check-secret && test "${CHECK_TOKEN#check-}" = secret-9d1e', returnStatus: true) != 0) error('credential not bound')
}
if (sh(script: 'test -z "${CHECK_TOKEN:-}"', returnStatus: true) != 0) error('credential leaked out of its block')
env.CHECK_B = 'b'
if (sh(script: 'printf %s "$CHECK_B"', returnStdout: true) != 'b') error('env assignment not seen by sh')
def order = [].asSynchronized()
parallel(one: { withEnv(['CHECK_C=1']) { order << sh(script: 'printf %s "$CHECK_C"', returnStdout: true) } },
         two: { order << sh(script: 'printf %s "${CHECK_C:-none}"', returnStdout: true) })
if (order.sort() != ['1', 'none']) error("parallel branches share withEnv: ${order}")
try { sh 'exit 3'; error('a failing sh did not throw') } catch (AbortException e) { }
try { error('boom') } catch (AbortException e) { if (e.message != 'boom') error('error message lost') }
writeFile(file: 'sub/f.txt', text: 'hello')
if (!fileExists('sub/f.txt') || readFile('sub/f.txt') != 'hello' || fileExists('nope')) error('file steps')
if (!isUnix()) error('isUnix')
if (!libraryResource('onelaunch/checksums.json').contains('"version"')) error('libraryResource')
try { libraryResource('onelaunch/none.json'); error('a missing resource was read') } catch (AbortException e) { }
try { bat 'exit 0'; error('bat ran on a Unix agent') } catch (AbortException e) { }
''')
        try {
            s.run()
        } catch (Throwable e) {
            System.err.print(p.console)
            throw e
        }
        if (p.leaks()) throw new IllegalStateException("self-check: ${p.leaks()}")
        // The leak detector itself: a secret in a script must be caught.
        Pipeline q = new Pipeline(ws, baseEnv, ['c': 'leak-probe-77f2'], new File(dir, 'steps2.log'), true)
        q.load(libraryDir, 'leakcheck.groovy', "sh 'true leak-probe-77f2'").run()
        if (!q.leaks().any { it.contains('sh, bat or powershell script') }) throw new IllegalStateException('self-check: leak detector missed a secret')
    } finally {
        dir.deleteDir()
    }
}

// ---------------------------------------------------------------- main

Map<String, String> opts = [:]
List<String> positional = []
for (int i = 0; i < args.length; i++) {
    String a = args[i]
    if (a.startsWith('--') && i + 1 < args.length) {
        opts[a.substring(2)] = args[++i]
    } else {
        positional << a
    }
}
if (positional.size() != 1 || !opts.library) {
    System.err.println('usage: harness.groovy --library DIR [--workspace DIR] [--step-log FILE] PIPELINE.groovy')
    System.exit(2)
}
File libraryDir = new File(opts.library).canonicalFile
File pipelineFile = new File(positional[0])
File workspace = new File(opts.workspace ?: System.getenv('WORKSPACE') ?: '.').canonicalFile
File stepLog = new File(opts['step-log'] ?: new File(workspace.path + '@tmp', 'steps.log').path)

String credentialsVar = 'ONELAUNCH_TEST_CREDENTIALS_JSON'
Map<String, String> secrets = [:]
String credentialsJson = System.getenv(credentialsVar)
if (credentialsJson) {
    new JsonSlurperClassic().parseText(credentialsJson).each { k, v -> secrets[k.toString()] = v.toString() }
}
Map<String, String> baseEnv = new TreeMap<String, String>(System.getenv())
baseEnv.remove(credentialsVar)
// The job's earlier builds and their causes: [{"number": 42, "causes": [{"_class": ..., "shortDescription": ...}]}].
String buildsVar = 'ONELAUNCH_TEST_BUILDS_JSON'
List<Map> builds = System.getenv(buildsVar) ? (List<Map>) new JsonSlurperClassic().parseText(System.getenv(buildsVar)) : []
baseEnv.remove(buildsVar)
String agentVar = 'ONELAUNCH_TEST_AGENT'
boolean windowsAgent = System.getenv(agentVar) == 'windows'
baseEnv.remove(agentVar)
String powershellVar = 'ONELAUNCH_TEST_POWERSHELL_STDOUT'
List<String> powershellStdout = System.getenv(powershellVar) ?
        new JsonSlurperClassic().parseText(System.getenv(powershellVar)).collect { it.toString() } : []
baseEnv.remove(powershellVar)

selfCheck(libraryDir, baseEnv)
System.out.println('harness: self-check passed')

Pipeline pipeline = new Pipeline(workspace, baseEnv, secrets, stepLog, false)
pipeline.builds = builds
pipeline.unix = !windowsAgent
pipeline.powershellStdout = powershellStdout
int exitCode = 0
try {
    pipeline.load(libraryDir, pipelineFile.name, pipelineFile.getText('UTF-8')).run()
    pipeline.out('Finished: SUCCESS')
} catch (Throwable e) {
    pipeline.out("ERROR: ${e.message ?: e.class.name}")
    if (!(e instanceof AbortException) && !(e instanceof StepNotAllowed)) {
        StringWriter sw = new StringWriter()
        e.printStackTrace(new PrintWriter(sw))
        pipeline.out(sw.toString())
    }
    pipeline.out('Finished: FAILURE')
    exitCode = 1
}
List<String> leaks = pipeline.leaks()
for (String leak : leaks) {
    System.out.println("harness: LEAK: ${leak}")
}
if (leaks) {
    exitCode = 1
}
System.out.println("harness: step log ${stepLog.path}")
System.exit(exitCode)

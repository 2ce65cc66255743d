// A Windows agent (the harness with ONELAUNCH_TEST_AGENT=windows records bat
// and powershell): no binary configured, so each step installs (or reuses)
// the pinned release with powershell and runs the CLI with bat. The test
// provides ONELAUNCH_TEST_ENDPOINT, ONELAUNCH_TEST_RELEASE_URL and the
// `onelaunch-token` credential; the launch and job run ids are given, as an
// upstream job would pass them.
node {
    Map common = [endpoint: env.ONELAUNCH_TEST_ENDPOINT, credentialsId: 'onelaunch-token',
                  releaseUrl: env.ONELAUNCH_TEST_RELEASE_URL, launchId: '7', jobRunId: '9']
    String refused = null
    try {
        onelaunch.upload(common + [releaseUrl: "https://mirror.example/x'; Remove-Item C:\\ -Recurse; '"])
    } catch (e) {
        refused = e.message
    }
    if (!refused?.startsWith('onelaunch.upload: releaseUrl must be an http(s) URL')) {
        error("a releaseUrl with a quote was not refused: ${refused}")
    }
    onelaunch.upload(common + [results: ['build/allure-results', [path: 'junit reports']], allowEmpty: true])
    onelaunch.watch(common + [results: 'build/allure-results', command: 'gradlew.bat test --tests "shop & co"'])
    onelaunch.finish(common + [status: 'passed', qualityGate: true, gateRules: ['--max-failures', '0']])
}

// The finish step's quality gate (issue 14), run by test/run: start, upload
// the unit results (one test fails), finish with a gate that holds
// (maxFailures at most 5), then finish again with `--max-failures 0`: the launch is
// finished already, so only the gate runs, and it fails the build with the
// broken rule. gateRules words that are not known flags fail before anything
// runs.
node {
    for (Map bad : [[rules: ['--max-failures', '0;', 'touch', 'pwned'], message: "gateRules: --max-failures expects a value such as 0, 95 or failed,broken, got '0;'"],
                    [rules: ['--wait'], message: "gateRules: unknown word '--wait'"],
                    [rules: '--max-failures 0', message: 'gateRules: expected a list']]) {
        String message = null
        try {
            onelaunch.finish(launchId: '1', endpoint: env.ONELAUNCH_TEST_ENDPOINT, qualityGate: true, gateRules: bad.rules)
        } catch (e) {
            message = e.message
        }
        if (!message?.startsWith('onelaunch.finish: ' + bad.message)) {
            error("gateRules ${bad.rules} did not fail as expected: ${message}")
        }
    }
    onelaunch.start(
        endpoint: env.ONELAUNCH_TEST_ENDPOINT,
        credentialsId: 'onelaunch-token',
        binary: env.ONELAUNCH_TEST_BINARY,
        launchName: 'gated')
    sh 'mkdir -p build && cp -R test-output/unit build/allure-results'
    onelaunch.upload(results: 'build/allure-results')
    onelaunch.finish(qualityGate: true, gateRules: ['--max-failures', '5', '--min-tests', '1'])
    echo '--- gate held ---'
    onelaunch.finish(qualityGate: true, gateRules: ['--max-failures', '0'])
    echo '--- not reached ---'
}

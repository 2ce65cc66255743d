// `onelaunch(config) { body }` (withLaunch) with a failing body: the results
// are still uploaded, the job run is finished as failed, the launch is closed
// and the body's error reaches the pipeline.
node {
    // Typos and bad values fail before anything runs.
    for (Map bad : [[step: 'upload', config: [result: 'build'], message: 'onelaunch.upload: unknown key(s) result'],
                    [step: 'finish', config: [status: 'green'], message: 'onelaunch.finish: status must be']]) {
        String message = null
        try {
            onelaunch."${bad.step}"(bad.config)
        } catch (e) {
            message = e.message
        }
        if (!message?.startsWith(bad.message)) {
            error("${bad.step}(${bad.config}) did not fail as expected: ${message}")
        }
    }

    String failure = null
    try {
        onelaunch(
            endpoint: env.ONELAUNCH_TEST_ENDPOINT,
            credentialsId: 'onelaunch-token',
            binary: env.ONELAUNCH_TEST_BINARY,
            launchName: 'nightly',
            results: 'build/allure-results') {
            sh 'mkdir -p build && cp -R test-output/passing build/allure-results'
            error('tests crashed')
        }
    } catch (e) {
        failure = e.message
    }
    if (failure != 'tests crashed') {
        error("withLaunch did not rethrow the body's error: ${failure}")
    }
    if (!env.ONELAUNCH_FINISHED) {
        error('withLaunch did not finish the launch')
    }
    echo "withLaunch rethrew: ${failure}"
}

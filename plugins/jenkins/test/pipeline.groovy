// Scripted form of examples/jenkins/Jenkinsfile, run by test/run: start the
// launch, upload from two parallel branches, finish it (twice: the second call
// must be a quiet no-op). The test provides ONELAUNCH_TEST_ENDPOINT,
// ONELAUNCH_TEST_BINARY, the `onelaunch-token` credential and, in the
// workspace, the files the "test runs" produce under test-output/.
node {
    try {
        stage('Start launch') {
            Map launch = onelaunch.start(
                endpoint: env.ONELAUNCH_TEST_ENDPOINT,
                credentialsId: 'onelaunch-token',
                binary: env.ONELAUNCH_TEST_BINARY,
                launchName: "shop release #${env.BUILD_NUMBER}",
                launchTags: ['jenkins', 'release'])
            if (!launch.launchId || env.ALLURE_LAUNCH_ID != launch.launchId) {
                error("start did not publish ALLURE_LAUNCH_ID: ${launch}")
            }
            if (!launch.jobRunId || env.ALLURE_JOB_RUN_ID != launch.jobRunId) {
                error("start did not publish ALLURE_JOB_RUN_ID: ${launch}")
            }
            if (!launch.launchUrl || env.ALLURE_LAUNCH_URL != launch.launchUrl) {
                error("start did not publish ALLURE_LAUNCH_URL: ${launch}")
            }
        }
        stage('Tests') {
            parallel(
                'Unit tests': {
                    try {
                        sh 'mkdir -p build && cp -R test-output/unit build/allure-results'
                    } finally {
                        onelaunch.upload(results: 'build/allure-results')
                    }
                },
                'API tests': {
                    try {
                        sh 'mkdir -p api-tests && cp -R test-output/api api-tests/results'
                    } finally {
                        // The Allure Jenkins plugin's `results` shape.
                        onelaunch.upload(results: [[path: 'api-tests/results']])
                    }
                }
            )
        }
    } finally {
        onelaunch.finish()
        echo '--- finish again ---'
        onelaunch.finish()
        echo '--- end ---'
    }
}

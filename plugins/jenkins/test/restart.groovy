// A build of a job whose builds may be restarted (Restart from Stage), replayed
// or rebuilt: the test runs it several times with other build numbers and
// causes. Each build copies the JUnit report prepared for its number.
node {
    onelaunch(
        endpoint: env.ONELAUNCH_TEST_ENDPOINT,
        credentialsId: 'onelaunch-token',
        binary: env.ONELAUNCH_TEST_BINARY,
        launchName: 'release',
        results: 'build/junit') {
        sh 'mkdir -p build/junit && cp "test-output/build-$BUILD_NUMBER/TEST-api.xml" build/junit/'
    }
    echo "build ${currentBuild.number} reported into launch ${env.ALLURE_LAUNCH_ID}, job run ${env.ALLURE_JOB_RUN_ID}"
}

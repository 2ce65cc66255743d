// Issue 13, run by tests/e2e/wrapper_jenkins.rs: two parallel branches share
// the build's job run; the fast branch uploads, then finishes the launch while
// the slow branch's watch is still uploading. The finish (job-run stop, then
// launch close --wait) must wait for that upload, so every result of both
// branches ends up in the closed launch. ONELAUNCH_TEST_SHARDS is the
// directory of the shard scripts and their marker files (tests/e2e/wrapper_shards.rs).
node {
    onelaunch.start(
        endpoint: env.ONELAUNCH_TEST_ENDPOINT,
        credentialsId: 'onelaunch-token',
        binary: env.ONELAUNCH_TEST_BINARY,
        launchName: 'Shards')
    stage('Tests') {
        parallel(
            'Fast shard': {
                sh 'sh "$ONELAUNCH_TEST_SHARDS/fast.sh" fast-results'
                onelaunch.upload(results: 'fast-results')
                // Waits (bounded) until the slow branch is uploading.
                sh 'sh "$ONELAUNCH_TEST_SHARDS/before-finish.sh"'
                onelaunch.finish(closeTimeout: '2m')
            },
            'Slow shard': {
                onelaunch.watch(
                    results: 'slow-results',
                    command: 'sh "$ONELAUNCH_TEST_SHARDS/slow.sh" slow-results')
            }
        )
    }
    echo '--- end ---'
}

// No binary configured and none on the agent's PATH: the first step installs
// the release pinned in resources/onelaunch/checksums.json from releaseUrl,
// the later ones reuse the agent's cached copy. The test provides
// ONELAUNCH_TEST_ENDPOINT, ONELAUNCH_TEST_RELEASE_URL, the `onelaunch-token`
// credential and the results under test-output/unit.
node {
    Map launch = onelaunch.start(
        endpoint: env.ONELAUNCH_TEST_ENDPOINT,
        credentialsId: 'onelaunch-token',
        releaseUrl: env.ONELAUNCH_TEST_RELEASE_URL,
        launchName: 'installed')
    echo "--- started launch ${launch.launchId} ---"
    onelaunch.upload(results: 'test-output/unit')
    onelaunch.finish()
}

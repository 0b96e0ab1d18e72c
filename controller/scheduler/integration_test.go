package scheduler

import "testing"

// These run test bodies of scheduler_test.go against the real controller
// on Postgres, to keep the in-memory controller honest where the
// controller's own rules matter: a deployment end to end (status changes,
// formations, events), a failed one putting the app back, one-off job
// reports merged into the controller's job records, and the cluster's
// build settings read through the real API. They skip under
// -short (except in CI).

func TestIntegrationOneByOneDeployment(t *testing.T) {
	testOneByOneDeployment(t, newIntegrationHarness(t))
}

func TestIntegrationScaleDuringDeployment(t *testing.T) {
	testScaleDuringDeployment(t, newIntegrationHarness(t))
}

func TestIntegrationDeploymentsInARow(t *testing.T) {
	testDeploymentsInARow(t, newIntegrationHarness(t))
}

func TestIntegrationFailingDeploymentRollsBack(t *testing.T) {
	testFailingDeploymentRollsBack(t, newIntegrationHarness(t))
}

func TestIntegrationOneOffJobStatesReported(t *testing.T) {
	testOneOffJobStatesReported(t, newIntegrationHarness(t))
}

func TestIntegrationBuildEnvReachesNextJob(t *testing.T) {
	testBuildEnvReachesNextJob(t, newIntegrationHarness(t))
}

// Package testdeps decides what an integration test does when a real
// dependency (Docker, Postgres, etcd, git, ssh) is missing: skip with a clear
// message on a developer's machine, fail in CI (CI=true), where a skip would
// hide that the test never ran.
package testdeps

import (
	"os"
	"os/exec"
	"testing"
)

// InCI reports whether the tests run in CI, where nothing may be skipped.
func InCI() bool { return os.Getenv("CI") == "true" }

// Missing stops the test because what it needs is not there: a skip locally,
// a failure in CI.
func Missing(t testing.TB, what string, err error) {
	t.Helper()
	if InCI() {
		t.Fatalf("integration dependency %s is missing (CI=true, so this fails instead of skipping): %v", what, err)
	}
	t.Skipf("skipping: integration dependency %s is missing: %v (make test installs it)", what, err)
}

// LookPath returns the path of the named program, or stops the test through
// Missing when it is not installed.
func LookPath(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		Missing(t, name, err)
	}
	return p
}

// Short skips integration tests under `go test -short`, except in CI.
func Short(t testing.TB) {
	t.Helper()
	if testing.Short() && !InCI() {
		t.Skip("skipping integration test in -short mode")
	}
}

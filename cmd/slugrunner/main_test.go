package main

import (
	"bytes"
	"os"
	"os/exec"
	"testing"

	"go.uber.org/goleak"
)

// TestMain lets the test binary stand in for slugrunner: run with
// SLUGRUNNER_TEST_AS_MAIN=1 it is the command itself. Otherwise it runs
// the tests and fails them if any goroutine outlives them.
func TestMain(m *testing.M) {
	if os.Getenv("SLUGRUNNER_TEST_AS_MAIN") == "1" {
		main()
		return
	}
	goleak.VerifyTestMain(m)
}

// runMain runs slugrunner with args in an app dir of its own and returns
// what it wrote to stdout and stderr.
func runMain(t *testing.T, extraEnv []string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), os.Args[0], args...)
	cmd.Env = append(os.Environ(), "SLUGRUNNER_TEST_AS_MAIN=1", "SLUGRUNNER_APP_DIR="+t.TempDir())
	cmd.Env = append(cmd.Env, extraEnv...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err = cmd.Run()
	return out.String(), errOut.String(), err
}

// The job's output is the app's alone: slugrunner adds nothing to it, and
// stdout and stderr stay apart.
func TestOutputIsTheCommandsOnly(t *testing.T) {
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("bash is not installed")
	}
	stdout, stderr, err := runMain(t, nil, "bash", "-c", "echo 'foo bar'; echo oops >&2")
	if err != nil {
		t.Fatalf("slugrunner: %v (stderr %q)", err, stderr)
	}
	if stdout != "foo bar\n" || stderr != "oops\n" {
		t.Errorf("stdout %q, stderr %q; want exactly %q and %q", stdout, stderr, "foo bar\n", "oops\n")
	}

	// Its diagnostics appear only when asked for.
	_, stderr, err = runMain(t, []string{"SLUGRUNNER_DEBUG=1"}, "true")
	if err != nil || !bytes.Contains([]byte(stderr), []byte("component=slugrunner")) {
		t.Errorf("with SLUGRUNNER_DEBUG stderr = %q, %v; want slugrunner's diagnostics", stderr, err)
	}
}

// A slug that cannot be fetched is reported in one plain line.
func TestFetchFailureIsOnePlainLine(t *testing.T) {
	_, stderr, err := runMain(t, []string{"SLUG_URL=http://127.0.0.1:1/slug.tgz"}, "true")
	if err == nil {
		t.Fatal("slugrunner with an unreachable slug succeeded")
	}
	if !bytes.HasPrefix([]byte(stderr), []byte("slugrunner: fetch slug: ")) || bytes.Count([]byte(stderr), []byte("\n")) != 1 {
		t.Errorf("stderr = %q; want one line starting %q", stderr, "slugrunner: fetch slug: ")
	}
}

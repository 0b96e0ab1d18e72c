package patroni

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/openflynn/flynn/appliance/postgres"
	"github.com/openflynn/flynn/discoverd/discoverdtest"
	"github.com/openflynn/flynn/pkg/poll"
	"github.com/openflynn/flynn/pkg/testdeps"
)

// TestLoneInstanceAsInit runs the flynn-postgres binary as a job runs it:
// the first process of a PID namespace of its own (a container's init),
// configured by the environment alone. It becomes the primary, says that
// it runs without a replica, creates its database, and on SIGTERM stops
// promptly and cleanly: as init it reaps Postgres, which Patroni starts
// detached, so Patroni does not wait for a zombie.
func TestLoneInstanceAsInit(t *testing.T) {
	testdeps.Short(t)
	testdeps.LookPath(t, "patroni")
	if _, err := os.Stat(filepath.Join(DefaultBinDir, "postgres")); err != nil {
		testdeps.Missing(t, "postgresql-15 in "+DefaultBinDir, err)
	}
	if os.Geteuid() != 0 {
		testdeps.Missing(t, "root (for a PID namespace and the postgres user)", errors.New("not root"))
	}
	unshare := testdeps.LookPath(t, "unshare")
	goBin := testdeps.LookPath(t, "go")
	base := t.TempDir()
	for _, d := range []string{base, filepath.Dir(base)} {
		if err := os.Chmod(d, 0o711); err != nil {
			t.Fatal(err)
		}
	}
	bin := filepath.Join(base, "flynn-postgres")
	if out, err := exec.Command(goBin, "build", "-o", bin, "github.com/openflynn/flynn/cmd/flynn-postgres").CombinedOutput(); err != nil {
		t.Fatalf("go build flynn-postgres: %v\n%s", err, out)
	}
	disc := discoverdtest.New(t, discoverdtest.Options{Key: testClusterKey})
	dc := disc.Client()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	const port = 15420
	dataDir := filepath.Join(base, "data")
	logPath := filepath.Join(base, "flynn-postgres.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	cmd := exec.Command(unshare, "--pid", "--fork", "--mount-proc", "--kill-child", bin)
	cmd.Env = []string{
		"PATH=" + os.Getenv("PATH"),
		"PORT=" + strconv.Itoa(port),
		"PORT_0=" + strconv.Itoa(port),
		"PORT_1=" + strconv.Itoa(port+1),
		"EXTERNAL_IP=127.0.0.1",
		"FLYNN_EXTERNAL_IP=127.0.0.1",
		"FLYNN_HOST_ID=solo",
		"FLYNN_JOB_ID=solo-job",
		"FLYNN_DISCOVERD_URL=" + disc.URL,
		"FLYNN_DATA_DIR=" + dataDir,
		"FLYNN_CLUSTER_KEY=" + testClusterKey,
		"FLYNN_POSTGRES_PASSWORD=" + testPassword,
		"FLYNN_POSTGRES_DATABASES=controller",
	}
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// done is closed once the process has exited, with its error in
	// exitErr.
	done := make(chan struct{})
	var exitErr error
	go func() { exitErr = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		select {
		case <-done:
		default:
			_ = cmd.Process.Kill() // --kill-child takes the namespace with it
			<-done
		}
		killPostmaster(filepath.Join(dataDir, "postgres", "pgdata"))
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			t.Logf("flynn-postgres log:\n%s", b)
		}
	})

	addr := "127.0.0.1:" + strconv.Itoa(port)
	gone := false
	err = poll.Wait(ctx, 2*time.Minute, func() error {
		select {
		case <-done:
			gone = true
			return nil
		default:
		}
		if addrs := primaries(ctx, dc); len(addrs) != 1 || addrs[0] != addr {
			return fmt.Errorf("%q has %v", postgres.Service, addrs)
		}
		return nil
	})
	if gone {
		t.Fatalf("flynn-postgres exited: %v", exitErr)
	}
	if err != nil {
		t.Fatalf("the lone instance registered as the primary: %v", err)
	}
	conn, err := connect(ctx, addr, "controller")
	if err != nil {
		t.Fatalf("connect to database controller: %v", err)
	}
	conn.Close(ctx)
	poll.UntilNil(t, 10*time.Second, "the log says the instance runs alone", func() error {
		b, _ := os.ReadFile(logPath)
		if !strings.Contains(string(b), "running alone without a replica") {
			return errors.New("not said")
		}
		return nil
	})

	// SIGTERM, as flynn-host stops a job: to the namespace's init.
	initPID, err := childOf(cmd.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	stopped := time.Now()
	if err := syscall.Kill(initPID, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-done:
		if exitErr != nil {
			t.Errorf("flynn-postgres exited with %v after SIGTERM, want status 0", exitErr)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("flynn-postgres still runs 30s after SIGTERM")
	}
	t.Logf("stopped %s after SIGTERM", time.Since(stopped).Round(time.Millisecond))
	if addrs := primaries(ctx, dc); len(addrs) != 0 {
		t.Errorf("after the stop %q has %v", postgres.Service, addrs)
	}
	b, _ := os.ReadFile(logPath)
	for _, secret := range []string{testClusterKey, testPassword} {
		if strings.Contains(string(b), secret) {
			t.Error("the log holds a secret")
		}
	}
}

// childOf returns the only child of pid.
func childOf(pid int) (int, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", pid, pid))
	if err != nil {
		return 0, err
	}
	fields := strings.Fields(string(b))
	if len(fields) != 1 {
		return 0, fmt.Errorf("process %d has children %v, want one", pid, fields)
	}
	return strconv.Atoi(fields[0])
}

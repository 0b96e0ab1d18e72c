package patroni

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/openflynn/flynn/appliance/postgres"
	"github.com/openflynn/flynn/discoverd/client"
	"github.com/openflynn/flynn/discoverd/discoverdtest"
	"github.com/openflynn/flynn/pkg/poll"
	"github.com/openflynn/flynn/pkg/testdeps"
)

// Secrets of the test cluster, which no log may show.
const (
	testClusterKey  = "failover-test-cluster-key"
	testPassword    = "failover-test-superuser-password"
	testReplication = "failover-test-replication-password"
)

// instance is one flynn-postgres run in-process, with real Patroni and
// Postgres processes.
type instance struct {
	t       *testing.T
	cfg     Config
	logPath string

	mu     sync.Mutex
	pid    int // Patroni's
	cancel context.CancelFunc
	done   chan error
}

func newInstance(t *testing.T, base, discoverdURL, member string, port int) *instance {
	dir := filepath.Join(base, member)
	in := &instance{t: t, logPath: filepath.Join(base, member+".log")}
	in.cfg = Config{
		Member:              member,
		HostID:              member,
		JobID:               member + "-job",
		ExternalIP:          "127.0.0.1",
		Port:                port,
		APIPort:             port + 1,
		DataDir:             dir,
		ClusterKey:          testClusterKey,
		Password:            testPassword,
		ReplicationPassword: testReplication,
		Databases:           []string{"controller", "blobstore"},
		DiscoverdURL:        discoverdURL,
		CheckInterval:       200 * time.Millisecond,
		StopTimeout:         30 * time.Second,
		Started: func(pid int) {
			in.mu.Lock()
			in.pid = pid
			in.mu.Unlock()
		},
	}
	t.Cleanup(func() {
		in.stop()
		killPostmaster(in.pgData())
		if t.Failed() {
			b, _ := os.ReadFile(in.logPath)
			t.Logf("%s log:\n%s", member, b)
		}
	})
	return in
}

func (in *instance) pgData() string { return newLayout(in.cfg.DataDir).PGData }
func (in *instance) addr() string   { return "127.0.0.1:" + strconv.Itoa(in.cfg.Port) }
func (in *instance) api() string    { return "http://127.0.0.1:" + strconv.Itoa(in.cfg.APIPort) }

// start runs the instance's Run until stop.
func (in *instance) start() {
	in.t.Helper()
	out, err := os.OpenFile(in.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		in.t.Fatal(err)
	}
	cfg := in.cfg
	cfg.Output = out
	logger := slog.New(slog.NewTextHandler(out, &slog.HandlerOptions{Level: slog.LevelDebug}))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	in.mu.Lock()
	in.cancel, in.done = cancel, done
	in.mu.Unlock()
	go func() {
		err := Run(ctx, cfg, logger)
		out.Close()
		done <- err
	}()
}

// stop ends Run as SIGTERM does, and waits for it.
func (in *instance) stop() {
	in.mu.Lock()
	cancel, done := in.cancel, in.done
	in.mu.Unlock()
	if cancel == nil {
		return
	}
	cancel()
	if err := <-done; err != nil && !strings.Contains(err.Error(), "patroni exited") {
		in.t.Errorf("%s: Run: %v", in.cfg.Member, err)
	}
	in.mu.Lock()
	in.cancel = nil
	in.mu.Unlock()
}

// crash SIGKILLs Patroni and Postgres at once, as the loss of the node
// would stop them, and waits for Run to end with an error.
func (in *instance) crash() {
	in.t.Helper()
	in.mu.Lock()
	pid, cancel, done := in.pid, in.cancel, in.done
	in.mu.Unlock()
	defer cancel()
	pm := postmasterPID(in.pgData())
	if pid == 0 || pm == 0 {
		in.t.Fatalf("%s: patroni pid %d, postmaster pid %d", in.cfg.Member, pid, pm)
	}
	_ = syscall.Kill(pm, syscall.SIGKILL)
	_ = syscall.Kill(pid, syscall.SIGKILL)
	if err := <-done; err == nil || !strings.Contains(err.Error(), "patroni exited") {
		in.t.Errorf("%s: Run after patroni was killed: %v, want patroni exited", in.cfg.Member, err)
	}
	in.mu.Lock()
	in.cancel = nil
	in.mu.Unlock()
}

// postmasterPID reads the running postmaster's pid from its pid file.
func postmasterPID(pgData string) int {
	f, err := os.Open(filepath.Join(pgData, "postmaster.pid"))
	if err != nil {
		return 0
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	if !s.Scan() {
		return 0
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(s.Text()))
	return pid
}

// killPostmaster kills a postmaster the test left behind (Patroni starts
// it detached, so it outlives a killed Patroni): the pid file's, if that
// process is still a postgres of pgData and not another that got its pid.
func killPostmaster(pgData string) {
	pid := postmasterPID(pgData)
	if pid <= 0 {
		return
	}
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err == nil && strings.Contains(string(cmdline), pgData) {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
}

// get returns the status code of GET url.
func get(url string) int {
	c := &http.Client{Timeout: time.Second}
	defer c.CloseIdleConnections()
	resp, err := c.Get(url)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// connect opens a connection to db at addr as the superuser, over TCP
// with the password (scram-sha-256).
func connect(ctx context.Context, addr, db string) (*pgx.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	return pgx.Connect(ctx, fmt.Sprintf("postgres://%s:%s@%s/%s?sslmode=disable", postgres.SuperUser, testPassword, addr, db))
}

// primaries returns the addresses in discoverd's "postgres" service.
func primaries(ctx context.Context, c *client.Client) []string {
	list, err := c.Instances(ctx, postgres.Service)
	if err != nil {
		return nil
	}
	var out []string
	for _, inst := range list {
		out = append(out, inst.Addr)
	}
	return out
}

// writer inserts rows one at a time through whatever discoverd names the
// primary, and records those whose commit was acknowledged.
type writer struct {
	disc *client.Client

	mu       sync.Mutex
	acked    []int
	failedAt time.Time // first failure after the last success
	resumed  time.Duration
}

func (w *writer) run(ctx context.Context) {
	var conn *pgx.Conn
	defer func() {
		if conn != nil {
			conn.Close(context.Background())
		}
	}()
	for id := 1; ctx.Err() == nil; id++ {
		if conn == nil {
			addrs := primaries(ctx, w.disc)
			if len(addrs) != 1 {
				w.failed()
				waitABit(ctx)
				continue
			}
			c, err := connect(ctx, addrs[0], "controller")
			if err != nil {
				w.failed()
				waitABit(ctx)
				continue
			}
			conn = c
		}
		qctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		_, err := conn.Exec(qctx, "INSERT INTO writes (id) VALUES ($1)", id)
		cancel()
		if err != nil {
			w.failed()
			conn.Close(context.Background())
			conn = nil
			continue
		}
		w.mu.Lock()
		w.acked = append(w.acked, id)
		if !w.failedAt.IsZero() {
			w.resumed = time.Since(w.failedAt)
			w.failedAt = time.Time{}
		}
		w.mu.Unlock()
	}
}

func (w *writer) failed() {
	w.mu.Lock()
	if w.failedAt.IsZero() {
		w.failedAt = time.Now()
	}
	w.mu.Unlock()
}

func (w *writer) count() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.acked)
}

// waitABit waits a poll interval, or until ctx ends.
func waitABit(ctx context.Context) {
	t := time.NewTimer(poll.Interval * 5)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// TestFailover runs two flynn-postgres instances with real Patroni and
// Postgres over a real discoverd (with its embedded etcd, over TLS): one
// becomes the primary, the only instance in "postgres", the other its
// synchronous standby. Then, during a loop of inserts through the
// primary, the primary's Patroni and Postgres are killed: the standby
// must be promoted and registered within 30s, with every acknowledged
// insert. The killed instance, started again, rejoins as a replica.
func TestFailover(t *testing.T) {
	testdeps.Short(t)
	testdeps.LookPath(t, "patroni")
	if _, err := os.Stat(filepath.Join(DefaultBinDir, "postgres")); err != nil {
		testdeps.Missing(t, "postgresql-15 in "+DefaultBinDir, err)
	}
	if os.Geteuid() == 0 {
		if _, err := user.Lookup(DefaultUser); err != nil {
			testdeps.Missing(t, "the postgres user", err)
		}
	}
	base := t.TempDir()
	// The postgres user must reach its directories inside the test's.
	for _, d := range []string{base, filepath.Dir(base)} {
		if err := os.Chmod(d, 0o711); err != nil {
			t.Fatal(err)
		}
	}
	disc := discoverdtest.New(t, discoverdtest.Options{Key: testClusterKey})
	dc := disc.Client()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	a := newInstance(t, base, disc.URL, "pg1", 15400)
	b := newInstance(t, base, disc.URL, "pg2", 15410)
	byAddr := map[string]*instance{a.addr(): a, b.addr(): b}
	a.start()
	b.start()

	// One primary, alone in "postgres"; the other its synchronous standby.
	var primary, standby *instance
	poll.UntilNil(t, 2*time.Minute, "one primary registered", func() error {
		addrs := primaries(ctx, dc)
		if len(addrs) != 1 {
			return fmt.Errorf("%q has %v", postgres.Service, addrs)
		}
		primary = byAddr[addrs[0]]
		return nil
	})
	standby = a
	if primary == a {
		standby = b
	}
	t.Logf("primary %s, standby %s", primary.cfg.Member, standby.cfg.Member)
	poll.Until(t, 2*time.Minute, standby.cfg.Member+" is the synchronous standby", func() bool {
		return get(standby.api()+"/sync") == http.StatusOK
	})
	poll.UntilNil(t, 30*time.Second, "standby registered as a replica", func() error {
		list, err := dc.Instances(ctx, postgres.ReplicaService)
		if err != nil || len(list) != 1 || list[0].Addr != standby.addr() {
			return fmt.Errorf("%q: %v, %v", postgres.ReplicaService, list, err)
		}
		return nil
	})
	// The databases, through the primary with the password.
	var conn *pgx.Conn
	poll.UntilNil(t, 30*time.Second, "database controller on the primary", func() error {
		var err error
		conn, err = connect(ctx, primary.addr(), "controller")
		return err
	})
	if _, err := conn.Exec(ctx, "CREATE TABLE writes (id int PRIMARY KEY)"); err != nil {
		t.Fatal(err)
	}
	conn.Close(ctx)

	// Writes, then the primary's node is lost mid-loop.
	w := &writer{disc: dc}
	wctx, stopWriting := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { w.run(wctx) })
	defer func() { stopWriting(); wg.Wait() }()
	poll.Until(t, 30*time.Second, "200 acknowledged inserts", func() bool { return w.count() >= 200 })
	killedAt := time.Now()
	primary.crash()
	t.Logf("killed %s's patroni and postgres after %d acknowledged inserts", primary.cfg.Member, w.count())

	poll.UntilNil(t, 30*time.Second, standby.cfg.Member+" registered as the primary", func() error {
		if addrs := primaries(ctx, dc); len(addrs) != 1 || addrs[0] != standby.addr() {
			return fmt.Errorf("%q has %v", postgres.Service, addrs)
		}
		return nil
	})
	failover := time.Since(killedAt)
	before := w.count()
	poll.Until(t, 30*time.Second, "inserts resume on the new primary", func() bool { return w.count() >= before+100 })
	resumed := time.Since(killedAt)
	stopWriting()
	wg.Wait()

	// Every acknowledged insert is on the new primary.
	conn, err := connect(ctx, standby.addr(), "controller")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	present := map[int]bool{}
	rows, err := conn.Query(ctx, "SELECT id FROM writes")
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var id int
		if err := rows.Scan(&id); err != nil {
			t.Fatal(err)
		}
		present[id] = true
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	lost := 0
	for _, id := range w.acked {
		if !present[id] {
			lost++
		}
	}
	if lost > 0 {
		t.Errorf("%d of %d acknowledged inserts lost", lost, len(w.acked))
	}
	t.Logf("failover: new primary registered %s after the kill, writes resumed %s after (writer saw %s without a primary); %d acknowledged inserts, %d lost",
		failover.Round(time.Millisecond), resumed.Round(time.Millisecond), w.resumed.Round(time.Millisecond), len(w.acked), lost)
	fmt.Printf("BENCH postgres failover %.2fs (registered) writes_resumed %.2fs acked %d lost %d\n",
		failover.Seconds(), resumed.Seconds(), len(w.acked), lost)
	if failover > 30*time.Second {
		t.Errorf("failover took %s, more than 30s", failover)
	}

	// The lost instance, started again on its data, rejoins as a replica
	// (rewound if it had diverged) and becomes the synchronous standby.
	primary.start()
	poll.Until(t, 2*time.Minute, primary.cfg.Member+" back as the synchronous standby", func() bool {
		return get(primary.api()+"/sync") == http.StatusOK
	})
	if addrs := primaries(ctx, dc); len(addrs) != 1 || addrs[0] != standby.addr() {
		t.Errorf("after the rejoin %q has %v, want %s alone", postgres.Service, addrs, standby.addr())
	}

	// A stopped primary leaves "postgres" at once.
	standby.stop()
	poll.UntilNil(t, 30*time.Second, "the stopped primary deregistered", func() error {
		for _, addr := range primaries(ctx, dc) {
			if addr == standby.addr() {
				return errors.New("still registered")
			}
		}
		return nil
	})
	primary.stop()

	// No secret in any log: flynn-postgres's, Patroni's, Postgres's.
	for _, in := range []*instance{a, b} {
		log, err := os.ReadFile(in.logPath)
		if err != nil {
			t.Fatal(err)
		}
		for _, secret := range []string{testClusterKey, testPassword, testReplication} {
			if strings.Contains(string(log), secret) {
				t.Errorf("%s's log holds a secret", in.cfg.Member)
			}
		}
	}
}

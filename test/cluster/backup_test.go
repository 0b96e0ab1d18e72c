package cluster

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/openflynn/flynn/appliance/redis/resp"
	"github.com/openflynn/flynn/controller"
	"github.com/openflynn/flynn/pkg/poll"
)

// backupApps is how many apps the backup test's cluster runs.
const backupApps = 10

// TestBackupRestore: a cluster with ten apps, two of them with a database
// holding rows, is backed up with `flynn cluster backup`; the cluster is
// taken down and a fresh one brought up, and `flynn cluster restore` brings
// every app back serving, with its routes, and the rows in the databases,
// which the apps' old credentials still reach. A truncated backup is
// refused before anything changes.
func TestBackupRestore(t *testing.T) {
	repo := clusterRepo(t)
	script(t, repo, 5*time.Minute, "script/cluster", "down")
	script(t, repo, 25*time.Minute, "script/cluster", "up")
	downAtEnd(t, repo)
	ctx := t.Context()

	cli := newCLI(t, repo)
	api := controllerClient(cli.key)
	var dbURLs []string
	for i := range backupApps {
		name := "keep" + strconv.Itoa(i)
		app := deployWeb(t, api, repo, name, 1)
		if err := api.CreateRoute(ctx, app.ID, &controller.Route{Type: controller.RouteTypeHTTP, Service: name + "-web", Domain: name + "." + domain}); err != nil {
			t.Fatal(err)
		}
		if i < 2 {
			res, err := api.ProvisionResource(ctx, "postgres", &controller.ResourceRequest{Apps: []string{app.ID}})
			if err != nil {
				t.Fatal(err)
			}
			dbURLs = append(dbURLs, res.Env["DATABASE_URL"])
			execSQL(t, res.Env["DATABASE_URL"], `CREATE TABLE kept (v int); INSERT INTO kept SELECT generate_series(1, 1000)`)
		}
	}
	for i := range backupApps {
		name := "keep" + strconv.Itoa(i) + "." + domain
		poll.UntilNil(t, 2*time.Minute, name+" serves", func() error { return get("127.0.0.1", name) })
	}
	// A Redis server of keep2's, with keys in two databases, one of them
	// expiring in an hour.
	rres, err := api.ProvisionResource(ctx, "redis", &controller.ResourceRequest{Apps: []string{"keep2"}})
	if err != nil {
		t.Fatal(err)
	}
	redisURL := rres.Env["REDIS_URL"]
	poll.UntilNil(t, 2*time.Minute, "the Redis server takes writes", func() error {
		return redisDo(ctx, redisURL, [][]string{{"SET", "kept", "yes"}, {"SET", "brief", "x", "EX", "3600"}, {"SELECT", "3"}, {"HSET", "h", "f", "v"}})
	})

	file := filepath.Join(t.TempDir(), "backup.tar")
	began := time.Now()
	cli.run(t, "cluster", "backup", "-f", file)
	backupTook := time.Since(began)
	st, err := os.Stat(file)
	if err != nil {
		t.Fatal(err)
	}

	// A fresh cluster on the same machine: new keys, nothing of the old.
	script(t, repo, 5*time.Minute, "script/cluster", "down")
	script(t, repo, 25*time.Minute, "script/cluster", "up")
	cli = newCLI(t, repo)
	api = controllerClient(cli.key)

	truncated := filepath.Join(t.TempDir(), "truncated.tar")
	whole, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(truncated, whole[:len(whole)/2], 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := cli.try("cluster", "restore", "--yes", truncated); err == nil {
		t.Fatalf("restore of a truncated backup succeeded:\n%s", out)
	}
	if apps, err := api.Apps(ctx); err != nil || len(apps) == 0 {
		t.Fatalf("apps after the refused restore: %d, %v", len(apps), err)
	} else {
		for _, a := range apps {
			if !a.System {
				t.Errorf("app %s appeared after a refused restore", a.Name)
			}
		}
	}

	began = time.Now()
	out := cli.run(t, "cluster", "restore", "--yes", file)
	restoreTook := time.Since(began)
	t.Logf("restore:\n%s", out)
	for i := range backupApps {
		name := "keep" + strconv.Itoa(i) + "." + domain
		poll.UntilNil(t, 2*time.Minute, name+" serves after the restore", func() error { return get("127.0.0.1", name) })
	}
	serving := time.Since(began)
	for _, u := range dbURLs {
		var n int
		poll.UntilNil(t, time.Minute, "the rows are back", func() error {
			conn, err := pgx.Connect(ctx, viaRouter(t, u, "127.0.0.1"))
			if err != nil {
				return err
			}
			defer conn.Close(context.Background())
			return conn.QueryRow(ctx, `SELECT count(*) FROM kept`).Scan(&n)
		})
		if n != 1000 {
			t.Errorf("%d rows after the restore, want 1000", n)
		}
	}
	if strings.Contains(out, "not brought back") || strings.Contains(out, "back empty") {
		t.Errorf("the restore left a resource behind:\n%s", out)
	}
	poll.UntilNil(t, 2*time.Minute, "the Redis keys are back", func() error {
		return redisCheck(ctx, redisURL)
	})
	fmt.Printf("BENCH backup of %d apps (2 Postgres databases, 1 Redis): %s, %d KiB; restore %s, every app serving %s after it began\n",
		backupApps, backupTook.Round(time.Millisecond), st.Size()>>10, restoreTook.Round(time.Millisecond), serving.Round(time.Millisecond))
}

// flynnCLI is the flynn binary with a home of its own, added to the
// running cluster with its cluster-add line.
type flynnCLI struct {
	bin, home, key, clusterKey string
}

func newCLI(t *testing.T, repo string) *flynnCLI {
	t.Helper()
	ca := readClusterAdd(t, repo)
	c := &flynnCLI{bin: filepath.Join(repo, "bin/flynn"), home: t.TempDir(), key: ca.key, clusterKey: clusterKey(t)}
	cmd := exec.Command("bash", "-c", ca.line)
	cmd.Env = c.env()
	cmd.Dir = c.home
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", ca.line, err, out)
	}
	return c
}

func (c *flynnCLI) env() []string {
	return append(os.Environ(), "HOME="+c.home, "PATH="+filepath.Dir(c.bin)+":"+os.Getenv("PATH"), "FLYNN_CLUSTER=", "FLYNN_CLUSTER_KEY="+c.clusterKey)
}

// try runs flynn with args and returns its output.
func (c *flynnCLI) try(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, c.bin, args...)
	cmd.Env = c.env()
	cmd.Dir = c.home
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func (c *flynnCLI) run(t *testing.T, args ...string) string {
	t.Helper()
	out, err := c.try(args...)
	if err != nil {
		t.Fatalf("flynn %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// viaRouter points a DATABASE_URL at a node's router, where the cluster's
// domain would resolve to.
func viaRouter(t *testing.T, dsn, addr string) string {
	t.Helper()
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	u.Host = net.JoinHostPort(addr, u.Port())
	q := u.Query()
	q.Set("sslmode", "disable")
	q.Set("connect_timeout", "5")
	u.RawQuery = q.Encode()
	return u.String()
}

// execSQL runs sql on the database of dsn through node 1's router.
func execSQL(t *testing.T, dsn, sql string) {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), viaRouter(t, dsn, "127.0.0.1"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(t.Context(), sql); err != nil {
		t.Fatal(err)
	}
}

// redisDo sends cmds to the Redis server of REDIS_URL u through node 1's
// router, after AUTH, failing at the first error reply.
func redisDo(ctx context.Context, u string, cmds [][]string) error {
	_, err := redisReplies(ctx, u, cmds)
	return err
}

func redisReplies(ctx context.Context, u string, cmds [][]string) ([]any, error) {
	ru, err := url.Parse(u)
	if err != nil {
		return nil, err
	}
	password, _ := ru.User.Password()
	nc, err := (&net.Dialer{Timeout: 5 * time.Second}).DialContext(ctx, "tcp", net.JoinHostPort("127.0.0.1", ru.Port()))
	if err != nil {
		return nil, err
	}
	c := resp.NewConn(nc)
	defer c.Close()
	var out []any
	for _, cmd := range append([][]string{{"AUTH", password}}, cmds...) {
		r, err := c.Do(ctx, cmd...)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", cmd[0], err)
		}
		out = append(out, r)
	}
	return out[1:], nil
}

// redisCheck is nil once the keys redisDo set are back, the expiring one
// with most of its hour left.
func redisCheck(ctx context.Context, u string) error {
	r, err := redisReplies(ctx, u, [][]string{{"GET", "kept"}, {"TTL", "brief"}, {"SELECT", "3"}, {"HGET", "h", "f"}})
	if err != nil {
		return err
	}
	str := func(v any) string {
		b, _ := v.([]byte)
		return string(b)
	}
	ttl, _ := r[1].(int64)
	if str(r[0]) != "yes" || ttl < 3000 || ttl > 3600 || str(r[3]) != "v" {
		return fmt.Errorf("GET kept %q, TTL brief %v, HGET h f in db 3 %q", str(r[0]), r[1], str(r[3]))
	}
	return nil
}

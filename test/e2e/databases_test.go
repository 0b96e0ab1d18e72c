//go:build e2e

package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/openflynn/flynn/controller"
	"github.com/openflynn/flynn/pkg/poll"
)

// call sends method path to domain through the router and returns the
// status and the trimmed body.
func (u *user) call(method, domain, path string) (int, string, error) {
	req, err := http.NewRequest(method, "http://"+u.router+path, nil)
	if err != nil {
		return 0, "", err
	}
	req.Host = domain
	resp, err := (&http.Client{Timeout: 15 * time.Second}).Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(b)), nil
}

// mustCall is call that fails the test unless the answer is 200.
func (u *user) mustCall(method, domain, path string) string {
	u.t.Helper()
	status, body, err := u.call(method, domain, path)
	if err != nil || status != http.StatusOK {
		u.t.Fatalf("%s %s%s: %d %v %s", method, domain, path, status, err, body)
	}
	return body
}

// addResource runs `flynn resource add PROVIDER` and returns the resource.
func (u *user) addResource(dir, provider string) (*controller.Resource, time.Duration) {
	u.t.Helper()
	began := time.Now()
	out := u.flynn(dir, "resource", "add", "--json", provider)
	took := time.Since(began)
	var res controller.Resource
	if err := json.Unmarshal([]byte(out), &res); err != nil || res.ID == "" {
		u.t.Fatalf("resource add %s: %v\n%s", provider, err, out)
	}
	return &res, took
}

// TestDatabases is a developer's walk with the database appliances: a
// Postgres database of each of two apps' own, which the other cannot
// reach; `flynn pg dump` and `restore`; a Redis; `flynn resource list` and
// `remove`; and deleting an app deprovisions its database.
func TestDatabases(t *testing.T) {
	u := newUser(t)
	u.addCluster()
	u.flynn(u.home, "key", "add")
	for _, name := range []string{"dba", "dbb"} {
		// Left by an earlier run on this cluster, if any.
		_, _ = u.run(u.home, filepath.Join(u.bin, "flynn"), "-a", name, "delete", "--yes")
	}

	// The first app: a database before the first push, so the build's
	// release carries DATABASE_URL.
	a := u.appAs("dbapp", "dba")
	u.flynn(a, "create", "dba")
	resA, took := u.addResource(a, "postgres")
	fmt.Printf("BENCH resource add postgres: %s to a database the app can use\n", took.Round(time.Millisecond))
	for _, k := range []string{"DATABASE_URL", "PGHOST", "PGPORT", "PGUSER", "PGPASSWORD", "PGDATABASE"} {
		if resA.Env[k] == "" {
			t.Errorf("resource env lacks %s: %v", k, keys(resA.Env))
		}
	}
	if got := strings.TrimSpace(u.flynn(a, "env", "get", "DATABASE_URL")); got != resA.Env["DATABASE_URL"] {
		t.Errorf("the app's DATABASE_URL is not the resource's")
	}
	u.push(a)
	domainA := "dba." + u.domain
	poll.Until(t, time.Minute, "dba serves", func() bool {
		status, body, err := u.call("GET", domainA, "/")
		return err == nil && status == 200 && strings.Contains(body, "postgres=true")
	})
	for v := 1; v <= 50; v++ {
		u.mustCall("POST", domainA, "/items?v="+strconv.Itoa(v))
	}
	if got := u.mustCall("GET", domainA, "/items"); got != "50 50" {
		t.Fatalf("items after 50 writes: %q, want \"50 50\"", got)
	}

	// The second app, its database added after a push: a new release.
	b := u.appAs("dbapp", "dbb")
	u.flynn(b, "create", "dbb")
	u.push(b)
	domainB := "dbb." + u.domain
	resB, _ := u.addResource(b, "postgres")
	// Until the release before the database has no job left, the router
	// may still send a request to it.
	poll.Until(t, time.Minute, "dbb serves with its database, from its new release's job alone", func() bool {
		if strings.Count(u.flynn(b, "ps"), " web ") != 1 {
			return false
		}
		status, body, err := u.call("GET", domainB, "/")
		return err == nil && status == 200 && strings.Contains(body, "postgres=true")
	})

	t.Run("one app cannot reach another's database", func(t *testing.T) {
		if got := u.mustCall("GET", domainB, "/try?db="+resB.Env["PGDATABASE"]); got != "connected" {
			t.Fatalf("dbb to its own database: %s", got)
		}
		got := u.mustCall("GET", domainB, "/try?db="+resA.Env["PGDATABASE"])
		if !strings.HasPrefix(got, "refused") {
			t.Errorf("dbb to dba's database: %s", got)
		}
		for _, db := range []string{"controller", "blobstore", "postgres"} {
			if got := u.mustCall("GET", domainB, "/try?db="+db); !strings.HasPrefix(got, "refused") {
				t.Errorf("dbb to the platform's database %s: %s", db, got)
			}
		}
	})

	t.Run("pg dump and restore", func(t *testing.T) {
		dump := filepath.Join(u.home, "dba.dump")
		u.flynn(a, "pg", "dump", "-f", dump)
		st, err := os.Stat(dump)
		if err != nil || st.Size() == 0 {
			t.Fatalf("dump file: %v", err)
		}
		u.flynn(a, "pg", "psql", "--", "-c", "DELETE FROM items")
		if got := u.mustCall("GET", domainA, "/items"); got != "0 0" {
			t.Fatalf("items after DELETE: %q", got)
		}
		u.flynn(a, "pg", "restore", "--yes", "-f", dump)
		if got := u.mustCall("GET", domainA, "/items"); got != "50 50" {
			t.Errorf("items after restore: %q, want \"50 50\"", got)
		}
		// A file that is no dump is refused before anything changes.
		junk := filepath.Join(u.home, "junk.dump")
		if err := os.WriteFile(junk, []byte("not a dump"), 0o600); err != nil {
			t.Fatal(err)
		}
		if out, err := u.run(a, filepath.Join(u.bin, "flynn"), "pg", "restore", "--yes", "-f", junk); err == nil {
			t.Errorf("restore of junk succeeded:\n%s", out)
		}
		if got := u.mustCall("GET", domainA, "/items"); got != "50 50" {
			t.Errorf("items after a refused restore: %q", got)
		}
	})

	t.Run("redis", func(t *testing.T) {
		res, took := u.addResource(b, "redis")
		t.Logf("resource add redis: %s", took.Round(time.Millisecond))
		if !strings.HasPrefix(res.Env["REDIS_URL"], "redis://:") {
			t.Fatalf("REDIS_URL %q", res.Env["REDIS_URL"])
		}
		poll.Until(t, 2*time.Minute, "dbb reaches its redis", func() bool {
			status, body, err := u.call("GET", domainB, "/redis?k=walk")
			return err == nil && status == 200 && body == "v-walk"
		})
	})

	t.Run("deleting an app drops its database", func(t *testing.T) {
		before := u.mustCall("GET", domainB, "/try?db="+resA.Env["PGDATABASE"])
		u.flynn(a, "delete", "--yes")
		// dbb is refused either way; what changes is why: the database
		// is gone.
		poll.Until(t, 30*time.Second, "dba's database dropped", func() bool {
			_, body, err := u.call("GET", domainB, "/try?db="+resA.Env["PGDATABASE"])
			return err == nil && strings.Contains(body, "does not exist")
		})
		if strings.Contains(before, "does not exist") {
			t.Errorf("dba's database did not exist before dba was deleted: %s", before)
		}
	})

	t.Run("resource list and remove", func(t *testing.T) {
		list := u.flynn(b, "resource", "list")
		if !strings.Contains(list, resB.ID) || !strings.Contains(list, "postgres") || !strings.Contains(list, "redis") {
			t.Errorf("resource list lacks dbb's resources:\n%s", list)
		}
		if strings.Contains(list, resB.Env["PGPASSWORD"]) {
			t.Errorf("resource list shows a password:\n%s", list)
		}
		u.flynn(b, "resource", "remove", "--yes", resB.ID)
		if env := u.flynn(b, "env"); strings.Contains(env, "DATABASE_URL") {
			t.Errorf("dbb's env still has DATABASE_URL after the resource was removed:\n%s", env)
		}
	})

	t.Run("an unknown provider is named with the known ones", func(t *testing.T) {
		out, err := u.run(b, filepath.Join(u.bin, "flynn"), "resource", "add", "mysql")
		if err == nil || !strings.Contains(out, "postgres") || !strings.Contains(out, "redis") {
			t.Errorf("resource add mysql: %v\n%s", err, out)
		}
	})

}

func keys(m map[string]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

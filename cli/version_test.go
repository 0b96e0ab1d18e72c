package cli

import (
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/openflynn/flynn/cli/config"
	"github.com/openflynn/flynn/pkg/version"
)

func TestVersion(t *testing.T) {
	h := newHarness(t)
	want := "flynn v-test\ncluster: " + version.String() + " (test at " + h.url + ")\n"
	for _, args := range [][]string{{"version"}, {"--version"}, {"-v"}} {
		if out := h.ok(args...); out != want {
			t.Errorf("flynn %s printed %q, want %q", args[0], out, want)
		}
	}
}

// useCluster makes the harness's configuration one cluster, called name,
// at url.
func useCluster(t *testing.T, h *harness, name, url string) {
	t.Helper()
	f := &config.File{}
	if err := f.Add(&config.Cluster{Name: name, Domain: "example.test", ControllerURL: url, Key: testKey, GitHost: "127.0.0.1:2222"}); err != nil {
		t.Fatal(err)
	}
	if err := f.Save(h.env.ConfigPath); err != nil {
		t.Fatal(err)
	}
}

// closedURL is the URL of a local port nothing listens on.
func closedURL(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + l.Addr().String()
	l.Close()
	return url
}

func TestVersionUnreachable(t *testing.T) {
	h := &harness{t: t, env: Env{ConfigPath: t.TempDir() + "/.flynnrc", Version: "v1.2.3"}}
	down := closedURL(t)
	useCluster(t, h, "down", down)
	if out := h.ok("version"); out != "flynn v1.2.3\ncluster: unreachable (down at "+down+": connection refused)\n" {
		t.Errorf("version of a cluster that is down printed %q", out)
	}

	// One that does not answer: cut short after 3s.
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() }))
	defer slow.Close()
	useCluster(t, h, "slow", slow.URL)
	began := time.Now()
	if out := h.ok("version"); out != "flynn v1.2.3\ncluster: unreachable (slow at "+slow.URL+": no answer within 3s)\n" {
		t.Errorf("version of a cluster that does not answer printed %q", out)
	}
	if took := time.Since(began); took > 10*time.Second {
		t.Errorf("version took %s", took)
	}

	// A controller older than GET /status.
	old := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusNotFound)
		_, _ = w.Write([]byte(`{"code":"not_found","message":"not found"}`))
	}))
	defer old.Close()
	useCluster(t, h, "old", old.URL)
	if out := h.ok("version"); !strings.HasPrefix(out, "flynn v1.2.3\ncluster: unknown, older than GET /status (old at ") {
		t.Errorf("version of an old controller printed %q", out)
	}
}

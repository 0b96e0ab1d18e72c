package hostcli

import (
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/openflynn/flynn/discoverd"
	"github.com/openflynn/flynn/host"
	"github.com/openflynn/flynn/pkg/authkey"
	"github.com/openflynn/flynn/pkg/httpjson"
)

// fakeCluster is a discoverd listing hosts: two that answer (their
// status from a fake host API each) and one whose API is gone.
type fakeCluster struct {
	discoverd string // URL
	hosts     []string
}

func newFakeCluster(t *testing.T) *fakeCluster {
	t.Helper()
	statusHost := func(id string, jobs map[host.JobState]int) string {
		mux := http.NewServeMux()
		mux.HandleFunc("GET /host/status", func(w http.ResponseWriter, _ *http.Request) {
			httpjson.Write(w, http.StatusOK, &host.HostStatus{ID: id, Jobs: jobs})
		})
		srv := httptest.NewServer(authkey.Require(testKey, mux))
		t.Cleanup(srv.Close)
		return strings.TrimPrefix(srv.URL, "http://")
	}
	// A port nothing listens on any more.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gone := ln.Addr().String()
	ln.Close()
	insts := []*discoverd.Instance{
		{ID: "b", Addr: statusHost("node-2", map[host.JobState]int{host.StateUp: 3, host.StateStarting: 1, host.StateCrashed: 2}), Meta: map[string]string{"id": "node-2"}},
		{ID: "c", Addr: gone, Meta: map[string]string{"id": "node-3"}},
		{ID: "a", Addr: statusHost("local", nil), Meta: map[string]string{"id": "local"}},
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /services/flynn-host/instances", func(w http.ResponseWriter, _ *http.Request) {
		httpjson.Write(w, http.StatusOK, insts)
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	fc := &fakeCluster{discoverd: srv.URL}
	for _, in := range insts {
		fc.hosts = append(fc.hosts, in.Addr)
	}
	return fc
}

func TestList(t *testing.T) {
	fc := newFakeCluster(t)
	h := newFakeHost(t)
	// The first discoverd does not answer: the next one does.
	res := h.run(t, Env{}, "list", "--discoverd-url", "http://127.0.0.1:1,"+fc.discoverd)
	if res.code != 0 || res.stderr != "" {
		t.Fatalf("exit %d, stderr %q", res.code, res.stderr)
	}
	// Addresses are the fake hosts' (random ports, all on 127.0.0.1).
	golden(t, "list", res.stdout)
}

func TestListJSON(t *testing.T) {
	fc := newFakeCluster(t)
	h := newFakeHost(t)
	res := h.run(t, Env{}, "list", "--json", "--discoverd-url", fc.discoverd)
	if res.code != 0 {
		t.Fatalf("exit %d, stderr %q", res.code, res.stderr)
	}
	var got []node
	if err := json.Unmarshal([]byte(res.stdout), &got); err != nil {
		t.Fatalf("%v in %s", err, res.stdout)
	}
	if len(got) != 3 {
		t.Fatalf("%d nodes, want 3: %s", len(got), res.stdout)
	}
	want := []struct {
		id, status string
		up         int
	}{{"local", "up", 0}, {"node-2", "up", 3}, {"node-3", "unreachable", 0}}
	for i, w := range want {
		n := got[i]
		if n.ID != w.id || n.Status != w.status || n.Jobs[host.StateUp] != w.up || n.Addr != "127.0.0.1" || !strings.HasPrefix(n.URL, "http://127.0.0.1:") {
			t.Errorf("node %d = %+v, want %s %s with %d up", i, n, w.id, w.status, w.up)
		}
	}
	if got[2].Error == "" {
		t.Error("unreachable node without its error")
	}
}

func TestListWithoutDiscoverd(t *testing.T) {
	h := newFakeHost(t)
	res := h.run(t, Env{}, "list", "--discoverd-url", "http://127.0.0.1:1")
	if res.code != 1 || !strings.Contains(res.stderr, "list hosts") {
		t.Fatalf("exit %d, stderr %q; want exit 1 saying it could not list the hosts", res.code, res.stderr)
	}
}

func TestNodeDiscoverd(t *testing.T) {
	tests := []struct{ hostURL, want, wantErr string }{
		{hostURL: "http://127.0.0.2:1113", want: "http://127.0.0.2:1111"},
		{hostURL: "http://[fd00::2]:1113/", want: "http://[fd00::2]:1111"},
		{hostURL: "10.0.0.1:1113", wantErr: "names no host"},
	}
	for _, tt := range tests {
		got, err := nodeDiscoverd(tt.hostURL)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("nodeDiscoverd(%q) = %q, %v; want an error with %q", tt.hostURL, got, err, tt.wantErr)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("nodeDiscoverd(%q) = %q, %v; want %q", tt.hostURL, got, err, tt.want)
		}
	}
}

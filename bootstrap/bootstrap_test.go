package bootstrap

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/openflynn/flynn/controller"
	"github.com/openflynn/flynn/host"
	"github.com/openflynn/flynn/pkg/tlspin"
)

var testImages = map[string]string{
	"discoverd": "flynn/discoverd:1", "postgres": "flynn/postgres:1", "controller": "flynn/controller:1",
	"scheduler": "flynn/scheduler:1", "blobstore": "flynn/blobstore:1", "router": "flynn/router:1",
	"gitreceive": "flynn/gitreceive:1", "slugbuilder": "flynn/slugbuilder:1", "slugrunner": "flynn/slugrunner:1",
	"slugbuilder-trixie": "flynn/slugbuilder-trixie:1", "slugrunner-trixie": "flynn/slugrunner-trixie:1",
	"postgres-api": "flynn/postgres-api:1", "redis": "flynn/redis:1", "redis-api": "flynn/redis-api:1",
	"logaggregator": "flynn/logaggregator:1", "dashboard": "flynn/dashboard:1",
}

// harness runs manifests against fakes; its one HTTP server answers the
// wait steps' checks as the controller (401 on /apps) and the router (200
// on /health), whatever discoverd name they ask for.
type harness struct {
	host *fakeHost
	ctrl *fakeController
	out  bytes.Buffer
	cfg  Config
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case !strings.HasSuffix(r.Host, ".discoverd"):
			http.Error(w, "not asked by discoverd name: "+r.Host, http.StatusBadGateway)
		case r.URL.Path == "/apps":
			w.WriteHeader(http.StatusUnauthorized)
		case r.URL.Path == "/health":
			w.WriteHeader(http.StatusOK)
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	h := &harness{host: &fakeHost{}, ctrl: newFakeController()}
	// Every discoverd name leads to the one server, as fakeDiscoverd
	// answers every service with it.
	tp := &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, srv.Listener.Addr().String())
	}}
	t.Cleanup(tp.CloseIdleConnections)
	h.cfg = Config{
		Host:      h.host,
		Discoverd: fakeDiscoverd{addr: strings.TrimPrefix(srv.URL, "http://")},
		NewController: func(url, key string) Controller {
			h.ctrl.url, h.ctrl.key = url, key
			return h.ctrl
		},
		HTTPClient:   &http.Client{Transport: tp},
		Images:       testImages,
		ClusterKey:   "the-cluster-key",
		Out:          &h.out,
		WaitTimeout:  5 * time.Second,
		PollInterval: 10 * time.Millisecond,
	}
	return h
}

func readTestManifest(t *testing.T) *Manifest {
	t.Helper()
	m, err := ReadManifest("manifest.json")
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func (h *harness) run(t *testing.T, m *Manifest) (*Result, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return Run(ctx, h.cfg, m, slog.New(slog.DiscardHandler))
}

// TestManifestRunsInOrder runs the shipped manifest and checks the printed
// sequence against the one docs/architecture.md gives.
func TestManifestRunsInOrder(t *testing.T) {
	h := newHarness(t)
	res, err := h.run(t, readTestManifest(t))
	if err != nil {
		t.Fatalf("run: %v\n%s", err, h.out.String())
	}
	want := []string{
		"run-app discoverd", "gen-random postgres-password", "gen-random postgres-replication-password", "run-app postgres", "gen-random controller-key",
		"wait postgres-wait", "run-app controller", "wait controller-wait", "add-app controller-inception",
		"scale-app scheduler-scale", "run-app scheduler", "deploy-app logaggregator", "deploy-app blobstore", "gen-random router-sticky-key", "deploy-app router",
		"gen-ssh-key gitreceive-key", "deploy-app gitreceive",
		"gen-random dashboard-session-secret", "deploy-app dashboard", "gen-tls-cert controller-cert",
		"wait router-wait", "add-route gitreceive-route", "add-route controller-route", "add-route dashboard-route", "add-route blobstore-route",
		"gen-random postgres-api-key", "deploy-app postgres-api", "add-route postgres-route", "wait postgres-api-wait", "add-provider postgres-provider",
		"deploy-app redis", "gen-random redis-api-key", "deploy-app redis-api", "add-provider redis-provider",
		"add-api-key admin-key",
		"join join", "cluster-add cluster-add",
	}
	lines := strings.Split(strings.TrimSpace(h.out.String()), "\n")
	if len(lines) != len(want)+2 {
		t.Fatalf("got %d lines, want %d:\n%s", len(lines), len(want)+2, h.out.String())
	}
	stamp := regexp.MustCompile(`^\d\d:\d\d:\d\d\.\d{6} `)
	for i, w := range want {
		if !stamp.MatchString(lines[i]) {
			t.Errorf("line %d %q: want a HH:MM:SS.micro time first", i, lines[i])
			continue
		}
		if got := lines[i][16:]; !strings.HasPrefix(got+" ", w+" ") {
			t.Errorf("line %d = %q, want %q", i, got, w)
		}
	}
	if join := lines[len(lines)-2]; join != res.Join {
		t.Errorf("line before last %q, want the join line %q", join, res.Join)
	}
	if last := lines[len(lines)-1]; last != res.ClusterAdd {
		t.Errorf("last line %q, want the cluster-add line %q", last, res.ClusterAdd)
	}
}

// TestRunAppJobsAreAdoptable checks the invariant the scheduler's adoption
// rests on: every job bootstrap started carries the app, release and type
// of a formation the controller holds.
func TestRunAppJobsAreAdoptable(t *testing.T) {
	h := newHarness(t)
	if _, err := h.run(t, readTestManifest(t)); err != nil {
		t.Fatal(err)
	}
	type key struct{ app, release, typ string }
	want := map[key]int{}
	for _, f := range h.ctrl.formations {
		for typ, n := range f.Processes {
			want[key{f.AppID, f.ReleaseID, typ}] = n
		}
		if h.ctrl.appRelease[f.AppID] != f.ReleaseID {
			t.Errorf("app %s: current release %s, formation's %s", f.AppID, h.ctrl.appRelease[f.AppID], f.ReleaseID)
		}
	}
	jobs, _ := h.host.ListJobs(context.Background())
	names := map[string]bool{}
	for _, j := range jobs {
		m := j.Job.Metadata
		k := key{m[controller.JobMetaAppID], m[controller.JobMetaReleaseID], m[controller.JobMetaType]}
		if want[k] < 1 {
			t.Errorf("job %s (%s) matches no formation", j.Job.ID, m[controller.JobMetaAppName])
		}
		names[m[controller.JobMetaAppName]] = true
	}
	for _, n := range []string{"discoverd", "postgres", "controller", "scheduler"} {
		if !names[n] {
			t.Errorf("no job of %s started by bootstrap", n)
		}
	}
	if len(jobs) != 4 {
		t.Errorf("bootstrap started %d jobs, want 4 (the others are the scheduler's)", len(jobs))
	}
	if len(h.ctrl.formations) != 12 {
		t.Errorf("%d formations, want 12 (every component and appliance)", len(h.ctrl.formations))
	}
	for _, a := range h.ctrl.apps {
		if !a.System {
			t.Errorf("app %s was created as an ordinary app, want a system app", a.Name)
		}
	}
	for _, j := range jobs {
		if j.Job.Metadata[controller.JobMetaAppName] == "postgres" {
			if len(j.Job.Config.Mounts) != 1 || j.Job.Config.Mounts[0].Source != "postgres-data" {
				t.Errorf("postgres mounts = %+v, want the postgres-data volume", j.Job.Config.Mounts)
			}
		}
	}
}

// TestClusterAddLine checks the printed line against what was generated:
// the pin of the certificate the controller route serves, gitreceive's
// host key, and the admin API key on stdin, not the controller key in an
// argument.
func TestClusterAddLine(t *testing.T) {
	h := newHarness(t)
	res, err := h.run(t, readTestManifest(t))
	if err != nil {
		t.Fatal(err)
	}
	var cert *controller.Certificate
	for _, rs := range h.ctrl.routes {
		for _, r := range rs {
			if r.Domain == "controller.flynn.test" {
				cert = r.Certificate
			}
		}
	}
	if cert == nil {
		t.Fatal("no route for controller.flynn.test")
	}
	block, _ := pem.Decode([]byte(cert.Cert))
	if block == nil {
		t.Fatal("route certificate is not PEM")
	}
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.VerifyHostname("controller.flynn.test"); err != nil {
		t.Errorf("certificate: %v", err)
	}
	// The git host key is the public half of the key gitreceive runs with,
	// so the CLI can put it in known_hosts and the first push is verified.
	var hostKey string
	for _, rel := range h.ctrl.releases {
		if pemKey := rel.Env["FLYNN_SSH_HOST_KEY"]; pemKey != "" {
			signer, err := ssh.ParsePrivateKey([]byte(pemKey))
			if err != nil {
				t.Fatalf("gitreceive's host key: %v", err)
			}
			hostKey = strings.TrimSpace(string(ssh.MarshalAuthorizedKey(signer.PublicKey())))
		}
	}
	if hostKey == "" {
		t.Fatal("no release gives gitreceive a host key")
	}
	want := "flynn cluster add -p " + tlspin.Pin(block.Bytes) + " -g 127.0.0.1:2222 --git-host-key '" + hostKey + "' --controller-addr 127.0.0.1:443 default flynn.test - <<<secret-of-admin"
	if res.ClusterAdd != want {
		t.Errorf("cluster add line\n got %s\nwant %s", res.ClusterAdd, want)
	}
	if h.ctrl.key != "the-cluster-key" {
		t.Errorf("controller key = %q, want the cluster key", h.ctrl.key)
	}
	if h.ctrl.url != "http://controller.discoverd" {
		t.Errorf("controller URL = %q, want the controller service by name", h.ctrl.url)
	}
}

func TestGeneratedKeyWithoutClusterKey(t *testing.T) {
	h := newHarness(t)
	h.cfg.ClusterKey = ""
	if _, err := h.run(t, readTestManifest(t)); err != nil {
		t.Fatal(err)
	}
	if len(h.ctrl.key) != 32 {
		t.Errorf("controller key %q: want 32 generated hex digits", h.ctrl.key)
	}
}

func TestBootstrappedHostIsLeftAlone(t *testing.T) {
	h := newHarness(t)
	m := readTestManifest(t)
	if _, err := h.run(t, m); err != nil {
		t.Fatal(err)
	}
	before, _ := h.host.ListJobs(context.Background())
	_, err := h.run(t, m)
	if !errors.Is(err, ErrBootstrapped) {
		t.Fatalf("second run: err = %v, want ErrBootstrapped", err)
	}
	after, _ := h.host.ListJobs(context.Background())
	if len(after) != len(before) || len(h.host.stopped) != 0 {
		t.Errorf("second run changed the host: %d jobs before, %d after, %d stopped", len(before), len(after), len(h.host.stopped))
	}
}

func TestForceTearsDownSchedulerFirst(t *testing.T) {
	h := newHarness(t)
	m := readTestManifest(t)
	if _, err := h.run(t, m); err != nil {
		t.Fatal(err)
	}
	var removed []string
	h.cfg.Force = true
	h.cfg.RemoveVolume = func(name string) error { removed = append(removed, name); return nil }
	h.ctrl = newFakeController()
	if _, err := h.run(t, m); err != nil {
		t.Fatalf("forced run: %v", err)
	}
	if len(h.host.stopped) != 4 {
		t.Fatalf("stopped %d jobs, want the 4 of the first run", len(h.host.stopped))
	}
	jobs, _ := h.host.ListJobs(context.Background())
	for _, j := range jobs {
		if j.Job.ID == h.host.stopped[0] && j.Job.Metadata[controller.JobMetaAppName] != "scheduler" {
			t.Errorf("first job stopped is %s, want the scheduler", j.Job.Metadata[controller.JobMetaAppName])
		}
	}
	if strings.Join(removed, ",") != "discoverd-data,postgres-data" {
		t.Errorf("removed volumes %v, want discoverd-data and postgres-data", removed)
	}
}

func TestFailingStepStopsTheRun(t *testing.T) {
	tests := []struct {
		name    string
		setup   func(*harness, *Manifest)
		wantID  string
		wantErr string
	}{
		{
			name:    "controller refuses",
			setup:   func(h *harness, _ *Manifest) { h.ctrl.failCreate = errors.New("database is down") },
			wantID:  "controller-inception",
			wantErr: "database is down",
		},
		{
			name:    "image missing",
			setup:   func(h *harness, _ *Manifest) { delete(h.cfg.Images, "router") },
			wantID:  "router",
			wantErr: `no image "router"`,
		},
		{
			name: "wait times out",
			setup: func(h *harness, m *Manifest) {
				m.Steps[stepIndex(t, m, "postgres-wait")].Raw = []byte(`{"id":"postgres-wait","action":"wait","service":"postgres","path":"/x","status":200,"timeout":"50ms"}`)
			},
			wantID:  "postgres-wait",
			wantErr: "postgres not ready: gave up after 50ms",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			h.cfg.Images = map[string]string{}
			for k, v := range testImages {
				h.cfg.Images[k] = v
			}
			m := readTestManifest(t)
			tt.setup(h, m)
			_, err := h.run(t, m)
			var se *StepError
			if !errors.As(err, &se) {
				t.Fatalf("err = %v, want a *StepError", err)
			}
			if se.ID != tt.wantID || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("err = %v, want step %s and %q", err, tt.wantID, tt.wantErr)
			}
			if strings.Contains(h.out.String(), " "+tt.wantID+" ") {
				t.Errorf("the failed step was printed as done:\n%s", h.out.String())
			}
		})
	}
}

func TestParseManifestErrors(t *testing.T) {
	tests := []struct {
		name, json, want string
	}{
		{"no steps", `{"steps":[]}`, "no steps"},
		{"unknown action", `{"steps":[{"id":"a","action":"fly"}]}`, `step a: unknown action "fly"`},
		{"duplicate id", `{"steps":[{"id":"a","action":"gen-random"},{"id":"a","action":"gen-random"}]}`, "step a: id used twice"},
		{"bad id", `{"steps":[{"id":"A B","action":"gen-random"}]}`, `id "A B"`},
		{"unknown field", `{"steps":[{"id":"k","action":"gen-random","lenght":3}]}`, `step k (gen-random): json: unknown field "lenght"`},
		{"unknown top field", `{"stepz":[]}`, `unknown field "stepz"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseManifest([]byte(tt.json))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want %q", err, tt.want)
			}
		})
	}
}

func TestExpand(t *testing.T) {
	vals := map[string]string{"a": "x\"y\nz", "b.c": "2"}
	got, err := expand([]byte(`{"s":"{{a}}-{{ b.c }}","l":["{{b.c}}",3]}`), vals)
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"l":["2",3],"s":"x\"y\nz-2"}`; string(got) != want {
		t.Errorf("got %s, want %s", got, want)
	}
	_, err = expand([]byte(`{"s":"{{nope}}"}`), vals)
	if err == nil || !strings.Contains(err.Error(), "unknown value nope") {
		t.Errorf("err = %v, want unknown value nope", err)
	}
}

func TestRunAppVolumesComeFromTheRelease(t *testing.T) {
	h := newHarness(t)
	m, err := ParseManifest([]byte(`{"steps":[{"id":"x","action":"run-app","app":{"name":"x"},"image":"router",
		"release":{"processes":{"app":{"volumes":[{"name":"v","target":"/v"}]}}},"processes":{"app":1}}]}`))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.run(t, m); err != nil {
		t.Fatal(err)
	}
	jobs, _ := h.host.ListJobs(context.Background())
	if len(jobs) != 1 {
		t.Fatalf("%d jobs started, want 1", len(jobs))
	}
	mounts := jobs[0].Job.Config.Mounts
	if len(mounts) != 1 || mounts[0].Source != "v" || mounts[0].Target != "/v" || mounts[0].MountType() != host.MountVolume {
		t.Errorf("mounts = %+v, want the release's volume v at /v", mounts)
	}
	// The old place for volumes, beside the release, is refused.
	_, err = ParseManifest([]byte(`{"steps":[{"id":"x","action":"run-app","app":{"name":"x"},"image":"router",
		"release":{"processes":{"app":{}}},"processes":{"app":1},"volumes":{"app":[{"source":"v","target":"/v"}]}}]}`))
	if err == nil || !strings.Contains(err.Error(), "volumes") {
		t.Errorf("manifest with run-app volumes: err = %v, want unknown field volumes", err)
	}
}

// stepIndex returns the index of the manifest's step id.
func stepIndex(t *testing.T, m *Manifest, id string) int {
	t.Helper()
	for i, s := range m.Steps {
		if s.ID == id {
			return i
		}
	}
	t.Fatalf("the manifest has no step %s", id)
	return -1
}

func TestImageValues(t *testing.T) {
	tests := []struct {
		name             string
		images           map[string]string
		builder, runner  string
		wantImageEntries int
	}{
		{"every stack", map[string]string{"slugbuilder": "b:1", "slugrunner": "r:1", "slugbuilder-trixie": "bt:1", "slugrunner-trixie": "rt:1"},
			"flynn-trixie=bt:1", "flynn-trixie=rt:1", 4},
		{"built later", map[string]string{"slugbuilder": "b:1", "slugrunner": "r:1"}, "", "", 2},
		{"half a stack", map[string]string{"slugbuilder": "b:1", "slugrunner": "r:1", "slugbuilder-trixie": "bt:1"}, "", "", 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := imageValues(tt.images)
			if v["stacks.slugbuilder"] != tt.builder || v["stacks.slugrunner"] != tt.runner {
				t.Errorf("stacks = %q, %q; want %q, %q", v["stacks.slugbuilder"], v["stacks.slugrunner"], tt.builder, tt.runner)
			}
			if len(v) != tt.wantImageEntries+2 || v["image.slugbuilder"] != "b:1" {
				t.Errorf("values %v, want image.KEY for each of %v and the two stacks values", v, tt.images)
			}
		})
	}
}

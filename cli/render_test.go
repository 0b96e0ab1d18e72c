package cli

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/openflynn/flynn/cli/config"
	"github.com/openflynn/flynn/controller"
	"github.com/openflynn/flynn/host"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden with the current output")

// golden compares got with testdata/name.golden.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./cli -run TestGolden -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs:\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}

// Fixtures: fixed ids and times, so the tables are the same every run.
var (
	goldenNow = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	ago       = func(d time.Duration) time.Time { return goldenNow.Add(-d) }
	exitOne   = 1
	started   = ago(90 * time.Second)

	fixtureApp = &controller.App{ID: "7d3e0f5a-1c2b-4a5d-9e8f-0a1b2c3d4e5f", Name: "example", ReleaseID: "rel-3", CreatedAt: ago(72 * time.Hour)}
	fixtureRel = &controller.Release{
		ID: "rel-3", AppID: fixtureApp.ID, Version: 3, ArtifactID: "art-1",
		Env: map[string]string{"SLUG_URL": "http://blobstore.discoverd/example.tgz", "RAILS_ENV": "production"},
		Processes: map[string]controller.ProcessType{
			"web":    {Cmd: []string{"bundle", "exec", "puma"}, Service: "example-web"},
			"worker": {Cmd: []string{"bundle", "exec", "sidekiq"}},
		},
		CreatedAt: ago(5 * time.Minute),
	}
	fixtureRoutes = []*controller.Route{
		{ID: "route-1", Type: "http", Service: "example-web", Domain: "example.dev.localflynn.com", Path: "/"},
		{ID: "route-2", Type: "http", Service: "example-web", Domain: "secure.example.com", Path: "/api", Sticky: true, Certificate: &controller.Certificate{Cert: "c", Key: "k"}},
		{ID: "route-3", Type: "tcp", Service: "example-db", Port: 5432, NoRequestLog: true},
	}
)

func TestGolden(t *testing.T) {
	tests := []struct {
		name   string
		render func(*bytes.Buffer) error
	}{
		{"clusters", func(w *bytes.Buffer) error {
			return renderClusters(w, &config.File{Default: "default", Clusters: []*config.Cluster{
				{Name: "default", Domain: "dev.localflynn.com", ControllerURL: "https://controller.dev.localflynn.com", ControllerAddr: "127.0.0.1:443", GitHost: "127.0.0.1:2222"},
				{Name: "staging", Domain: "staging.example.com", ControllerURL: "https://controller.staging.example.com", GitHost: "staging.example.com:2222"},
			}})
		}},
		{"keys", func(w *bytes.Buffer) error {
			return renderKeys(w, goldenNow, []*controller.Key{
				{ID: "k1", Fingerprint: "SHA256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU", Comment: "me@laptop", CreatedAt: ago(30 * time.Second)},
				{ID: "k2", Fingerprint: "SHA256:uNiVztksCsDhcc0u9e8BujQXVUpKZIDTMczCvj3tD2s", CreatedAt: ago(400 * 24 * time.Hour)},
			})
		}},
		{"apps", func(w *bytes.Buffer) error {
			return renderApps(w, goldenNow, []*controller.App{
				fixtureApp,
				{ID: "0f1e2d3c-4b5a-6978-8a9b-acbdcedf0011", Name: "controller", CreatedAt: ago(3 * time.Hour)},
			})
		}},
		{"info", func(w *bytes.Buffer) error {
			return renderInfo(w, goldenNow, &appInfo{App: fixtureApp, Release: fixtureRel, Processes: map[string]int{"web": 3}, Routes: fixtureRoutes, GitURL: "ssh://git@127.0.0.1:2222/example.git"})
		}},
		{"info-new-app", func(w *bytes.Buffer) error {
			app := *fixtureApp
			app.ReleaseID = ""
			return renderInfo(w, goldenNow, &appInfo{App: &app, GitURL: "ssh://git@127.0.0.1:2222/example.git"})
		}},
		{"ps", func(w *bytes.Buffer) error {
			return renderJobs(w, goldenNow, []*controller.Job{
				{ID: "host1-aaaaaaaa-0000-0000-0000-000000000001", HostID: "host1", Type: "web", State: "up", ReleaseID: "rel-3", StartedAt: &started, CreatedAt: ago(2 * time.Minute),
					Stats: &host.JobStats{CPUPercent: 12.46, MemoryBytes: 47395635, MemoryLimitBytes: 256 << 20}},
				{ID: "host1-bbbbbbbb-0000-0000-0000-000000000002", HostID: "host1", Type: "worker", State: "starting", ReleaseID: "rel-3", CreatedAt: ago(4 * time.Second)},
				{ID: "host2-cccccccc-0000-0000-0000-000000000003", State: "crashed", ExitStatus: &exitOne, ReleaseID: "rel-2", Args: []string{"rake", "db:migrate"}, CreatedAt: ago(26 * time.Hour)},
			}, map[string]int{"rel-3": 3, "rel-2": 2})
		}},
		{"hosts", func(w *bytes.Buffer) error {
			return renderHosts(w, []*controller.Host{
				{ID: "node1", Addr: "10.0.0.1", Status: controller.HostUp, Jobs: 12},
				{ID: "node2", Addr: "10.0.0.2", Status: controller.HostUp},
				{ID: "node3", Addr: "10.0.0.3", Status: controller.HostUnreachable, Error: "dial tcp 10.0.0.3:1113: i/o timeout"},
			})
		}},
		{"releases", func(w *bytes.Buffer) error {
			return renderReleases(w, goldenNow, []*controller.Release{
				{ID: "rel-1", Version: 1, CreatedAt: ago(50 * time.Hour)},
				{ID: "rel-2", Version: 2, Env: map[string]string{"A": "1"}, Processes: fixtureRel.Processes, CreatedAt: ago(2 * time.Hour)},
				fixtureRel,
			}, "rel-3")
		}},
		{"release-show", func(w *bytes.Buffer) error {
			return renderRelease(w, goldenNow, fixtureRel, &controller.Artifact{ID: "art-1", URI: "flynn/slugrunner:4f2a"}, true)
		}},
		{"routes", func(w *bytes.Buffer) error { return renderRoutes(w, fixtureRoutes) }},
		{"api-keys", func(w *bytes.Buffer) error {
			return renderAPIKeys(w, goldenNow, []*controller.APIKey{
				{ID: "5b0a5f4e-9f3c-4d2a-8b1e-0c6f2d3a4b5c", Name: "admin", CreatedAt: ago(30 * 24 * time.Hour)},
				{ID: "8e1d2c3b-4a59-4687-9a8b-7c6d5e4f3a2b", Name: "alice@example.com", CreatedAt: ago(2 * time.Minute)},
			})
		}},
		{"api-key-add", func(w *bytes.Buffer) error {
			return renderNewAPIKey(w, &controller.APIKey{ID: "8e1d2c3b-4a59-4687-9a8b-7c6d5e4f3a2b", Name: "alice", Secret: strings.Repeat("3b1f", 16)},
				&config.Cluster{Name: "default", Domain: "dev.localflynn.com", ControllerURL: "https://controller.dev.localflynn.com", ControllerAddr: "127.0.0.1:443",
					TLSPin: "9ZxqXRqUdlW3kRw8pGgLvRkNk7E0PNEHMqZ8zG1kQ2s=", GitHost: "127.0.0.1:2222"})
		}},
		{"limits", func(w *bytes.Buffer) error {
			return renderLimits(w, &controller.Release{Processes: map[string]controller.ProcessType{
				"web":    {Cmd: []string{"web"}},
				"worker": {Resources: &controller.Resources{Memory: 256 << 20, CPU: 1500}},
				"clock":  {Resources: &controller.Resources{MaxProcs: 64}},
				"router": {HostNetwork: true, Resources: &controller.Resources{CPU: 500}},
			}})
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := tt.render(&buf); err != nil {
				t.Fatal(err)
			}
			golden(t, tt.name, buf.Bytes())
		})
	}
}

func TestAge(t *testing.T) {
	tests := []struct {
		d    time.Duration
		want string
	}{
		{-time.Second, "0s"}, {59 * time.Second, "59s"}, {time.Minute, "1m"}, {59 * time.Minute, "59m"},
		{time.Hour, "1h"}, {47 * time.Hour, "47h"}, {48 * time.Hour, "2d"},
	}
	for _, tt := range tests {
		if got := age(goldenNow, goldenNow.Add(-tt.d)); got != tt.want {
			t.Errorf("age(%s) = %q, want %q", tt.d, got, tt.want)
		}
	}
	if got := age(goldenNow, time.Time{}); got != "-" {
		t.Errorf("age(zero) = %q, want -", got)
	}
}

package gitreceive_test

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/openflynn/flynn/gitreceive"
	"github.com/openflynn/flynn/pkg/metrics"
	"github.com/openflynn/flynn/pkg/metrics/metricstest"
	"github.com/openflynn/flynn/pkg/poll"
	"github.com/openflynn/flynn/pkg/syncbuf"
	"github.com/openflynn/flynn/pkg/testdeps"
)

// TestMetrics scrapes gitreceive's /metrics after a build of each result
// and a refused connection.
func TestMetrics(t *testing.T) {
	h := newHarnessWith(t, harnessOptions{config: func(c *gitreceive.Config) { c.MaxConnsPerIP = 1 }})
	srv := httptest.NewServer(h.metrics)
	defer srv.Close()
	url := srv.URL + metrics.Path
	if code := metricstest.Status(t, url, ""); code != http.StatusUnauthorized {
		t.Fatalf("/metrics without the key: %d, want 401", code)
	}
	// One connection per address: each push waits until the last one's
	// is closed.
	connsClosed := func() bool {
		got, ok := metricstest.Get(t, url, controllerKey).Find("flynn_gitreceive_ssh_connections", nil)
		return ok && got.Value == 0
	}

	h.createApp("example")
	w := h.newWorkdir("example")
	w.commit("first", map[string]string{"Procfile": "web: ./web\n"})
	if out, _, err := w.push("main"); err != nil {
		t.Fatalf("push: %v\n%s", err, out)
	}
	poll.Until(t, 10*time.Second, "the push's connection to close", connsClosed)
	w.commit("broken", map[string]string{"fail.txt": "no buildpack"})
	if out, _, err := w.push("main"); err == nil {
		t.Fatalf("a failing build's push succeeded:\n%s", out)
	}
	poll.Until(t, 10*time.Second, "the push's connection to close", connsClosed)
	w.commit("hang", map[string]string{"fail.txt": "", "hang.txt": "x"})
	var out syncbuf.Buffer
	push := w.pushCmd(&out, "main")
	if err := push.Start(); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, 30*time.Second, "the build to start", func() bool { return strings.Contains(out.String(), "Hanging") })
	if err := syscall.Kill(-push.Process.Pid, syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	_ = push.Wait()
	poll.Until(t, 30*time.Second, "the cancelled build to be counted", func() bool {
		got, _ := metricstest.Get(t, url, controllerKey).Find("flynn_gitreceive_builds_total", map[string]string{"result": "cancelled"})
		return got.Value == 1
	})
	poll.Until(t, 10*time.Second, "the push's connection to close", connsClosed)

	held := dialFrom(t, "127.0.0.2", h.sshAddr)
	if !greeted(t, held) {
		t.Fatal("a first connection from 127.0.0.2 was refused")
	}
	if greeted(t, dialFrom(t, "127.0.0.2", h.sshAddr)) {
		t.Fatal("a second connection from 127.0.0.2 was taken, over the cap of 1")
	}

	scraped := metricstest.Get(t, url, controllerKey)
	for _, name := range []string{"go_goroutines", "process_cpu_seconds_total"} {
		if !scraped.Has(name) {
			t.Errorf("no %s", name)
		}
	}
	checks := []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"flynn_gitreceive_builds_total", map[string]string{"result": "succeeded"}, 1},
		{"flynn_gitreceive_builds_total", map[string]string{"result": "failed"}, 1},
		{"flynn_gitreceive_builds_total", map[string]string{"result": "cancelled"}, 1},
		{"flynn_gitreceive_ssh_connections", nil, 1},
		{"flynn_gitreceive_ssh_connections_refused_total", map[string]string{"reason": "max_conns_per_ip"}, 1},
		{"flynn_gitreceive_ssh_connections_refused_total", map[string]string{"reason": "max_conns"}, 0},
	}
	for _, c := range checks {
		if got, ok := scraped.Find(c.name, c.labels); !ok || got.Value != c.want {
			t.Errorf("%s%v = %v (found %v), want %v", c.name, c.labels, got.Value, ok, c.want)
		}
	}
	if got, _ := scraped.Find("flynn_gitreceive_build_duration_seconds", nil); got.Count != 3 {
		t.Errorf("build durations observed: %d, want 3", got.Count)
	}
}

// TestRunServesMetrics: Run serves /metrics on MetricsAddr, behind the
// controller key, beside SSH.
func TestRunServesMetrics(t *testing.T) {
	testdeps.LookPath(t, "git")
	cfg := gitreceive.Config{
		SSHAddr:          "127.0.0.1:0",
		MetricsAddr:      "127.0.0.1:0",
		StateDir:         t.TempDir(),
		ControllerURL:    "http://127.0.0.1:1",
		ControllerKey:    controllerKey,
		BlobstoreURL:     blobstoreURL,
		SlugbuilderImage: slugbuilderImage,
		SlugrunnerImage:  slugrunnerImage,
		HookCommand:      []string{"true"},
	}
	var logs syncbuf.Buffer
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- gitreceive.Run(ctx, cfg, slog.New(slog.NewTextHandler(&logs, nil))) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	addr := regexp.MustCompile(`metrics=(\S+)`)
	poll.Until(t, 10*time.Second, "gitreceive to listen", func() bool { return addr.MatchString(logs.String()) })
	url := "http://" + addr.FindStringSubmatch(logs.String())[1] + metrics.Path
	if code := metricstest.Status(t, url, ""); code != http.StatusUnauthorized {
		t.Fatalf("/metrics without the key: %d, want 401", code)
	}
	if !metricstest.Get(t, url, controllerKey).Has("flynn_gitreceive_ssh_connections") {
		t.Fatal("no flynn_gitreceive_ssh_connections")
	}
}

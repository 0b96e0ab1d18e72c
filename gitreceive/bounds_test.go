package gitreceive_test

import (
	"crypto/rand"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/openflynn/flynn/gitreceive"
	"github.com/openflynn/flynn/pkg/httpjson"
	"github.com/openflynn/flynn/pkg/poll"
	"github.com/openflynn/flynn/pkg/syncbuf"
)

func TestPushToSystemAppRefused(t *testing.T) {
	h := newHarnessWith(t, harnessOptions{systemApps: []string{"router"}})
	app := h.createApp("router")
	w := h.newWorkdir("router")
	w.commit("first", map[string]string{"Procfile": "web: ./web\n"})
	out, _, err := w.push("main")
	if err == nil {
		t.Fatalf("push to a system app succeeded:\n%s", out)
	}
	const want = "router is a system app: system apps are deployed by the platform, not by git push"
	if n := strings.Count(out, want); n != 1 {
		t.Fatalf("output should say once %q:\n%s", want, out)
	}
	if started, _, _, _, _ := h.runner.stats(); started != 0 {
		t.Fatalf("%d builds started", started)
	}
	if _, err := h.client.AppRelease(t.Context(), app.ID); !httpjson.IsNotFound(err) {
		t.Fatalf("a refused push left a release (err %v)", err)
	}
}

// TestBuildsWaitForASlot runs pushes to three apps with one build slot:
// the second waits and says so, the third gives up while waiting, and the
// second builds once the first is done.
func TestBuildsWaitForASlot(t *testing.T) {
	h := newHarnessWith(t, harnessOptions{config: func(c *gitreceive.Config) { c.MaxBuilds = 1 }})
	workdirs := map[string]*workdir{}
	for _, name := range []string{"first", "second", "quitter"} {
		h.createApp(name)
		workdirs[name] = h.newWorkdir(name)
	}
	workdirs["first"].commit("a", map[string]string{"Procfile": "web: ./web\n", "gate.txt": "wait"})
	workdirs["second"].commit("b", map[string]string{"Procfile": "web: ./web\n"})
	workdirs["quitter"].commit("c", map[string]string{"Procfile": "web: ./web\n"})

	var outFirst, outSecond, outQuitter syncbuf.Buffer
	first := workdirs["first"].pushCmd(&outFirst, "main")
	if err := first.Start(); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, 30*time.Second, "the first build to reach the gate", func() bool { return strings.Contains(outFirst.String(), "At the gate") })

	const waiting = "-----> Waiting for a build slot (1 build running)..."
	quitter := workdirs["quitter"].pushCmd(&outQuitter, "main")
	if err := quitter.Start(); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, 30*time.Second, "the quitter to wait for a slot", func() bool { return strings.Contains(outQuitter.String(), waiting) })
	second := workdirs["second"].pushCmd(&outSecond, "main")
	if err := second.Start(); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, 30*time.Second, "the second push to wait for a slot", func() bool { return strings.Contains(outSecond.String(), waiting) })
	// Ctrl-C while queued: the quitter leaves the queue.
	if err := syscall.Kill(-quitter.Process.Pid, syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	_ = quitter.Wait()
	poll.Until(t, 30*time.Second, "gitreceive to drop the quitter's push", func() bool {
		for line := range strings.Lines(h.logs.String()) {
			if strings.Contains(line, `msg="push cancelled: the client went away"`) && strings.Contains(line, "app.name=quitter") {
				return true
			}
		}
		return false
	})
	if started, _, _, _, _ := h.runner.stats(); started != 1 {
		t.Fatalf("%d builds started with one slot taken, want 1", started)
	}

	if err := os.WriteFile(filepath.Join(h.runner.gateDir, "open"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := first.Wait(); err != nil {
		t.Fatalf("first push: %v\n%s", err, outFirst.String())
	}
	if err := second.Wait(); err != nil || !strings.Contains(outSecond.String(), "Application deployed") {
		t.Fatalf("second push: %v\n%s", err, outSecond.String())
	}
	started, _, maxActive, _, _ := h.runner.stats()
	if started != 2 || maxActive != 1 {
		t.Fatalf("%d builds started, %d at once; want 2, one at a time", started, maxActive)
	}
}

func TestPushOverMaxSizeRefused(t *testing.T) {
	h := newHarnessWith(t, harnessOptions{config: func(c *gitreceive.Config) { c.MaxPushSize = 64 << 10 }})
	h.createApp("example")
	w := h.newWorkdir("example")
	w.commit("small", map[string]string{"Procfile": "web: ./web\n"})
	if out, _, err := w.push("main"); err != nil {
		t.Fatalf("small push: %v\n%s", err, out)
	}
	w.commit("big", map[string]string{"big.bin": string(randomBytes(t, 256<<10))})
	out, _, err := w.push("main")
	if err == nil {
		t.Fatalf("a push over the size limit succeeded:\n%s", out)
	}
	if !strings.Contains(out, "pack exceeds maximum allowed size") {
		t.Fatalf("output does not say the pack is too large:\n%s", out)
	}
	if started, _, _, _, _ := h.runner.stats(); started != 1 {
		t.Fatalf("%d builds started, want only the small push's", started)
	}
}

func TestBuildTimeout(t *testing.T) {
	h := newHarnessWith(t, harnessOptions{config: func(c *gitreceive.Config) { c.BuildTimeout = 2 * time.Second }})
	app := h.createApp("example")
	w := h.newWorkdir("example")
	w.commit("hang", map[string]string{"Procfile": "web: ./web\n", "hang.txt": "x"})
	out, _, err := w.push("main")
	if err == nil || !strings.Contains(out, "Build failed: not finished after 2s") {
		t.Fatalf("push of a build that hangs: %v\n%s", err, out)
	}
	poll.Until(t, 30*time.Second, "the build job to be stopped", func() bool {
		_, active, _, cancelled, _ := h.runner.stats()
		return active == 0 && cancelled == 1
	})
	if _, err := h.client.AppRelease(t.Context(), app.ID); !httpjson.IsNotFound(err) {
		t.Fatalf("a timed-out build left a release (err %v)", err)
	}
}

// randomBytes returns n incompressible bytes.
func randomBytes(t *testing.T, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

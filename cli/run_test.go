package cli

import (
	"bytes"
	"context"
	"io"
	"os"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/openflynn/flynn/controller"
	"github.com/openflynn/flynn/controller/client"
	"github.com/openflynn/flynn/host"
	"github.com/openflynn/flynn/pkg/poll"
	"github.com/openflynn/flynn/pkg/terminal"
	"github.com/openflynn/flynn/pkg/tlspin"
)

func TestRunAttached(t *testing.T) {
	h := newHarness(t)
	app := h.app("example")
	h.deploy(app, nil)

	tests := []struct {
		name     string
		args     []string
		stdin    string
		wantCode int
	}{
		{"success", []string{"exit", "0"}, "hello\n", 0},
		{"status propagated", []string{"exit", "3"}, "hello\n", 3},
		{"no input", []string{"exit", "42"}, "", 42},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := h.runInput(tt.stdin, append([]string{"-a", "example", "run"}, tt.args...)...)
			if res.code != tt.wantCode {
				t.Fatalf("exit status %d (stderr %q), want %d", res.code, res.stderr, tt.wantCode)
			}
			if want := strings.ToUpper(tt.stdin); res.stdout != want {
				t.Fatalf("stdout %q, want %q", res.stdout, want)
			}
			if res.stderr != "bye\n" {
				t.Fatalf("stderr %q, want the job's stderr alone", res.stderr)
			}
		})
	}
	specs := h.runner.ran()
	if last := specs[len(specs)-1]; !reflect.DeepEqual(last.Job.Args, []string{"exit", "42"}) || last.TTY {
		t.Fatalf("last job ran %v with TTY %v, want exit 42 without a TTY", last.Job.Args, last.TTY)
	}

	out := h.ok("-a", "example", "run", "-d", "-e", "FOO=bar", "rake", "db:migrate")
	specs = h.runner.ran()
	last := specs[len(specs)-1]
	if !strings.HasPrefix(out, "host1-") || last.Env["FOO"] != "bar" || !reflect.DeepEqual(last.Job.Args, []string{"rake", "db:migrate"}) {
		t.Fatalf("run -d printed %q and ran %v with env %v", out, last.Job.Args, last.Env)
	}
	h.fails("want a CMD", "-a", "example", "run")
}

// fakeTerminal is a terminal of a fixed size whose resizes the test
// triggers.
type fakeTerminal struct {
	mu       sync.Mutex
	raw      bool
	restored bool
	resizes  chan struct{}
}

var _ terminal.Terminal = (*fakeTerminal)(nil)

func (f *fakeTerminal) MakeRaw() (func() error, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.raw = true
	return func() error {
		f.mu.Lock()
		defer f.mu.Unlock()
		f.restored = true
		return nil
	}, nil
}

func (f *fakeTerminal) Size() (int, int, error) { return 40, 120, nil }

func (f *fakeTerminal) Resizes() (<-chan struct{}, func()) { return f.resizes, func() {} }

func TestRunTTY(t *testing.T) {
	h := newHarness(t)
	app := h.app("example")
	h.deploy(app, nil)
	term := &fakeTerminal{resizes: make(chan struct{}, 1)}
	stdinR, stdinW := io.Pipe()
	var stdout, stderr bytes.Buffer
	env := h.env
	env.Stdin, env.Stdout, env.Stderr, env.Terminal = stdinR, &stdout, &stderr, term

	done := make(chan int)
	go func() {
		done <- Run(context.Background(), []string{"flynn", "-a", "example", "run", "exit", "7"}, &env)
	}()
	// The initial size arrives; then a resize sends the size again.
	poll.Until(t, 10*time.Second, "the first resize frame", func() bool { return len(h.runner.resizeFrames()) == 1 })
	term.resizes <- struct{}{}
	poll.Until(t, 10*time.Second, "the second resize frame", func() bool { return len(h.runner.resizeFrames()) == 2 })
	if _, err := stdinW.Write([]byte("ls\r")); err != nil {
		t.Fatal(err)
	}
	stdinW.Close()
	if code := <-done; code != 7 {
		t.Fatalf("exit status %d (stderr %q), want 7", code, stderr.String())
	}
	if stdout.String() != "LS\r" {
		t.Fatalf("stdout %q", stdout.String())
	}
	if got := h.runner.resizeFrames(); !reflect.DeepEqual(got, [][2]uint16{{40, 120}, {40, 120}}) {
		t.Fatalf("resize frames %v, want the terminal's 40x120 twice", got)
	}
	specs := h.runner.ran()
	term.mu.Lock()
	defer term.mu.Unlock()
	if !specs[len(specs)-1].TTY || !term.raw || !term.restored {
		t.Fatalf("TTY %v, raw %v, restored %v; want all true", specs[len(specs)-1].TTY, term.raw, term.restored)
	}
}

func (f *fakeRunner) resizeFrames() [][2]uint16 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([][2]uint16(nil), f.resizes...)
}

func TestAttachErrors(t *testing.T) {
	tests := []struct {
		name   string
		frames func(w io.Writer)
		want   string
	}{
		{"stream ends early", func(w io.Writer) {}, "closed before the job exited"},
		{"error frame", func(w io.Writer) { writeFrame(w, host.FrameError, []byte("no such image")) }, "no such image"},
		{"bad exit frame", func(w io.Writer) { writeFrame(w, host.FrameExit, []byte{1}) }, "exit frame has 1 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stream bytes.Buffer
			tt.frames(&stream)
			_, err := attach(&stream, &frameWriter{w: io.Discard}, strings.NewReader(""), io.Discard, io.Discard)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
		})
	}
	if got := []int{exitCode(0), exitCode(255), exitCode(-1), exitCode(300)}; !reflect.DeepEqual(got, []int{0, 255, 1, 1}) {
		t.Fatalf("exitCode = %v", got)
	}
}

func writeFrame(w io.Writer, typ host.FrameType, p []byte) {
	_ = host.WriteFrame(w, typ, p)
}

// TestRunOverTLS attaches through a controller served over TLS that offers
// HTTP/2, as the router does: the CLI must stay on HTTP/1.1, the only
// protocol that carries the attach upgrade.
func TestRunOverTLS(t *testing.T) {
	hs, _ := newController(t, true)
	h := newHarness(t) // for the CLI environment; its cluster is replaced
	if err := os.Remove(h.env.ConfigPath); err != nil {
		t.Fatal(err)
	}
	pin := tlspin.Pin(hs.Certificate().Raw)
	h.ok("cluster", "add", "-p", pin, "--controller-addr", hs.Listener.Addr().String(), "tls", "example.test", testKey)
	api := client.NewWithHTTPClient(hs.URL, testKey, hs.Client())
	app := &controller.App{Name: "example"}
	ctx := context.Background()
	if err := api.CreateApp(ctx, app); err != nil {
		t.Fatal(err)
	}
	art := &controller.Artifact{Type: controller.ArtifactTypeDocker, URI: "example/image"}
	if err := api.CreateArtifact(ctx, art); err != nil {
		t.Fatal(err)
	}
	rel := &controller.Release{AppID: app.ID, ArtifactID: art.ID}
	if err := api.CreateRelease(ctx, rel); err != nil {
		t.Fatal(err)
	}
	if _, err := api.SetAppRelease(ctx, app.ID, rel.ID); err != nil {
		t.Fatal(err)
	}
	res := h.runInput("over tls\n", "-a", "example", "run", "exit", "5")
	if res.code != 5 || res.stdout != "OVER TLS\n" {
		t.Fatalf("run over TLS: exit %d, stdout %q, stderr %q; want 5 and the echo", res.code, res.stdout, res.stderr)
	}
}

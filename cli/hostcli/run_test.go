package hostcli

import (
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/openflynn/flynn/host"
	"github.com/openflynn/flynn/host/client"
	"github.com/openflynn/flynn/pkg/poll"
	"github.com/openflynn/flynn/pkg/terminal"
)

// fakeTerminal is a terminal whose size the test sets and whose resizes it
// announces.
type fakeTerminal struct {
	resizes chan struct{}

	mu            sync.Mutex
	height, width int
	raw, restored bool
	watched       bool // Resizes was called and not stopped
}

var _ terminal.Terminal = (*fakeTerminal)(nil)

func newFakeTerminal(height, width int) *fakeTerminal {
	return &fakeTerminal{height: height, width: width, resizes: make(chan struct{})}
}

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

func (f *fakeTerminal) Size() (int, int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.height, f.width, nil
}

func (f *fakeTerminal) Resizes() (<-chan struct{}, func()) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.watched = true
	return f.resizes, func() {
		f.mu.Lock()
		defer f.mu.Unlock()
		f.watched = false
	}
}

// resize sets the size and announces it; it returns once the watcher has
// taken the notice.
func (f *fakeTerminal) resize(height, width int) {
	f.mu.Lock()
	f.height, f.width = height, width
	f.mu.Unlock()
	f.resizes <- struct{}{}
}

// state returns raw, restored and watched.
func (f *fakeTerminal) state() (raw, restored, watched bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.raw, f.restored, f.watched
}

func TestRunExitStatus(t *testing.T) {
	tests := []struct {
		name       string
		args       []string
		status     int  // the job's
		attaches   bool // whether the job starts at all
		wantCode   int
		wantStdout string
		wantStderr string
	}{
		{"success", []string{"run", "busybox", "true"}, 0, true, 0, "hello\n", "bye\n"},
		{"status propagated", []string{"run", "busybox", "exit", "7"}, 7, true, 7, "hello\n", "bye\n"},
		{"unknown image", []string{"run", "missing", "x"}, 0, false, 1, "", "flynn-host: validation_error: artifact: image \"missing\" is not on this host\n"},
		{"malformed env", []string{"run", "-e", "NOEQUALS", "busybox"}, 0, false, 1, "", "flynn-host: --env \"NOEQUALS\": want KEY=value\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newFakeHost(t)
			if tt.attaches {
				h.exit <- tt.status
			}
			res := h.run(t, Env{}, tt.args...)
			if res.code != tt.wantCode || res.stdout != tt.wantStdout || res.stderr != tt.wantStderr {
				t.Fatalf("exit %d, stdout %q, stderr %q; want %d, %q, %q", res.code, res.stdout, res.stderr, tt.wantCode, tt.wantStdout, tt.wantStderr)
			}
		})
	}
}

func TestRunJobFromFlags(t *testing.T) {
	h := newFakeHost(t)
	h.exit <- 0
	res := h.run(t, Env{}, "run", "-e", "A=1", "-e", "B=x=y", "--entrypoint", "/bin/sh", "--ports", "2", "-i=false", "busybox", "-c", "echo hi")
	if res.code != 0 {
		t.Fatalf("exit %d, stderr %q", res.code, res.stderr)
	}
	req := h.lastAttach()
	job := req.Job
	if !strings.HasPrefix(job.ID, "host1-") || job.Artifact != "busybox" {
		t.Errorf("job %q of %q, want an id under host1 and busybox", job.ID, job.Artifact)
	}
	want := host.JobConfig{
		Entrypoint: []string{"/bin/sh"},
		Args:       []string{"-c", "echo hi"},
		Env:        map[string]string{"A": "1", "B": "x=y"},
		Ports:      []host.Port{{}, {}},
	}
	if !reflect.DeepEqual(job.Config, want) {
		t.Errorf("config %+v, want %+v", job.Config, want)
	}
	if req.Stdin || req.Height != 0 || req.Width != 0 {
		t.Errorf("stdin %v, size %dx%d; want no stdin and no size", req.Stdin, req.Height, req.Width)
	}
}

// TestRunTTY attaches with -t: the input terminal goes raw and is restored,
// the job gets the output terminal's size, and follows its resizes.
func TestRunTTY(t *testing.T) {
	h := newFakeHost(t)
	in, out := newFakeTerminal(0, 0), newFakeTerminal(40, 120)
	done := make(chan result, 1)
	go func() {
		done <- h.run(t, Env{Stdin: strings.NewReader("ls\r"), Input: in, Output: out}, "run", "-t", "busybox", "sh")
	}()
	poll.Until(t, 10*time.Second, "the attach", func() bool { return h.lastAttach() != nil })
	if req := h.lastAttach(); !req.Job.Config.TTY || req.Height != 40 || req.Width != 120 {
		t.Fatalf("TTY %v, size %dx%d; want a 40x120 TTY", req.Job.Config.TTY, req.Height, req.Width)
	}
	out.resize(50, 132)
	poll.Until(t, 10*time.Second, "the resize", func() bool {
		return slices.Contains(h.windowSizes(), client.WindowSize{Height: 50, Width: 132})
	})
	poll.Until(t, 10*time.Second, "the input", func() bool { return h.stdinSent() == "ls\r" })
	if raw, _, _ := in.state(); !raw {
		t.Fatal("the input terminal is not raw while the job runs")
	}
	h.exit <- 3

	res := <-done
	if res.code != 3 || res.stdout != "hello\n" || res.stderr != "bye\n" {
		t.Fatalf("exit %d, stdout %q, stderr %q; want 3 and the job's output", res.code, res.stdout, res.stderr)
	}
	if raw, restored, _ := in.state(); !raw || !restored {
		t.Errorf("input terminal raw %v, restored %v; want both", raw, restored)
	}
	if raw, _, watched := out.state(); raw || watched {
		t.Errorf("output terminal raw %v, still watched %v; want neither", raw, watched)
	}
}

func TestRunTerminalsLeftAlone(t *testing.T) {
	tests := []struct {
		name      string
		args      []string
		terminals bool
		wantTTY   bool
	}{
		{"-t without terminals", []string{"run", "-t", "busybox"}, false, true},
		{"terminals without -t", []string{"run", "busybox"}, true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newFakeHost(t)
			h.exit <- 0
			env := Env{}
			in, out := newFakeTerminal(0, 0), newFakeTerminal(40, 120)
			if tt.terminals {
				env.Input, env.Output = in, out
			}
			if res := h.run(t, env, tt.args...); res.code != 0 {
				t.Fatalf("exit %d, stderr %q", res.code, res.stderr)
			}
			if req := h.lastAttach(); req.Job.Config.TTY != tt.wantTTY || req.Height != 0 || req.Width != 0 {
				t.Errorf("TTY %v, size %dx%d; want TTY %v and no size", req.Job.Config.TTY, req.Height, req.Width, tt.wantTTY)
			}
			for _, term := range []*fakeTerminal{in, out} {
				if raw, _, watched := term.state(); raw || watched {
					t.Errorf("a terminal was made raw (%v) or watched (%v)", raw, watched)
				}
			}
		})
	}
}

// TestWatchSize checks the adapter from a Terminal to the attach's resize
// channel: a size not yet taken gives way to the newest, and stop ends the
// watch and closes the channel.
func TestWatchSize(t *testing.T) {
	term := newFakeTerminal(10, 20)
	sizes, stop := watchSize(term)
	term.resize(30, 40)
	term.resize(50, 60)
	// The watcher takes a notice only when done with the one before, so
	// once this one is taken the 50x60 notice has been handled.
	term.resize(50, 60)
	if got, want := <-sizes, (client.WindowSize{Height: 50, Width: 60}); got != want {
		t.Fatalf("size %v, want the newest, %v", got, want)
	}
	stop()
	for ws := range sizes {
		if ws != (client.WindowSize{Height: 50, Width: 60}) {
			t.Fatalf("size %v after the newest", ws)
		}
	}
	if _, _, watched := term.state(); watched {
		t.Fatal("stop did not stop the terminal's resizes")
	}
}

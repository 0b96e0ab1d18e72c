package hostcli

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/openflynn/flynn/host"
	"github.com/openflynn/flynn/host/client"
	"github.com/openflynn/flynn/pkg/authkey"
	"github.com/openflynn/flynn/pkg/httpjson"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden with the current output")

// testKey is the cluster key the fake host requires.
const testKey = "k"

// testNow is the clock of every test, so that ages are stable.
var testNow = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

// fakeHost is the host API in memory, behind the real key check: a status,
// jobs, their log lines, and an attach whose job exits with the status the
// test sends on exit.
type fakeHost struct {
	url string
	// exit receives the status of the attached job: the attach writes
	// the job's output, then waits for it.
	exit chan int

	mu       sync.Mutex
	jobs     []*host.ActiveJob
	logs     map[string][]host.LogLine
	logQuery string
	stopped  []string
	attaches []*host.AttachRequest
	stdin    bytes.Buffer
	resizes  []client.WindowSize
}

func newFakeHost(t *testing.T, jobs ...*host.ActiveJob) *fakeHost {
	t.Helper()
	h := &fakeHost{jobs: jobs, logs: map[string][]host.LogLine{}, exit: make(chan int, 1)}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /host/status", func(w http.ResponseWriter, _ *http.Request) {
		httpjson.Write(w, http.StatusOK, &host.HostStatus{ID: "host1", ExternalIP: "127.0.0.1"})
	})
	mux.HandleFunc("GET /host/jobs", func(w http.ResponseWriter, r *http.Request) {
		h.mu.Lock()
		defer h.mu.Unlock()
		if r.URL.Query().Get("stats") != "true" {
			httpjson.Write(w, http.StatusOK, h.jobs)
			return
		}
		// Each running job with its stats from fakeStats, as the host
		// reads them.
		out := make([]host.ActiveJob, len(h.jobs))
		for i, j := range h.jobs {
			out[i] = *j
			if !j.State.Terminal() && j.State != host.StatePending {
				out[i].Stats = fakeStats[j.Job.ID]
			}
		}
		httpjson.Write(w, http.StatusOK, out)
	})
	mux.HandleFunc("GET /host/jobs/{id}", func(w http.ResponseWriter, r *http.Request) {
		j, err := h.job(r.PathValue("id"))
		if err != nil {
			httpjson.WriteError(w, err)
			return
		}
		httpjson.Write(w, http.StatusOK, j)
	})
	mux.HandleFunc("DELETE /host/jobs/{id}", func(w http.ResponseWriter, r *http.Request) {
		j, err := h.job(r.PathValue("id"))
		if err != nil {
			httpjson.WriteError(w, err)
			return
		}
		h.mu.Lock()
		defer h.mu.Unlock()
		h.stopped = append(h.stopped, j.Job.ID)
		j.State = host.StateDown
		httpjson.Write(w, http.StatusOK, j)
	})
	mux.HandleFunc("GET /host/jobs/{id}/log", func(w http.ResponseWriter, r *http.Request) {
		if _, err := h.job(r.PathValue("id")); err != nil {
			httpjson.WriteError(w, err)
			return
		}
		h.mu.Lock()
		defer h.mu.Unlock()
		h.logQuery = r.URL.RawQuery
		enc := json.NewEncoder(w)
		for _, l := range h.logs[r.PathValue("id")] {
			_ = enc.Encode(l)
		}
	})
	mux.HandleFunc("POST /host/gc", func(w http.ResponseWriter, r *http.Request) {
		// The fixture's report, removed or to be removed as asked.
		rep := fixtureGC()
		rep.DryRun = r.URL.Query().Get("dry_run") == "true"
		httpjson.Write(w, http.StatusOK, rep)
	})
	mux.HandleFunc("POST /host/attach", h.attach)
	srv := httptest.NewServer(authkey.Require(testKey, mux))
	t.Cleanup(srv.Close)
	h.url = srv.URL
	return h
}

func (h *fakeHost) job(id string) (*host.ActiveJob, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, j := range h.jobs {
		if j.Job.ID == id {
			return j, nil
		}
	}
	return nil, httpjson.NotFound("no job %s", id)
}

// attach serves one attached job: "hello\n" on stdout, "bye\n" on stderr,
// then the status sent on h.exit. It records the request and what the
// client sends: stdin and window sizes. An image named "missing" fails the
// request, as the host does for an image it does not have.
func (h *fakeHost) attach(w http.ResponseWriter, r *http.Request) {
	var req host.AttachRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		httpjson.WriteError(w, httpjson.ValidationError("", "%v", err))
		return
	}
	if req.Job != nil && req.Job.Artifact == "missing" {
		httpjson.WriteError(w, httpjson.ValidationError("artifact", "image %q is not on this host", req.Job.Artifact))
		return
	}
	h.mu.Lock()
	h.attaches = append(h.attaches, &req)
	h.mu.Unlock()
	conn, buf, err := w.(http.Hijacker).Hijack()
	if err != nil {
		return
	}
	defer conn.Close()
	_, _ = io.WriteString(conn, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: "+host.AttachUpgrade+"\r\nConnection: Upgrade\r\n\r\n")
	read := make(chan struct{})
	go func() {
		defer close(read)
		br := bufio.NewReader(buf)
		for {
			f, err := host.ReadFrame(br)
			if err != nil {
				return
			}
			h.mu.Lock()
			switch f.Type {
			case host.FrameStdin:
				h.stdin.Write(f.Payload)
			case host.FrameResize:
				if height, width, err := host.ParseResize(f.Payload); err == nil {
					h.resizes = append(h.resizes, client.WindowSize{Height: height, Width: width})
				}
			}
			h.mu.Unlock()
		}
	}()
	_ = host.WriteFrame(conn, host.FrameStdout, []byte("hello\n"))
	_ = host.WriteFrame(conn, host.FrameStderr, []byte("bye\n"))
	select {
	case status := <-h.exit:
		_ = host.WriteFrame(conn, host.FrameExit, host.ExitPayload(status))
	case <-read: // the client left
	}
	conn.Close()
	<-read
}

// lastAttach returns the last attach request, or nil.
func (h *fakeHost) lastAttach() *host.AttachRequest {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.attaches) == 0 {
		return nil
	}
	return h.attaches[len(h.attaches)-1]
}

// stoppedJobs returns the ids of the jobs stopped so far.
func (h *fakeHost) stoppedJobs() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.stopped...)
}

// lastLogQuery returns the query of the last log request.
func (h *fakeHost) lastLogQuery() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.logQuery
}

// windowSizes returns the sizes the attached client has sent.
func (h *fakeHost) windowSizes() []client.WindowSize {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]client.WindowSize(nil), h.resizes...)
}

// stdinSent returns what the attached client has sent on stdin.
func (h *fakeHost) stdinSent() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.stdin.String()
}

// result is what one run of the command line did.
type result struct {
	code           int
	stdout, stderr string
}

// run runs flynn-host against the fake host with env's terminals and
// stdin; extra commands are added as cmd/flynn-host adds the daemon.
func (h *fakeHost) run(t *testing.T, env Env, args ...string) result {
	t.Helper()
	var stdout, stderr bytes.Buffer
	env.Stdout, env.Stderr = &stdout, &stderr
	env.Now = func() time.Time { return testNow }
	argv := append([]string{"flynn-host", "--host", h.url, "--key", testKey}, args...)
	code := Run(context.Background(), argv, &env)
	return result{code: code, stdout: stdout.String(), stderr: stderr.String()}
}

// golden compares got with testdata/name.golden.
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./cli/hostcli -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs from %s:\n got:\n%s\nwant:\n%s", name, path, got, want)
	}
}

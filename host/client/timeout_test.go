package client_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/openflynn/flynn/host"
	"github.com/openflynn/flynn/host/client"
)

// answerTimeout is the tests' Config.AnswerTimeout; a silent host's calls
// must fail within it (plus scheduling slack), well before watchdog.
const (
	answerTimeout = 200 * time.Millisecond
	watchdog      = 10 * time.Second
)

// slowHost is a host API that answers late or never: its list and status
// calls hang until the client gives up, its stops answer after 3 answer
// timeouts (a job's grace), and its event stream opens at once but sends
// its first event only after 3 answer timeouts.
func slowHost(t *testing.T) *httptest.Server {
	t.Helper()
	late := 3 * answerTimeout
	mux := http.NewServeMux()
	hang := func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() }
	mux.HandleFunc("GET /host/jobs", hang)
	mux.HandleFunc("GET /host/status", hang)
	mux.HandleFunc("DELETE /host/jobs/{id}", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(late): // the job's grace
		case <-r.Context().Done():
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"job":{"id":"` + r.PathValue("id") + `"},"state":"down"}`))
	})
	mux.HandleFunc("GET /host/events", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(http.StatusOK)
		w.(http.Flusher).Flush()
		select {
		case <-time.After(late):
		case <-r.Context().Done():
			return
		}
		_, _ = w.Write([]byte("id: 1\nevent: job\ndata: {\"id\":1,\"job_id\":\"j1\",\"state\":\"up\"}\n\n"))
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

// silentListener accepts connections and never reads or answers them, as
// a hung daemon's socket does; the connections close when the test ends.
func silentListener(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu    sync.Mutex
		conns []net.Conn
		wg    sync.WaitGroup
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		wg.Wait()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return "http://" + ln.Addr().String()
}

// A host that does not answer fails a call within Config.AnswerTimeout,
// even for a caller without a deadline; before it had one, such a call
// waited for ever.
func TestSilentHostFailsCallsInTime(t *testing.T) {
	srv := slowHost(t)
	attachURL := silentListener(t)
	tests := []struct {
		name string
		url  string
		call func(ctx context.Context, c *client.Client) error
	}{
		{"list jobs", srv.URL, func(ctx context.Context, c *client.Client) error {
			_, err := c.ListJobs(ctx)
			return err
		}},
		{"status", srv.URL, func(ctx context.Context, c *client.Client) error {
			_, err := c.Status(ctx)
			return err
		}},
		{"attach", attachURL, func(ctx context.Context, c *client.Client) error {
			_, err := c.Attach(ctx, &host.AttachRequest{JobID: "j1"}, client.AttachIO{})
			return err
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := client.NewWithConfig(tt.url, "k", client.Config{AnswerTimeout: answerTimeout})
			// The watchdog only keeps a failing test from hanging: the call
			// must end long before it, by the client's own bound.
			ctx, cancel := context.WithTimeout(t.Context(), watchdog)
			defer cancel()
			start := time.Now()
			err := tt.call(ctx, c)
			took := time.Since(start)
			if !errors.Is(err, client.ErrNoAnswer) {
				t.Fatalf("err = %v after %s; want ErrNoAnswer", err, took)
			}
			if took > watchdog/2 {
				t.Errorf("the call took %s; want about the answer timeout, %s", took, answerTimeout)
			}
			t.Logf("failed after %s: %v", took.Round(time.Millisecond), err)
		})
	}
}

// The bound is on the answer, not the call: a stop answered after the
// job's grace (longer than AnswerTimeout) succeeds within StopTimeout, and
// an event stream goes on past AnswerTimeout.
func TestAnswerTimeoutSparesLongCalls(t *testing.T) {
	srv := slowHost(t)
	c := client.NewWithConfig(srv.URL, "k", client.Config{AnswerTimeout: answerTimeout})
	ctx, cancel := context.WithTimeout(t.Context(), watchdog)
	defer cancel()

	aj, err := c.StopJob(ctx, "j1")
	if err != nil || aj.State != host.StateDown {
		t.Fatalf("StopJob = %+v, %v; want the job down once its grace passed", aj, err)
	}

	stream, err := c.Events(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	defer stream.Close()
	ev, err := stream.Next()
	if err != nil || ev.JobID != "j1" {
		t.Fatalf("first event = %+v, %v; want j1's, sent after 3 answer timeouts", ev, err)
	}

	short := client.NewWithConfig(srv.URL, "k", client.Config{AnswerTimeout: answerTimeout, StopTimeout: answerTimeout})
	if _, err := short.StopJob(ctx, "j1"); !errors.Is(err, client.ErrNoAnswer) {
		t.Errorf("StopJob with a StopTimeout shorter than the grace: err = %v, want ErrNoAnswer", err)
	}
}

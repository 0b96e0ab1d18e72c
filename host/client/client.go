// Package client is the Go client of the flynn-host API (see package host
// for the routes): jobs, logs, events, status and attach.
package client

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/openflynn/flynn/host"
	"github.com/openflynn/flynn/pkg/authkey"
	"github.com/openflynn/flynn/pkg/httpjson"
	"github.com/openflynn/flynn/pkg/sse"
)

// ErrNoAnswer is wrapped by the error of a call the host did not answer in
// time (see Config).
var ErrNoAnswer = errors.New("the host did not answer in time")

// Config bounds how long a Client waits for a host; zero values take the
// documented defaults. A context's deadline bounds a call further.
type Config struct {
	// AnswerTimeout bounds the wait for the host's answer to a call: from
	// the call's start, connecting included, to the answer's status and
	// headers. A host that accepts connections but does not answer (hung,
	// or gone behind a pooled connection) fails the call with ErrNoAnswer
	// rather than holding it for ever. Streams (Events, Log) and Attach are
	// answered at once and then last as long as their context: the bound
	// is on their opening only. Default 1 min: the host answers AddJob once
	// the container is created.
	AnswerTimeout time.Duration
	// StopTimeout replaces AnswerTimeout for StopJob, which the host
	// answers only once the job has ended, after its stop grace (10 s
	// unless the job says otherwise). Default 5 min. The stop goes on
	// after it.
	StopTimeout time.Duration
	// GCTimeout replaces AnswerTimeout for CollectGarbage, which the
	// host answers once it has removed what it removes. Default 10 min.
	GCTimeout time.Duration
}

func (c *Config) defaults() {
	if c.AnswerTimeout <= 0 {
		c.AnswerTimeout = time.Minute
	}
	if c.StopTimeout <= 0 {
		c.StopTimeout = 5 * time.Minute
	}
	if c.GCTimeout <= 0 {
		c.GCTimeout = 10 * time.Minute
	}
}

// Client talks to one flynn-host.
type Client struct {
	url  string
	key  string
	cfg  Config
	http *http.Client
}

// New returns a client of the host API at url ("http://127.0.0.1:1113"),
// sending key (the cluster key, or "") with every call, with Config's
// defaults.
func New(url, key string) *Client { return NewWithConfig(url, key, Config{}) }

// NewWithConfig is New with cfg's bounds.
func NewWithConfig(url, key string, cfg Config) *Client {
	cfg.defaults()
	// The shared default transport: clients are made per call in places
	// (controller/hostrunner), and connections to a host are reused across
	// them. Its dialer gives up after 30 s and probes idle connections;
	// the bounds above are per call (send).
	return &Client{url: strings.TrimRight(url, "/"), key: key, cfg: cfg, http: &http.Client{}}
}

// URL returns the host API's base URL.
func (c *Client) URL() string { return c.url }

func (c *Client) request(ctx context.Context, method, path string, body any) (*http.Response, error) {
	return c.requestWithin(ctx, c.cfg.AnswerTimeout, method, path, body)
}

// requestWithin sends a call whose answer may take up to wait.
func (c *Client) requestWithin(ctx context.Context, wait time.Duration, method, path string, body any) (*http.Response, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, fmt.Errorf("encode request: %w", err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.url+path, rd)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	authkey.Set(req, c.key)
	resp, err := c.send(req, wait)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	if resp.StatusCode >= 300 {
		defer resp.Body.Close()
		return nil, httpjson.ReadError(resp)
	}
	return resp, nil
}

// send does req, failing with ErrNoAnswer when the answer's headers have
// not come within wait. The body that follows is bounded by req's context
// alone, so a stream lasts as long as its caller wants. (http.Transport's
// ResponseHeaderTimeout would do, but it is one bound for every call, and
// StopJob's answer waits for the job's end.)
func (c *Client) send(req *http.Request, wait time.Duration) (*http.Response, error) {
	ctx, cancel := context.WithCancelCause(req.Context())
	timer := time.AfterFunc(wait, func() { cancel(ErrNoAnswer) })
	resp, err := c.http.Do(req.WithContext(ctx))
	if !timer.Stop() && req.Context().Err() == nil {
		if err == nil {
			resp.Body.Close() // too late: ctx has ended under it
		}
		cancel(nil)
		return nil, fmt.Errorf("%w (waited %s)", ErrNoAnswer, wait)
	}
	if err != nil {
		cancel(nil)
		return nil, err
	}
	resp.Body = &cancelOnClose{ReadCloser: resp.Body, cancel: func() { cancel(nil) }}
	return resp, nil
}

// cancelOnClose releases a call's context once its body is closed.
type cancelOnClose struct {
	io.ReadCloser
	cancel func()
}

func (b *cancelOnClose) Close() error {
	err := b.ReadCloser.Close()
	b.cancel()
	return err
}

func (c *Client) do(ctx context.Context, method, path string, body, out any) error {
	return c.doWithin(ctx, c.cfg.AnswerTimeout, method, path, body, out)
}

func (c *Client) doWithin(ctx context.Context, wait time.Duration, method, path string, body, out any) error {
	resp, err := c.requestWithin(ctx, wait, method, path, body)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if out == nil {
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("decode %s %s: %w", method, path, err)
	}
	return nil
}

func jobPath(id string) string { return "/host/jobs/" + url.PathEscape(id) }

// ListJobs returns the host's jobs, oldest first.
func (c *Client) ListJobs(ctx context.Context) ([]*host.ActiveJob, error) {
	var out []*host.ActiveJob
	return out, c.do(ctx, http.MethodGet, "/host/jobs", nil, &out)
}

// ListJobsWithStats is ListJobs with each running job's Stats (CPU and
// memory), which takes the host up to a couple of seconds when it has not
// read its jobs' stats in the last minute.
func (c *Client) ListJobsWithStats(ctx context.Context) ([]*host.ActiveJob, error) {
	var out []*host.ActiveJob
	return out, c.do(ctx, http.MethodGet, "/host/jobs?stats=true", nil, &out)
}

// JobStats returns a running job's CPU and memory use; a job that does not
// run is a conflict error.
func (c *Client) JobStats(ctx context.Context, id string) (*host.JobStats, error) {
	var out host.JobStats
	return &out, c.do(ctx, http.MethodGet, jobPath(id)+"/stats", nil, &out)
}

// GetJob returns one job.
func (c *Client) GetJob(ctx context.Context, id string) (*host.ActiveJob, error) {
	var out host.ActiveJob
	return &out, c.do(ctx, http.MethodGet, jobPath(id), nil, &out)
}

// AddJob starts a job; it returns once the container runs.
func (c *Client) AddJob(ctx context.Context, job *host.Job) (*host.ActiveJob, error) {
	var out host.ActiveJob
	return &out, c.do(ctx, http.MethodPut, jobPath(job.ID), job, &out)
}

// StopJob stops a job and waits until it has ended (or ctx ends, or
// Config.StopTimeout passes; the stop goes on).
func (c *Client) StopJob(ctx context.Context, id string) (*host.ActiveJob, error) {
	var out host.ActiveJob
	return &out, c.doWithin(ctx, c.cfg.StopTimeout, http.MethodDelete, jobPath(id), nil, &out)
}

// SignalJob sends a signal ("TERM", "SIGHUP", "9") to a job.
func (c *Client) SignalJob(ctx context.Context, id, signal string) error {
	return c.do(ctx, http.MethodPost, jobPath(id)+"/signal/"+url.PathEscape(signal), nil, nil)
}

// CollectGarbage runs the host's garbage collector once and returns what
// it removed; with dryRun it removes nothing and returns what it would
// remove. It may take minutes (Config.GCTimeout).
func (c *Client) CollectGarbage(ctx context.Context, dryRun bool) (*host.GCReport, error) {
	var out host.GCReport
	return &out, c.doWithin(ctx, c.cfg.GCTimeout, http.MethodPost, "/host/gc?dry_run="+strconv.FormatBool(dryRun), nil, &out)
}

// Status returns the host's status.
func (c *Client) Status(ctx context.Context) (*host.HostStatus, error) {
	var out host.HostStatus
	return &out, c.do(ctx, http.MethodGet, "/host/status", nil, &out)
}

// LogOptions select log lines.
type LogOptions struct {
	// Follow keeps the stream open until the job ends.
	Follow bool
	// Tail returns only the last Tail lines (0: all).
	Tail int
	// Stream is host.StreamStdout or host.StreamStderr; empty: both.
	Stream string
}

// LogStream reads a job's log lines: JSON lines of host.LogLine, as the
// host API writes them and the controller passes them through.
type LogStream struct {
	body io.ReadCloser
	dec  *json.Decoder
}

// Next returns the next line, or io.EOF at the end.
func (s *LogStream) Next() (host.LogLine, error) {
	var l host.LogLine
	if err := s.dec.Decode(&l); err != nil {
		if errors.Is(err, io.EOF) {
			return l, io.EOF
		}
		return l, fmt.Errorf("read log: %w", err)
	}
	return l, nil
}

// Close ends the stream.
func (s *LogStream) Close() error { return s.body.Close() }

// Log opens a job's log.
func (c *Client) Log(ctx context.Context, id string, opts LogOptions) (*LogStream, error) {
	q := url.Values{}
	if opts.Follow {
		q.Set("follow", "true")
	}
	if opts.Tail > 0 {
		q.Set("tail", strconv.Itoa(opts.Tail))
	}
	if opts.Stream != "" {
		q.Set("stream", opts.Stream)
	}
	resp, err := c.request(ctx, http.MethodGet, jobPath(id)+"/log?"+q.Encode(), nil)
	if err != nil {
		return nil, err
	}
	return NewLogStream(resp.Body), nil
}

// NewLogStream reads log lines from body, which Close closes.
func NewLogStream(body io.ReadCloser) *LogStream {
	return &LogStream{body: body, dec: json.NewDecoder(bufio.NewReader(body))}
}

// EventStream reads job events.
type EventStream struct {
	body io.ReadCloser
	r    *sse.Reader
}

// Next returns the next event, or an error when the stream ends.
func (s *EventStream) Next() (*host.Event, error) {
	for {
		e, err := s.r.Next()
		if err != nil {
			return nil, err
		}
		if e.Name != "job" {
			continue
		}
		var ev host.Event
		if err := json.Unmarshal(e.Data, &ev); err != nil {
			return nil, fmt.Errorf("decode job event: %w", err)
		}
		return &ev, nil
	}
}

// Close ends the stream.
func (s *EventStream) Close() error { return s.body.Close() }

// Events streams job state changes from now on (of one job when jobID is set).
func (c *Client) Events(ctx context.Context, jobID string) (*EventStream, error) {
	path := "/host/events"
	if jobID != "" {
		path += "?job_id=" + url.QueryEscape(jobID)
	}
	resp, err := c.request(ctx, http.MethodGet, path, nil)
	if err != nil {
		return nil, err
	}
	return &EventStream{body: resp.Body, r: sse.NewReader(resp.Body)}, nil
}

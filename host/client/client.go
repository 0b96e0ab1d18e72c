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

	"github.com/openflynn/flynn/host"
	"github.com/openflynn/flynn/pkg/authkey"
	"github.com/openflynn/flynn/pkg/httpjson"
	"github.com/openflynn/flynn/pkg/sse"
)

// Client talks to one flynn-host.
type Client struct {
	url  string
	key  string
	http *http.Client
}

// New returns a client of the host API at url ("http://127.0.0.1:1113"),
// sending key (the cluster key, or "") with every call.
func New(url, key string) *Client {
	return &Client{url: strings.TrimRight(url, "/"), key: key, http: &http.Client{}}
}

// URL returns the host API's base URL.
func (c *Client) URL() string { return c.url }

func (c *Client) request(ctx context.Context, method, path string, body any) (*http.Response, error) {
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
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	if resp.StatusCode >= 300 {
		defer resp.Body.Close()
		return nil, httpjson.ReadError(resp)
	}
	return resp, nil
}

func (c *Client) do(ctx context.Context, method, path string, body, out any) error {
	resp, err := c.request(ctx, method, path, body)
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

// StopJob stops a job and waits until it has ended (or ctx ends; the stop
// goes on).
func (c *Client) StopJob(ctx context.Context, id string) (*host.ActiveJob, error) {
	var out host.ActiveJob
	return &out, c.do(ctx, http.MethodDelete, jobPath(id), nil, &out)
}

// SignalJob sends a signal ("TERM", "SIGHUP", "9") to a job.
func (c *Client) SignalJob(ctx context.Context, id, signal string) error {
	return c.do(ctx, http.MethodPost, jobPath(id)+"/signal/"+url.PathEscape(signal), nil, nil)
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

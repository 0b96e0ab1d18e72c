package client

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"

	"github.com/openflynn/flynn/host"
	"github.com/openflynn/flynn/pkg/httpjson"
)

// JobLogOptions select the lines of a job's log.
type JobLogOptions struct {
	// Follow keeps the stream open until the job ends.
	Follow bool
	// Tail starts with only the last Tail lines (0: all).
	Tail int
}

// JobLogStream reads a job's log lines. The controller passes the host's
// lines through, so they are host.LogLine (a stdlib-only wire type).
type JobLogStream struct {
	body io.ReadCloser
	dec  *json.Decoder
}

// Next returns the next line, or io.EOF at the end of the log.
func (s *JobLogStream) Next() (host.LogLine, error) {
	var l host.LogLine
	if err := s.dec.Decode(&l); err != nil {
		if errors.Is(err, io.EOF) {
			return l, io.EOF
		}
		return l, fmt.Errorf("controller client: read job log: %w", err)
	}
	return l, nil
}

// Close ends the stream.
func (s *JobLogStream) Close() error { return s.body.Close() }

// JobLog opens the log of one job of an app.
func (c *Client) JobLog(ctx context.Context, app, jobID string, opts JobLogOptions) (*JobLogStream, error) {
	q := url.Values{}
	if opts.Follow {
		q.Set("follow", "true")
	}
	if opts.Tail > 0 {
		q.Set("tail", strconv.Itoa(opts.Tail))
	}
	p := path("apps", app, "jobs", jobID, "log")
	if len(q) > 0 {
		p += "?" + q.Encode()
	}
	req, err := c.newRequest(ctx, http.MethodGet, p, nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("controller client: GET %s: %w", p, err)
	}
	if resp.StatusCode/100 != 2 {
		defer resp.Body.Close()
		return nil, httpjson.ReadError(resp)
	}
	return &JobLogStream{body: resp.Body, dec: json.NewDecoder(bufio.NewReader(resp.Body))}, nil
}

// StopJob asks the job's host to stop it: SIGTERM, then SIGKILL after its
// grace period. The scheduler replaces a job its formation still wants.
func (c *Client) StopJob(ctx context.Context, app, jobID string) error {
	return c.do(ctx, http.MethodDelete, path("apps", app, "jobs", jobID), nil, nil)
}

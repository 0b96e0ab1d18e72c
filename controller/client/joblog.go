package client

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"

	hostclient "github.com/openflynn/flynn/host/client"
	"github.com/openflynn/flynn/logaggregator"
	logclient "github.com/openflynn/flynn/logaggregator/client"
	"github.com/openflynn/flynn/pkg/httpjson"
)

// JobLogOptions select the lines of a job's log.
type JobLogOptions struct {
	// Follow keeps the stream open until the job ends.
	Follow bool
	// Tail starts with only the last Tail lines (0: all).
	Tail int
}

// JobLog opens the log of one job of an app.
// Its lines are the host's, passed through: a host.LogLine each.
func (c *Client) JobLog(ctx context.Context, app, jobID string, opts JobLogOptions) (*hostclient.LogStream, error) {
	q := url.Values{}
	if opts.Follow {
		q.Set("follow", "true")
	}
	if opts.Tail > 0 {
		q.Set("tail", strconv.Itoa(opts.Tail))
	}
	body, err := c.openStream(ctx, path("apps", app, "jobs", jobID, "log"), q)
	if err != nil {
		return nil, err
	}
	return hostclient.NewLogStream(body), nil
}

// openStream GETs p with query q and returns the answer's body, to be
// read as it comes and closed by the caller.
func (c *Client) openStream(ctx context.Context, p string, q url.Values) (io.ReadCloser, error) {
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
	return resp.Body, nil
}

// StopJob asks the job's host to stop it: SIGTERM, then SIGKILL after its
// grace period. The scheduler replaces a job its formation still wants.
func (c *Client) StopJob(ctx context.Context, app, jobID string) error {
	return c.do(ctx, http.MethodDelete, path("apps", app, "jobs", jobID), nil, nil)
}

// AppLog opens an app's log as the log aggregator keeps it: every job's
// lines and the router's, oldest first, selected by opts; with
// opts.Follow it stays open, sending lines as they come, until ctx ends
// or the stream is closed.
func (c *Client) AppLog(ctx context.Context, app string, opts logaggregator.ReadOptions) (*logclient.Stream, error) {
	body, err := c.openStream(ctx, path("apps", app, "log"), opts.Query())
	if err != nil {
		return nil, err
	}
	return logclient.NewStream(body), nil
}

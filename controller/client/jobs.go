package client

import (
	"context"
	"fmt"
	"io"
	"net/http"

	"github.com/openflynn/flynn/controller"
	"github.com/openflynn/flynn/pkg/httpjson"
)

func notFound(what string) error { return httpjson.NotFound("%s not found", what) }

// PutJob records a job's state (the scheduler does, as hosts report them).
func (c *Client) PutJob(ctx context.Context, j *controller.Job) error {
	return c.do(ctx, http.MethodPut, path("apps", j.AppID, "jobs", j.ID), j, j)
}

// Job returns one job of an app.
func (c *Client) Job(ctx context.Context, app, id string) (*controller.Job, error) {
	var j controller.Job
	return &j, c.do(ctx, http.MethodGet, path("apps", app, "jobs", id), nil, &j)
}

// Jobs lists an app's jobs, oldest first.
func (c *Client) Jobs(ctx context.Context, app string) ([]*controller.Job, error) {
	return listAll[*controller.Job](ctx, c, path("apps", app, "jobs"))
}

// ActiveJobs lists an app's jobs that have not ended, oldest first.
func (c *Client) ActiveJobs(ctx context.Context, app string) ([]*controller.Job, error) {
	return listAll[*controller.Job](ctx, c, path("apps", app, "jobs")+"?active=true")
}

// RunJob starts a one-off job of an app, detached.
func (c *Client) RunJob(ctx context.Context, app string, req *controller.NewJob) (*controller.Job, error) {
	var j controller.Job
	return &j, c.do(ctx, http.MethodPost, path("apps", app, "jobs"), req, &j)
}

// AttachedJob is a one-off job whose input and output stay with the caller.
type AttachedJob struct {
	// JobID is the host's job id.
	JobID string
	// ReadWriteCloser is the host's attach stream, passed through the
	// controller byte for byte; closing it detaches.
	io.ReadWriteCloser
}

// RunJobAttached starts a one-off job attached to the returned stream; the
// job does not start producing output before the stream exists, so none is
// lost. The stream outlives ctx only until ctx ends.
func (c *Client) RunJobAttached(ctx context.Context, app string, req *controller.NewJob) (*AttachedJob, error) {
	p := path("apps", app, "jobs")
	hreq, err := c.newRequest(ctx, http.MethodPost, p, req)
	if err != nil {
		return nil, err
	}
	hreq.Header.Set("Connection", "Upgrade")
	hreq.Header.Set("Upgrade", controller.AttachUpgrade)
	resp, err := c.http.Do(hreq)
	if err != nil {
		return nil, fmt.Errorf("controller client: POST %s: %w", p, err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		defer resp.Body.Close()
		if resp.StatusCode/100 != 2 {
			return nil, httpjson.ReadError(resp)
		}
		return nil, fmt.Errorf("controller client: POST %s: want 101 Switching Protocols, got %s", p, resp.Status)
	}
	// Since Go 1.12 the body of a 101 response is the connection itself.
	rwc, ok := resp.Body.(io.ReadWriteCloser)
	if !ok {
		resp.Body.Close()
		return nil, fmt.Errorf("controller client: POST %s: upgraded body is not writable", p)
	}
	return &AttachedJob{JobID: resp.Header.Get(controller.JobIDHeader), ReadWriteCloser: rwc}, nil
}

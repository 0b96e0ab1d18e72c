package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/openflynn/flynn/controller"
)

// DeploymentWatch follows an app's deployments and jobs on the event
// stream, so that a client learns how a deployment ends (and sees its jobs
// crash) as the scheduler reports it, without polling. Open it before the
// deploy it waits for: every event after that is in the stream.
type DeploymentWatch struct {
	c      *Client
	events <-chan *controller.Event
	cancel context.CancelFunc
}

// WatchDeployments opens the app's (its id) stream of deployment and job
// events. Close it when done.
func (c *Client) WatchDeployments(ctx context.Context, appID string) (*DeploymentWatch, error) {
	ctx, cancel := context.WithCancel(ctx)
	events, err := c.StreamEvents(ctx, controller.EventFilter{AppID: appID, ObjectTypes: []string{controller.ObjectTypeDeployment, controller.ObjectTypeJob}})
	if err != nil {
		cancel()
		return nil, err
	}
	return &DeploymentWatch{c: c, events: events, cancel: cancel}, nil
}

// Wait follows d until it is complete or failed and returns it so. onJob,
// when not nil, gets every change of a job of d's new release as it comes.
// A failed deployment is returned with a nil error: the caller reports it.
func (w *DeploymentWatch) Wait(ctx context.Context, d *controller.Deployment, onJob func(*controller.Job)) (*controller.Deployment, error) {
	for !DeploymentFinished(d) {
		select {
		case <-ctx.Done():
			return d, ctx.Err()
		case e, ok := <-w.events:
			if !ok {
				return d, errors.New("controller client: the event stream ended before the deployment did")
			}
			switch e.ObjectType {
			case controller.ObjectTypeDeployment:
				if e.ObjectID != d.ID {
					continue
				}
				var next controller.Deployment
				if err := json.Unmarshal(e.Data, &next); err != nil {
					return d, fmt.Errorf("controller client: deployment event %d: %w", e.ID, err)
				}
				d = &next
			case controller.ObjectTypeJob:
				var j controller.Job
				if err := json.Unmarshal(e.Data, &j); err != nil {
					return d, fmt.Errorf("controller client: job event %d: %w", e.ID, err)
				}
				if onJob != nil && j.ReleaseID == d.NewReleaseID {
					onJob(&j)
				}
			}
		}
	}
	return d, nil
}

// Close ends the watch and waits for its stream to stop.
func (w *DeploymentWatch) Close() {
	w.cancel()
	for range w.events {
	}
}

// DeploymentFinished reports whether d is complete or failed.
func DeploymentFinished(d *controller.Deployment) bool {
	return d.Status == controller.DeploymentComplete || d.Status == controller.DeploymentFailed
}

// LastLines returns up to n of the last lines a job of an app wrote,
// stdout and stderr merged, each ending in a newline: what to show of a
// job that crashed.
func (c *Client) LastLines(ctx context.Context, app, jobID string, n int) ([]string, error) {
	stream, err := c.JobLog(ctx, app, jobID, JobLogOptions{Tail: n})
	if err != nil {
		return nil, err
	}
	defer stream.Close()
	var lines []string
	for {
		l, err := stream.Next()
		if errors.Is(err, io.EOF) {
			return lines, nil
		}
		if err != nil {
			return lines, err
		}
		data := l.Data
		if !strings.HasSuffix(data, "\n") {
			data += "\n"
		}
		lines = append(lines, data)
	}
}

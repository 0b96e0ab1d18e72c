package client

import (
	"context"
	"net/http"

	"github.com/openflynn/flynn/controller"
)

// CreateLogDrain adds a drain sending an app's log to url (see
// controller.LogDrain for the URLs a drain takes).
func (c *Client) CreateLogDrain(ctx context.Context, app, url string) (*controller.LogDrain, error) {
	var d controller.LogDrain
	return &d, c.do(ctx, http.MethodPost, path("apps", app, "drains"), &controller.NewLogDrain{URL: url}, &d)
}

// AppLogDrains lists an app's log drains.
func (c *Client) AppLogDrains(ctx context.Context, app string) ([]*controller.LogDrain, error) {
	return listAll[*controller.LogDrain](ctx, c, path("apps", app, "drains"))
}

// LogDrains lists every app's log drains (the log aggregator's view; it
// needs the controller key).
func (c *Client) LogDrains(ctx context.Context) ([]*controller.LogDrain, error) {
	return listAll[*controller.LogDrain](ctx, c, "/drains")
}

// DeleteLogDrain removes a log drain of an app and returns it.
func (c *Client) DeleteLogDrain(ctx context.Context, app, id string) (*controller.LogDrain, error) {
	var d controller.LogDrain
	return &d, c.do(ctx, http.MethodDelete, path("apps", app, "drains", id), nil, &d)
}

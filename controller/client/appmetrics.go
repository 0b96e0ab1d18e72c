package client

import (
	"context"
	"net/http"

	"github.com/openflynn/flynn/controller"
)

// AppMetrics reads what the cluster's routers have counted of an app's
// HTTP requests: totals since each router started, which two readings
// turn into rates.
func (c *Client) AppMetrics(ctx context.Context, app string) (*controller.AppMetrics, error) {
	var m controller.AppMetrics
	if err := c.do(ctx, http.MethodGet, path("apps", app, "metrics"), nil, &m); err != nil {
		return nil, err
	}
	return &m, nil
}

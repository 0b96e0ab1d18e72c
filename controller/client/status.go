package client

import (
	"context"
	"net/http"

	"github.com/openflynn/flynn/controller"
)

// Status returns the controller's version and settings. A controller
// older than GET /status answers not_found (httpjson.IsNotFound).
func (c *Client) Status(ctx context.Context) (*controller.Status, error) {
	var st controller.Status
	return &st, c.do(ctx, http.MethodGet, "/status", nil, &st)
}

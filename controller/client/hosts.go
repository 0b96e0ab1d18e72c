package client

import (
	"context"
	"net/http"

	"github.com/openflynn/flynn/controller"
)

// Hosts lists the cluster's nodes: every flynn-host registered in
// discoverd, with its address, status and count of active jobs.
func (c *Client) Hosts(ctx context.Context) ([]*controller.Host, error) {
	var hosts []*controller.Host
	return hosts, c.do(ctx, http.MethodGet, "/hosts", nil, &hosts)
}

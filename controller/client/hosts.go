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

// HostsWithStats is Hosts with what each reachable host's running jobs
// use (Host.Stats, summed CPU and memory); a host that does not answer
// its stats within a few seconds has none.
func (c *Client) HostsWithStats(ctx context.Context) ([]*controller.Host, error) {
	var hosts []*controller.Host
	return hosts, c.do(ctx, http.MethodGet, "/hosts?stats=true", nil, &hosts)
}

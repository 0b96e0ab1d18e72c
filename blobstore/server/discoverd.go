package server

import (
	"context"

	"github.com/openflynn/flynn/discoverd"
	"github.com/openflynn/flynn/discoverd/client"
)

// DiscoverdRegistrar registers the blobstore through discoverd's Go client,
// which heartbeats the registration until it is withdrawn.
type DiscoverdRegistrar struct {
	Client *client.Client
}

var _ Registrar = DiscoverdRegistrar{}

// Register implements Registrar.
func (d DiscoverdRegistrar) Register(ctx context.Context, inst *discoverd.Instance) (Deregisterer, error) {
	reg, err := d.Client.Register(ctx, ServiceName, inst)
	if err != nil {
		return nil, err
	}
	return reg, nil
}

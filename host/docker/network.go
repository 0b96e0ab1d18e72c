package docker

import (
	"context"
	"fmt"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/network"

	"github.com/openflynn/flynn/host/daemon"
)

// Options of the app network's bridge driver.
const (
	optBridgeName = "com.docker.network.bridge.name"
	optICC        = "com.docker.network.bridge.enable_icc"
)

// EnsureNetwork creates the app network, a bridge without traffic between
// its containers (they reach each other only through the router), unless
// it exists. An existing network must be a bridge on the same interface,
// since that is what the firewall filters.
func (b *Backend) EnsureNetwork(ctx context.Context, n daemon.AppNetwork) error {
	for range 2 {
		info, err := b.c.NetworkInspect(ctx, n.Name, network.InspectOptions{})
		if err == nil {
			return checkNetwork(info, n)
		}
		if !cerrdefs.IsNotFound(err) {
			return fmt.Errorf("inspect network: %w", err)
		}
		_, err = b.c.NetworkCreate(ctx, n.Name, network.CreateOptions{
			Driver: "bridge",
			Options: map[string]string{
				optBridgeName: n.Bridge,
				optICC:        "false",
			},
			Labels: map[string]string{"flynn.network": "apps"},
		})
		if err == nil {
			return nil
		}
		if !cerrdefs.IsConflict(err) {
			return fmt.Errorf("create network: %w", err)
		}
		// Another daemon created it meanwhile: check it.
	}
	return fmt.Errorf("network %s: created and gone again", n.Name)
}

func checkNetwork(info network.Inspect, n daemon.AppNetwork) error {
	if info.Driver != "bridge" || info.Options[optBridgeName] != n.Bridge {
		return fmt.Errorf("network %s exists with driver %q on bridge %q, want bridge %q: remove it or name another",
			n.Name, info.Driver, info.Options[optBridgeName], n.Bridge)
	}
	if info.Options[optICC] != "false" {
		return fmt.Errorf("network %s lets its containers talk to each other (%s is not false): remove it so it is created again", n.Name, optICC)
	}
	return nil
}

// ContainerIP returns the container's address on the (one) network it is
// on, or "" on the host network or when it has none yet.
func (b *Backend) ContainerIP(ctx context.Context, id string) (string, error) {
	info, err := b.c.ContainerInspect(ctx, id)
	if err != nil {
		if cerrdefs.IsNotFound(err) {
			return "", fmt.Errorf("%w: %s", daemon.ErrContainerNotFound, id)
		}
		return "", fmt.Errorf("inspect container: %w", err)
	}
	if info.NetworkSettings == nil {
		return "", nil
	}
	for _, ep := range info.NetworkSettings.Networks {
		if ep != nil && ep.IPAddress != "" {
			return ep.IPAddress, nil
		}
	}
	return "", nil
}

package docker

import (
	"context"
	"fmt"
	"net"

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
// it exists, and returns its gateway. An existing network must be a bridge
// on the same interface, since that is what the firewall filters.
func (b *Backend) EnsureNetwork(ctx context.Context, n daemon.AppNetwork) (string, error) {
	created := false
	for range 3 {
		info, err := b.c.NetworkInspect(ctx, n.Name, network.InspectOptions{})
		if err == nil {
			if err := checkNetwork(info, n); err != nil {
				return "", err
			}
			return gateway(info), nil
		}
		if !cerrdefs.IsNotFound(err) {
			return "", fmt.Errorf("inspect network: %w", err)
		}
		if created {
			break
		}
		_, err = b.c.NetworkCreate(ctx, n.Name, network.CreateOptions{
			Driver: "bridge",
			Options: map[string]string{
				optBridgeName: n.Bridge,
				optICC:        "false",
			},
			Labels: map[string]string{"flynn.network": "apps"},
		})
		if err != nil && !cerrdefs.IsConflict(err) {
			return "", fmt.Errorf("create network: %w", err)
		}
		// Created, by this call or by another daemon meanwhile: inspect
		// it for its gateway (and, if another's, check it).
		created = true
	}
	return "", fmt.Errorf("network %s: created and gone again", n.Name)
}

// gateway is the network's first IPv4 gateway, "" when it has none.
func gateway(info network.Inspect) string {
	for _, c := range info.IPAM.Config {
		if ip := net.ParseIP(c.Gateway); ip != nil && ip.To4() != nil {
			return ip.String()
		}
	}
	return ""
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

package scheduler

import (
	"context"
	"log/slog"
	"maps"
	"sync"

	"github.com/openflynn/flynn/discoverd"
	hostclient "github.com/openflynn/flynn/host/client"
)

// HostService is the discoverd service flynn-host registers in; an
// instance's address is its host API and meta "id" its host id.
const HostService = "flynn-host"

// Watcher is the part of the discoverd client the scheduler uses.
type Watcher interface {
	Watch(ctx context.Context, service string) (<-chan *discoverd.Event, error)
}

// DiscoverdCluster follows the hosts registered in discoverd.
type DiscoverdCluster struct {
	key     string
	log     *slog.Logger
	changed chan struct{}

	mu    sync.Mutex
	hosts map[string]HostClient
}

var _ Cluster = (*DiscoverdCluster)(nil)

// WatchHosts follows discoverd's flynn-host service until ctx ends; key is
// the cluster key the host APIs need.
func WatchHosts(ctx context.Context, d Watcher, key string, logger *slog.Logger) (*DiscoverdCluster, error) {
	events, err := d.Watch(ctx, HostService)
	if err != nil {
		return nil, err
	}
	c := &DiscoverdCluster{key: key, log: logger, changed: make(chan struct{}, 1), hosts: map[string]HostClient{}}
	go c.follow(events)
	return c, nil
}

func (c *DiscoverdCluster) follow(events <-chan *discoverd.Event) {
	pending := map[string]HostClient{} // the set being rebuilt after a (re)connect
	rebuilding := true
	for e := range events {
		switch e.Kind {
		case discoverd.EventUp, discoverd.EventUpdate:
			id := e.Instance.Meta["id"]
			if id == "" {
				continue
			}
			if rebuilding {
				pending[id] = c.client(id, e.Instance.Addr)
				continue
			}
			hc := c.client(id, e.Instance.Addr)
			c.mu.Lock()
			c.hosts[id] = hc
			c.mu.Unlock()
			c.log.Info("host up", "host.id", id, "addr", e.Instance.Addr)
		case discoverd.EventDown:
			id := e.Instance.Meta["id"]
			c.mu.Lock()
			delete(c.hosts, id)
			c.mu.Unlock()
			c.log.Info("host down", "host.id", id, "addr", e.Instance.Addr)
		case discoverd.EventCurrent:
			c.mu.Lock()
			c.hosts = pending
			c.mu.Unlock()
			pending = map[string]HostClient{}
			rebuilding = false
		default:
			continue
		}
		select {
		case c.changed <- struct{}{}:
		default:
		}
	}
}

// client returns the host API client of host id at addr: the one the set
// holds when the address is unchanged, so that the scheduler goes on
// following the host without listing it again.
func (c *DiscoverdCluster) client(id, addr string) HostClient {
	c.mu.Lock()
	defer c.mu.Unlock()
	if h, ok := c.hosts[id].(*hostAPI); ok && h.addr == addr {
		return h
	}
	return &hostAPI{Client: hostclient.New("http://"+addr, c.key), addr: addr}
}

// Hosts returns the live hosts by id.
func (c *DiscoverdCluster) Hosts() map[string]HostClient {
	c.mu.Lock()
	defer c.mu.Unlock()
	return maps.Clone(c.hosts)
}

// Changed receives a value when the host set changes.
func (c *DiscoverdCluster) Changed() <-chan struct{} { return c.changed }

// hostAPI is a HostClient over a host's HTTP API.
type hostAPI struct {
	*hostclient.Client
	addr string
}

var _ HostClient = (*hostAPI)(nil)

// Events opens the host's stream of every job's events.
func (h *hostAPI) Events(ctx context.Context) (EventStream, error) {
	s, err := h.Client.Events(ctx, "")
	if err != nil {
		return nil, err
	}
	return s, nil
}

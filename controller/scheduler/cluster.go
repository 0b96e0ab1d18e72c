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
	Instances(ctx context.Context, service string) ([]*discoverd.Instance, error)
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
	go c.follow(ctx, d, events)
	return c, nil
}

// follow applies the watch's events to the host set. The watch starts over
// after a reconnect (ups of the live instances, then EventCurrent), and
// nothing marks where a replay begins, so at each EventCurrent the set is
// made anew from a listing (or, if that fails, from the ups since the last
// EventCurrent on top of the set): a host missing from a replay must not
// leave the set only because its up came before the last EventCurrent.
func (c *DiscoverdCluster) follow(ctx context.Context, d Watcher, events <-chan *discoverd.Event) {
	seen := map[string]HostClient{} // ups since the last EventCurrent
	first := true
	for e := range events {
		switch e.Kind {
		case discoverd.EventUp, discoverd.EventUpdate:
			id := e.Instance.Meta["id"]
			if id == "" {
				continue
			}
			hc := c.client(id, e.Instance.Addr)
			seen[id] = hc
			if first {
				continue
			}
			c.mu.Lock()
			_, known := c.hosts[id]
			c.hosts[id] = hc
			c.mu.Unlock()
			if !known {
				c.log.Info("host up", "host.id", id, "addr", e.Instance.Addr)
			}
		case discoverd.EventDown:
			id := e.Instance.Meta["id"]
			delete(seen, id)
			c.mu.Lock()
			delete(c.hosts, id)
			c.mu.Unlock()
			c.log.Info("host down", "host.id", id, "addr", e.Instance.Addr)
		case discoverd.EventCurrent:
			set := seen
			if insts, err := d.Instances(ctx, HostService); err == nil {
				set = map[string]HostClient{}
				for _, inst := range insts {
					if id := inst.Meta["id"]; id != "" {
						set[id] = c.client(id, inst.Addr)
					}
				}
			} else if !first {
				c.mu.Lock()
				set = maps.Clone(c.hosts)
				c.mu.Unlock()
				maps.Copy(set, seen)
			}
			c.mu.Lock()
			for id := range c.hosts {
				if _, ok := set[id]; !ok {
					c.log.Info("host down", "host.id", id)
				}
			}
			c.hosts = set
			c.mu.Unlock()
			seen = map[string]HostClient{}
			first = false
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

// Package discoverdbackends gives the router the live instances of a
// discoverd service as complete sets, built from discoverd's watch stream.
//
// discoverd's stream sends "up" for every live instance and then "current",
// then "up", "down" and "update" as they happen; after a reconnect it sends
// the full set again followed by "current". Instances that went down while
// the stream was broken get no "down", so on every "current" the set is
// rebuilt from the instance list rather than patched.
package discoverdbackends

import (
	"context"
	"fmt"
	"sort"

	"github.com/openflynn/flynn/discoverd"
	"github.com/openflynn/flynn/discoverd/client"
	"github.com/openflynn/flynn/router"
)

// Discoverd is what this package needs of discoverd/client.Client.
type Discoverd interface {
	// Watch streams a service's events; the channel closes when ctx ends.
	Watch(ctx context.Context, service string) (<-chan *discoverd.Event, error)
	// Instances lists a service's live instances.
	Instances(ctx context.Context, service string) ([]*discoverd.Instance, error)
}

var _ Discoverd = (*client.Client)(nil)

// Source is a server.BackendSource over discoverd.
type Source struct {
	d Discoverd
}

// New returns a Source reading from d (a *discoverd/client.Client).
func New(d Discoverd) *Source { return &Source{d: d} }

// WatchBackends sends the full set of service's live instances once
// discoverd has reported it, and again after every change. The channel
// closes when ctx ends (or when discoverd's stream does).
func (s *Source) WatchBackends(ctx context.Context, service string) (<-chan []router.Backend, error) {
	events, err := s.d.Watch(ctx, service)
	if err != nil {
		return nil, fmt.Errorf("watch service %s: %w", service, err)
	}
	out := make(chan []router.Backend)
	go func() {
		defer close(out)
		set := map[string]router.Backend{}
		current := false
		for ev := range events {
			changed := false
			switch ev.Kind {
			case discoverd.EventUp, discoverd.EventUpdate:
				if ev.Instance != nil {
					set[ev.Instance.ID] = router.Backend{ID: ev.Instance.ID, Addr: ev.Instance.Addr}
					changed = true
				}
			case discoverd.EventDown:
				if ev.Instance != nil {
					delete(set, ev.Instance.ID)
					changed = true
				}
			case discoverd.EventCurrent:
				current, changed = true, true
				list, err := s.d.Instances(ctx, service)
				if err == nil {
					set = map[string]router.Backend{}
					for _, inst := range list {
						set[inst.ID] = router.Backend{ID: inst.ID, Addr: inst.Addr}
					}
				}
				// On error keep the set built from the stream's ups: it
				// is right unless instances died during a disconnection.
			}
			if !current || !changed {
				continue
			}
			select {
			case out <- sorted(set):
			case <-ctx.Done():
				return
			}
		}
	}()
	return out, nil
}

func sorted(set map[string]router.Backend) []router.Backend {
	out := make([]router.Backend, 0, len(set))
	for _, b := range set {
		out = append(out, b)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/openflynn/flynn/discoverd"
)

// Watch sends service's events to send until ctx ends, send fails, the
// service is removed (ErrServiceNotFound) or etcd fails. It starts with an
// EventUp for every live instance, then EventCurrent, then EventLeader when
// there is a leader, and goes on from the revision the initial set was read
// at, so no change falls between the two.
//
// A service that does not exist yet is watched as an empty one: its
// instances arrive as they register. The router follows the service of an
// app's route from the app's creation, long before its first job
// registers (and creates the service); a watch that failed until then
// would learn of that job only at its next retry.
func (s *Store) Watch(ctx context.Context, service string, send func(*discoverd.Event) error) error {
	list, rev, err := s.Instances(ctx, service)
	if errors.Is(err, ErrServiceNotFound) {
		list, rev, err = nil, 0, nil
		resp, gerr := s.kv.Get(ctx, s.serviceKey(service), clientv3.WithCountOnly())
		if gerr != nil {
			return fmt.Errorf("watch service %s: %w", service, gerr)
		}
		rev = resp.Header.Revision
	}
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
	defer cancel()
	instances := clientv3.NewWatcher(s.etcd)
	defer instances.Close()
	opened := time.Now()
	changes := instances.Watch(ctx, s.instancesPrefix(service), clientv3.WithPrefix(), clientv3.WithPrevKV(), clientv3.WithRev(rev+1), clientv3.WithCreatedNotify())
	removal := instances.Watch(ctx, s.serviceKey(service), clientv3.WithRev(rev+1), clientv3.WithFilterPut())

	set := newInstanceSet(list)
	for _, inst := range list {
		if err := send(&discoverd.Event{Service: service, Kind: discoverd.EventUp, Instance: inst}); err != nil {
			return err
		}
	}
	if err := send(&discoverd.Event{Service: service, Kind: discoverd.EventCurrent}); err != nil {
		return err
	}
	if leader := set.leader(); leader != nil {
		if err := send(&discoverd.Event{Service: service, Kind: discoverd.EventLeader, Instance: leader}); err != nil {
			return err
		}
	}
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case resp, ok := <-removal:
			if !ok {
				return ctx.Err()
			}
			if err := resp.Err(); err != nil {
				return fmt.Errorf("watch service %s: %w", service, err)
			}
			if len(resp.Events) > 0 {
				return ErrServiceNotFound
			}
		case resp, ok := <-changes:
			if !ok {
				return ctx.Err()
			}
			if err := resp.Err(); err != nil {
				return fmt.Errorf("watch instances of %s: %w", service, err)
			}
			if resp.Created {
				s.observe(OpWatchOpen, opened)
			}
			for _, ev := range resp.Events {
				e, err := set.apply(service, ev)
				if err != nil || e == nil {
					continue
				}
				if err := send(e); err != nil {
					return err
				}
				if leader, changed := set.leaderChanged(); changed && leader != nil {
					if err := send(&discoverd.Event{Service: service, Kind: discoverd.EventLeader, Instance: leader}); err != nil {
						return err
					}
				}
			}
		}
	}
}

// instanceSet is a watcher's view of a service, used to tell ups from
// updates and to notice leader changes.
type instanceSet struct {
	byID       map[string]*discoverd.Instance
	lastLeader string
}

func newInstanceSet(list []*discoverd.Instance) *instanceSet {
	s := &instanceSet{byID: make(map[string]*discoverd.Instance, len(list))}
	for _, inst := range list {
		s.byID[inst.ID] = inst
	}
	if l := s.leader(); l != nil {
		s.lastLeader = l.ID
	}
	return s
}

func (s *instanceSet) apply(service string, ev *clientv3.Event) (*discoverd.Event, error) {
	switch ev.Type {
	case clientv3.EventTypePut:
		inst, err := decodeInstance(ev.Kv)
		if err != nil {
			return nil, err
		}
		kind := discoverd.EventUp
		if _, known := s.byID[inst.ID]; known {
			kind = discoverd.EventUpdate
		}
		s.byID[inst.ID] = inst
		return &discoverd.Event{Service: service, Kind: kind, Instance: inst}, nil
	case clientv3.EventTypeDelete:
		if ev.PrevKv == nil {
			return nil, nil
		}
		inst, err := decodeInstance(ev.PrevKv)
		if err != nil {
			return nil, err
		}
		if _, known := s.byID[inst.ID]; !known {
			return nil, nil
		}
		delete(s.byID, inst.ID)
		return &discoverd.Event{Service: service, Kind: discoverd.EventDown, Instance: inst}, nil
	}
	return nil, nil
}

func (s *instanceSet) leader() *discoverd.Instance {
	var leader *discoverd.Instance
	for _, inst := range s.byID {
		if leader == nil || inst.Index < leader.Index {
			leader = inst
		}
	}
	return leader
}

// leaderChanged reports the current leader and whether it differs from the
// one last reported.
func (s *instanceSet) leaderChanged() (*discoverd.Instance, bool) {
	l := s.leader()
	id := ""
	if l != nil {
		id = l.ID
	}
	if id == s.lastLeader {
		return l, false
	}
	s.lastLeader = id
	return l, true
}

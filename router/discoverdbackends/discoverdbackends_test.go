package discoverdbackends

import (
	"context"
	"reflect"
	"testing"
	"time"

	"github.com/openflynn/flynn/discoverd"
	"github.com/openflynn/flynn/router"
)

// fakeDiscoverd replays scripted events and answers Instances from a list.
type fakeDiscoverd struct {
	events    chan *discoverd.Event
	instances []*discoverd.Instance
}

func (f *fakeDiscoverd) Watch(ctx context.Context, service string) (<-chan *discoverd.Event, error) {
	return f.events, nil
}

func (f *fakeDiscoverd) Instances(ctx context.Context, service string) ([]*discoverd.Instance, error) {
	return f.instances, nil
}

func inst(id string) *discoverd.Instance { return &discoverd.Instance{ID: id, Addr: "127.0.0.1:" + id} }

func be(ids ...string) []router.Backend {
	out := []router.Backend{}
	for _, id := range ids {
		out = append(out, router.Backend{ID: id, Addr: "127.0.0.1:" + id})
	}
	return out
}

func TestWatchBackends(t *testing.T) {
	f := &fakeDiscoverd{events: make(chan *discoverd.Event, 20)}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sets, err := New(f).WatchBackends(ctx, "web")
	if err != nil {
		t.Fatal(err)
	}
	next := func() []router.Backend {
		t.Helper()
		select {
		case s := <-sets:
			return s
		case <-time.After(5 * time.Second):
			t.Fatal("no backend set sent")
			return nil
		}
	}
	send := func(kind discoverd.EventKind, i *discoverd.Instance) {
		f.events <- &discoverd.Event{Service: "web", Kind: kind, Instance: i}
	}

	// Nothing is sent before "current"; then the instance list is the set.
	f.instances = []*discoverd.Instance{inst("1"), inst("2")}
	send(discoverd.EventUp, inst("1"))
	send(discoverd.EventUp, inst("2"))
	send(discoverd.EventCurrent, nil)
	if got := next(); !reflect.DeepEqual(got, be("1", "2")) {
		t.Fatalf("first set = %v, want 1 and 2", got)
	}
	send(discoverd.EventUp, inst("3"))
	if got := next(); !reflect.DeepEqual(got, be("1", "2", "3")) {
		t.Fatalf("after up = %v", got)
	}
	send(discoverd.EventDown, inst("1"))
	if got := next(); !reflect.DeepEqual(got, be("2", "3")) {
		t.Fatalf("after down = %v", got)
	}
	send(discoverd.EventLeader, inst("2"))
	// A reconnect: 3 died meanwhile and got no "down"; "current" rebuilds.
	f.instances = []*discoverd.Instance{inst("2")}
	send(discoverd.EventUp, inst("2"))
	if got := next(); !reflect.DeepEqual(got, be("2", "3")) {
		t.Fatalf("after repeated up = %v", got)
	}
	send(discoverd.EventCurrent, nil)
	if got := next(); !reflect.DeepEqual(got, be("2")) {
		t.Fatalf("after reconnect current = %v, want only 2", got)
	}
	close(f.events)
	if _, ok := <-sets; ok {
		t.Error("set channel still open after the event stream closed")
	}
}

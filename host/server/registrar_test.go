package server

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/openflynn/flynn/discoverd"
	"github.com/openflynn/flynn/pkg/httpjson"
	"github.com/openflynn/flynn/pkg/poll"
)

// fakeDiscoverd is one discoverd in memory: services of instances (that
// never expire), a count of writes per instance, and watchers told of
// every change. While down it refuses every call.
type fakeDiscoverd struct {
	mu       sync.Mutex
	down     bool
	services map[string]map[string]*discoverd.Instance
	writes   map[string]int // "service/id" → RegisterOnce calls
	adds     int            // AddService calls
	watchers []chan struct{}
}

var _ discoverdAPI = (*fakeDiscoverd)(nil)

func newFakeDiscoverd() *fakeDiscoverd {
	return &fakeDiscoverd{services: map[string]map[string]*discoverd.Instance{}, writes: map[string]int{}}
}

var errRefused = errors.New("connection refused")

func (f *fakeDiscoverd) setDown(down bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.down = down
}

func (f *fakeDiscoverd) AddService(_ context.Context, service string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.down {
		return errRefused
	}
	f.adds++
	if f.services[service] == nil {
		f.services[service] = map[string]*discoverd.Instance{}
	}
	return nil
}

func (f *fakeDiscoverd) RegisterOnce(_ context.Context, service string, inst *discoverd.Instance) (*discoverd.Instance, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.down {
		return nil, errRefused
	}
	insts := f.services[service]
	if insts == nil {
		return nil, httpjson.NotFound("service %s not found", service)
	}
	in := *inst
	_, had := insts[in.ID]
	insts[in.ID] = &in
	f.writes[service+"/"+in.ID]++
	if !had {
		f.notifyLocked()
	}
	return &in, nil
}

func (f *fakeDiscoverd) Deregister(_ context.Context, service, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.down {
		return errRefused
	}
	delete(f.services[service], id)
	f.notifyLocked()
	return nil
}

func (f *fakeDiscoverd) Instances(_ context.Context, service string) ([]*discoverd.Instance, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.down {
		return nil, errRefused
	}
	insts, ok := f.services[service]
	if !ok {
		return nil, httpjson.NotFound("service %s not found", service)
	}
	var out []*discoverd.Instance
	for _, in := range insts {
		c := *in
		out = append(out, &c)
	}
	return out, nil
}

// Watch sends an event after each change to any service, until ctx ends.
func (f *fakeDiscoverd) Watch(ctx context.Context, service string) (<-chan *discoverd.Event, error) {
	poke := make(chan struct{}, 1)
	f.mu.Lock()
	f.watchers = append(f.watchers, poke)
	f.mu.Unlock()
	out := make(chan *discoverd.Event)
	go func() {
		defer close(out)
		for {
			select {
			case <-ctx.Done():
				return
			case <-poke:
			}
			select {
			case out <- &discoverd.Event{Service: service, Kind: discoverd.EventUpdate}:
			case <-ctx.Done():
				return
			}
		}
	}()
	return out, nil
}

func (f *fakeDiscoverd) notifyLocked() {
	for _, w := range f.watchers {
		select {
		case w <- struct{}{}:
		default:
		}
	}
}

// has reports whether the service holds the instance.
func (f *fakeDiscoverd) has(service, id string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	_, ok := f.services[service][id]
	return ok
}

// writesOf returns how often the instance was written.
func (f *fakeDiscoverd) writesOf(service, id string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.writes[service+"/"+id]
}

// forget drops every service, as a discoverd on a new etcd would.
func (f *fakeDiscoverd) forget() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.services = map[string]map[string]*discoverd.Instance{}
}

const (
	ownURL  = "http://10.0.0.2:1111"
	joinURL = "http://10.0.0.1:1111"
	// testTTL makes heartbeats go every 500ms.
	testTTL = 1500 * time.Millisecond
)

// twoDiscoverds returns a registrar over the node's own discoverd and the
// one of the node it joined.
func twoDiscoverds(t *testing.T) (r *Registrar, own, join *fakeDiscoverd) {
	own, join = newFakeDiscoverd(), newFakeDiscoverd()
	apis := map[string]discoverdAPI{ownURL: own, joinURL: join}
	// Listed join first: the node's own is preferred wherever it is.
	r = newRegistrar(ownURL, []string{joinURL, ownURL}, apis, testTTL, slog.New(slog.NewTextHandler(io.Discard, nil)))
	return r, own, join
}

func hostInstance(addr string) *discoverd.Instance {
	return &discoverd.Instance{Addr: addr, Proto: "http", Meta: map[string]string{"id": "h-" + addr}}
}

func TestPreferenceOrder(t *testing.T) {
	tests := []struct {
		own  string
		urls []string
		want []string
	}{
		{own: "http://a", urls: []string{"http://a"}, want: []string{"http://a"}},
		{own: "http://a", urls: []string{"http://b", "http://c/", "http://a/", "http://b"}, want: []string{"http://a", "http://b", "http://c"}},
		{own: "http://a", urls: []string{"http://b"}, want: []string{"http://b"}},
		{own: "http://a", urls: nil, want: nil},
	}
	for _, tt := range tests {
		if got := PreferenceOrder(tt.own, tt.urls); !slices.Equal(got, tt.want) {
			t.Errorf("PreferenceOrder(%q, %q) = %q, want %q", tt.own, tt.urls, got, tt.want)
		}
	}
}

// A joining node registers through the node it joins while its own
// discoverd does not answer, moves to its own once it does, and back
// when its own goes away; heartbeats go on throughout.
func TestRegistrarMovesToItsOwnDiscoverdAndBack(t *testing.T) {
	r, own, join := twoDiscoverds(t)
	own.setDown(true)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	inst := hostInstance("10.0.0.2:1113")
	reg, err := r.Register(ctx, "flynn-host", inst)
	if err != nil {
		t.Fatal(err)
	}
	id := discoverd.InstanceID(inst.Proto, inst.Addr)
	if !join.has("flynn-host", id) || r.Current() != joinURL {
		t.Fatalf("registered in %q, want the joined node's discoverd", r.Current())
	}
	poll.Until(t, 5*time.Second, "heartbeats to the joined node's discoverd", func() bool { return join.writesOf("flynn-host", id) >= 3 })

	own.setDown(false)
	poll.Until(t, 10*time.Second, "registration moved to the node's own discoverd", func() bool {
		return own.has("flynn-host", id) && r.Current() == ownURL
	})
	at := own.writesOf("flynn-host", id)
	poll.Until(t, 5*time.Second, "heartbeats to the node's own discoverd", func() bool { return own.writesOf("flynn-host", id) >= at+2 })

	own.setDown(true)
	before := join.writesOf("flynn-host", id)
	poll.Until(t, 10*time.Second, "registration back in the joined node's discoverd", func() bool {
		return r.Current() == joinURL && join.writesOf("flynn-host", id) >= before+3
	})

	if err := reg.Deregister(context.Background()); err != nil {
		t.Fatal(err)
	}
	if join.has("flynn-host", id) {
		t.Fatal("still registered after Deregister")
	}
}

// A discoverd that lost its services (a new etcd) gets them back at the
// next heartbeat.
func TestRegistrarRegistersAgainInADiscoverdThatForgot(t *testing.T) {
	d := newFakeDiscoverd()
	r := newRegistrar(ownURL, []string{ownURL}, map[string]discoverdAPI{ownURL: d}, testTTL, slog.New(slog.DiscardHandler))
	ctx, cancel := context.WithCancel(context.Background())
	inst := &discoverd.Instance{Addr: "10.0.0.2:55000", Proto: "tcp"}
	reg, err := r.Register(ctx, "web", inst)
	if err != nil {
		t.Fatal(err)
	}
	id := discoverd.InstanceID("tcp", inst.Addr)
	d.forget()
	poll.Until(t, 5*time.Second, "registered again", func() bool { return d.has("web", id) })
	// Its context ending (the daemon stopping while its jobs run on)
	// leaves it to its TTL or the next daemon; Deregister removes it even
	// then.
	cancel()
	poll.Holds(t, 2*testTTL, "still registered after its context ended", func() bool { return d.has("web", id) })
	if err := reg.Deregister(context.Background()); err != nil {
		t.Fatal(err)
	}
	if d.has("web", id) {
		t.Fatal("still registered after Deregister")
	}
}

func TestRegistrarFailsWhenNoneAnswers(t *testing.T) {
	r, own, join := twoDiscoverds(t)
	own.setDown(true)
	join.setDown(true)
	_, err := r.Register(context.Background(), "flynn-host", hostInstance("10.0.0.2:1113"))
	if err == nil || !errors.Is(err, errRefused) {
		t.Fatalf("Register with no discoverd answering = %v, want the refusals", err)
	}
	for _, u := range []string{ownURL, joinURL} {
		if !strings.Contains(err.Error(), u) {
			t.Errorf("error %q does not name %s", err, u)
		}
	}
	empty := newRegistrar(ownURL, nil, nil, testTTL, slog.New(slog.DiscardHandler))
	if _, err := empty.Register(context.Background(), "x", hostInstance("a:1")); err == nil {
		t.Fatal("Register without discoverds succeeded")
	}
}

// WatchNodes follows the hosts of the discoverd the registrations are in.
func TestRegistrarWatchesTheNodes(t *testing.T) {
	r, own, join := twoDiscoverds(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	nodes := r.WatchNodes(ctx)
	next := func(want ...string) {
		t.Helper()
		deadline := time.After(10 * time.Second)
		var got []string
		for {
			select {
			case got = <-nodes:
				if slices.Equal(got, want) {
					return
				}
			case <-deadline:
				t.Fatalf("nodes = %q, want %q", got, want)
			}
		}
	}
	// The joined node is in its own discoverd only (they do not share a
	// store here).
	if err := join.AddService(ctx, "flynn-host"); err != nil {
		t.Fatal(err)
	}
	if _, err := join.RegisterOnce(ctx, "flynn-host", &discoverd.Instance{ID: "h1", Addr: "10.0.0.1:1113"}); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Register(ctx, "flynn-host", hostInstance("10.0.0.2:1113")); err != nil {
		t.Fatal(err)
	}
	next("10.0.0.2")
	if err := own.AddService(ctx, "flynn-host"); err != nil {
		t.Fatal(err)
	}
	if _, err := own.RegisterOnce(ctx, "flynn-host", &discoverd.Instance{ID: "h3", Addr: "10.0.0.3:1113"}); err != nil {
		t.Fatal(err)
	}
	next("10.0.0.2", "10.0.0.3")
	own.setDown(true)
	next("10.0.0.1", "10.0.0.2")
	cancel()
	for range nodes { // closed once ctx ends
	}
}

func TestNodeAddrs(t *testing.T) {
	insts := []*discoverd.Instance{{Addr: "10.0.0.2:1113"}, {Addr: "10.0.0.1:1113"}, {Addr: "10.0.0.2:2113"}, {Addr: "bad"}}
	if got, want := nodeAddrs(insts), []string{"10.0.0.1", "10.0.0.2"}; !slices.Equal(got, want) {
		t.Fatalf("nodeAddrs = %q, want %q", got, want)
	}
	if got := nodeAddrs(nil); got == nil || len(got) != 0 {
		t.Fatalf("nodeAddrs(nil) = %#v, want an empty list", got)
	}
}

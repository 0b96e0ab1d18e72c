package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/openflynn/flynn/discoverd"
	discoverdclient "github.com/openflynn/flynn/discoverd/client"
	"github.com/openflynn/flynn/host/daemon"
	"github.com/openflynn/flynn/pkg/httpjson"
)

// hostService is the discoverd service hosts register in.
const hostService = "flynn-host"

// registry is the part of one discoverd's API that registrations use.
type registry interface {
	AddService(ctx context.Context, service string) error
	RegisterOnce(ctx context.Context, service string, inst *discoverd.Instance) (*discoverd.Instance, error)
	Deregister(ctx context.Context, service, id string) error
}

// serviceWatcher is the part of one discoverd's API that following the
// cluster's nodes uses.
type serviceWatcher interface {
	Instances(ctx context.Context, service string) ([]*discoverd.Instance, error)
	Watch(ctx context.Context, service string) (<-chan *discoverd.Event, error)
}

// discoverdAPI is one discoverd as a Registrar uses it;
// *discoverdclient.Client is one.
type discoverdAPI interface {
	registry
	serviceWatcher
}

var _ discoverdAPI = (*discoverdclient.Client)(nil)

// Registrar registers the host and its jobs in one of several discoverds:
// the first that answers, in order of preference, the node's own first.
// Every heartbeat goes to the most preferred discoverd that answers, so
// that a joining node registers through the discoverd of the node it
// joins until its own runs, then moves to its own; and moves to another
// when its own stops answering (a write that fails puts a discoverd last
// for a while, growing while it keeps failing). A registration written to
// a discoverd it was not in is made there afresh (service and instance).
//
// In a cluster every discoverd is a view of the same store, so a
// registration that moves is the same instance; it is not removed from
// the discoverd it leaves, which may not answer, and would remove it
// everywhere if it did.
//
// With one discoverd it behaves as discoverd/client's registrations do.
// It is also a daemon.NodeWatcher: it follows the "flynn-host" service in
// the discoverd its last write went to.
type Registrar struct {
	ttl time.Duration
	log *slog.Logger
	eps []*endpoint // in order of preference

	mu      sync.Mutex
	current int           // the endpoint the last write went to; -1 before any
	moved   chan struct{} // closed, and replaced, when current changes
}

var (
	_ daemon.Registrar   = (*Registrar)(nil)
	_ daemon.NodeWatcher = (*Registrar)(nil)
)

// endpoint is one discoverd and how it has answered lately. Its fields
// but url and api are guarded by Registrar.mu.
type endpoint struct {
	url       string
	api       discoverdAPI
	failures  int       // writes failed in a row
	downUntil time.Time // until then it is tried after the others
}

// NewRegistrar returns a registrar over the discoverds at urls, with own
// (this node's) preferred when urls lists it and the others in their
// order; key is the cluster key and ttl the registrations' (0:
// discoverd.DefaultTTL).
func NewRegistrar(own string, urls []string, key string, ttl time.Duration, logger *slog.Logger) *Registrar {
	apis := map[string]discoverdAPI{}
	for _, u := range urls {
		c := discoverdclient.New(u, key)
		c.Logger = logger
		apis[u] = c
	}
	return newRegistrar(own, urls, apis, ttl, logger)
}

// newRegistrar builds a Registrar over apis, one per url.
func newRegistrar(own string, urls []string, apis map[string]discoverdAPI, ttl time.Duration, logger *slog.Logger) *Registrar {
	if ttl < time.Second {
		ttl = discoverd.DefaultTTL
	}
	r := &Registrar{ttl: ttl, log: logger, current: -1, moved: make(chan struct{})}
	for _, u := range PreferenceOrder(own, urls) {
		r.eps = append(r.eps, &endpoint{url: u, api: apis[u]})
	}
	return r
}

// PreferenceOrder returns urls, without repeats, with own first when it
// is among them.
func PreferenceOrder(own string, urls []string) []string {
	var out []string
	for _, u := range urls {
		u = strings.TrimSuffix(u, "/")
		if u != "" && !slices.Contains(out, u) {
			out = append(out, u)
		}
	}
	own = strings.TrimSuffix(own, "/")
	if i := slices.Index(out, own); i > 0 {
		out = slices.Insert(slices.Delete(out, i, i+1), 0, own)
	}
	return out
}

// Current returns the URL of the discoverd the last write went to, or "".
func (r *Registrar) Current() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.current < 0 {
		return ""
	}
	return r.eps[r.current].url
}

// attemptTimeout bounds one request to one discoverd, so that one that
// hangs costs a heartbeat little of its interval.
func (r *Registrar) attemptTimeout() time.Duration {
	return min(max(r.ttl/5, time.Second), 5*time.Second)
}

// candidates returns the endpoints' indexes in the order to try them: the
// ones not put last, in order of preference, then those put last.
func (r *Registrar) candidates() []int {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := time.Now()
	var up, down []int
	for i, ep := range r.eps {
		if now.Before(ep.downUntil) {
			down = append(down, i)
		} else {
			up = append(up, i)
		}
	}
	return append(up, down...)
}

// write runs fn against each discoverd in turn until one succeeds, and
// returns that one's index.
func (r *Registrar) write(ctx context.Context, fn func(ctx context.Context, i int, api registry) error) (int, error) {
	if len(r.eps) == 0 {
		return -1, errors.New("no discoverd to register in")
	}
	var errs []error
	for _, i := range r.candidates() {
		actx, cancel := context.WithTimeout(ctx, r.attemptTimeout())
		err := fn(actx, i, r.eps[i].api)
		cancel()
		if err == nil {
			r.succeeded(i)
			return i, nil
		}
		if ctx.Err() != nil {
			return -1, ctx.Err()
		}
		r.failed(i)
		errs = append(errs, fmt.Errorf("%s: %w", r.eps[i].url, err))
	}
	return -1, errors.Join(errs...)
}

func (r *Registrar) succeeded(i int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	ep := r.eps[i]
	ep.failures, ep.downUntil = 0, time.Time{}
	if r.current == i {
		return
	}
	from := ""
	if r.current >= 0 {
		from = r.eps[r.current].url
	}
	r.current = i
	close(r.moved)
	r.moved = make(chan struct{})
	if from == "" {
		r.log.Info("registering in discoverd", "discoverd", ep.url)
	} else {
		r.log.Warn("registering in another discoverd", "discoverd", ep.url, "was", from)
	}
}

func (r *Registrar) failed(i int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	ep := r.eps[i]
	if time.Now().Before(ep.downUntil) {
		return // already put last: other registrations' failures count once
	}
	ep.failures++
	ep.downUntil = time.Now().Add(min(time.Second<<min(ep.failures-1, 4), 10*time.Second))
}

// movedChan returns the channel closed when the current discoverd changes.
func (r *Registrar) movedChan() <-chan struct{} {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.moved
}

// Register registers inst in service (its ID defaults to
// discoverd.InstanceID) and heartbeats it until ctx ends or Deregister.
// Deregister removes it; the end of ctx leaves it to its TTL.
func (r *Registrar) Register(ctx context.Context, service string, inst *discoverd.Instance) (daemon.Registration, error) {
	in := *inst
	if in.ID == "" {
		in.ID = discoverd.InstanceID(in.Proto, in.Addr)
	}
	at, err := r.write(ctx, func(ctx context.Context, _ int, api registry) error {
		return register(ctx, api, service, &in, true)
	})
	if err != nil {
		return nil, fmt.Errorf("register %s in discoverd: %w", service, err)
	}
	hbCtx, cancel := context.WithCancel(ctx)
	reg := &registration{r: r, service: service, inst: in, at: at, cancel: cancel, done: make(chan struct{})}
	go reg.heartbeat(hbCtx)
	return reg, nil
}

// register writes inst, creating the service first when fresh (a
// discoverd the instance is not in yet) or when discoverd has lost it.
func register(ctx context.Context, api registry, service string, inst *discoverd.Instance, fresh bool) error {
	if fresh {
		if err := api.AddService(ctx, service); err != nil {
			return err
		}
	}
	in := *inst
	in.Index = 0
	_, err := api.RegisterOnce(ctx, service, &in)
	if !fresh && httpjson.IsNotFound(err) {
		return register(ctx, api, service, inst, true)
	}
	return err
}

// registration is one live registration of a Registrar.
type registration struct {
	r       *Registrar
	service string
	inst    discoverd.Instance
	at      int // the endpoint it was last written to; owned by heartbeat
	cancel  context.CancelFunc
	done    chan struct{}
	once    sync.Once
	err     error
}

func (g *registration) heartbeat(ctx context.Context) {
	defer close(g.done)
	interval := g.r.ttl / 3
	timer := time.NewTimer(interval)
	defer timer.Stop()
	log := g.r.log.With("service", g.service, "instance", g.inst.ID)
	failing := false
	for {
		select {
		case <-ctx.Done():
			// Deregister removes the instance. The end of ctx alone is
			// the daemon stopping while its jobs run on: the next daemon
			// writes the instance again, or, when none comes, the TTL
			// ends it. Removed now, a restart of the daemon (an upgrade
			// of it) would take every job out of its service meanwhile.
			return
		case <-timer.C:
		}
		at, err := g.r.write(ctx, func(ctx context.Context, i int, api registry) error {
			return register(ctx, api, g.service, &g.inst, i != g.at)
		})
		next := interval
		switch {
		case err != nil && ctx.Err() == nil:
			if !failing {
				log.Warn("heartbeat failed in every discoverd; retrying", "err", err)
			}
			failing = true
			next = time.Second
		case err == nil:
			if failing {
				log.Info("heartbeat recovered", "discoverd", g.r.eps[at].url)
			}
			failing = false
			g.at = at
		}
		timer.Reset(next)
	}
}

// Deregister stops the heartbeat and removes the instance now rather than
// at its TTL, so watchers see it go: through the discoverd it was last
// written to, or, when that one does not answer, another (they share a
// store).
func (g *registration) Deregister(ctx context.Context) error {
	g.once.Do(func() {
		g.cancel()
		select {
		case <-g.done:
		case <-ctx.Done():
			g.err = ctx.Err()
			return
		}
		dctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		// g.at is the heartbeat's, which has ended.
		order := append([]int{g.at}, slices.DeleteFunc(g.r.candidates(), func(i int) bool { return i == g.at })...)
		for _, i := range order {
			if g.r.eps[i].api.Deregister(dctx, g.service, g.inst.ID) == nil || dctx.Err() != nil {
				break
			}
		}
	})
	return g.err
}

// WatchNodes sends the addresses of the hosts registered in the
// "flynn-host" service of the discoverd the last write went to: at first,
// after each change of the service (or every refresh interval, should an
// event be missed), and after a move to another discoverd. It closes the
// channel when ctx ends.
func (r *Registrar) WatchNodes(ctx context.Context) <-chan []string {
	out := make(chan []string)
	go func() {
		defer close(out)
		var last []string
		sent := false
		for ctx.Err() == nil {
			moved := r.movedChan()
			r.mu.Lock()
			cur := r.current
			r.mu.Unlock()
			if cur < 0 {
				// Nothing written yet: wait for the first write.
				select {
				case <-ctx.Done():
				case <-moved:
				}
				continue
			}
			r.followNodes(ctx, r.eps[cur], moved, func(addrs []string) bool {
				if sent && slices.Equal(addrs, last) {
					return true
				}
				select {
				case out <- addrs:
					last, sent = addrs, true
					return true
				case <-ctx.Done():
					return false
				}
			})
		}
	}()
	return out
}

// nodesRefresh is how often followNodes lists the hosts even without an
// event, in case a watch stream missed one while it reconnected.
const nodesRefresh = 30 * time.Second

// followNodes watches the host service in ep, listing it again on each
// event, and calls send with the sorted node addresses each time, until
// ctx ends, moved is closed, or send returns false.
func (r *Registrar) followNodes(ctx context.Context, ep *endpoint, moved <-chan struct{}, send func([]string) bool) {
	wctx, cancel := context.WithCancel(ctx)
	events, err := ep.api.Watch(wctx, hostService)
	if err != nil {
		cancel()
		r.log.Warn("watch hosts", "discoverd", ep.url, "err", err)
		select {
		case <-ctx.Done():
		case <-moved:
		case <-time.After(time.Second):
		}
		return
	}
	defer func() {
		cancel()
		for range events { // the watch's goroutine has ended once it is closed
		}
	}()
	refresh := time.NewTicker(nodesRefresh)
	defer refresh.Stop()
	for first := true; ; first = false {
		if !first {
			select {
			case <-ctx.Done():
				return
			case <-moved:
				return
			case _, ok := <-events:
				if !ok {
					return
				}
				// Events come in bursts (a watch starts with every
				// host): one listing for what has come.
				drain(events)
			case <-refresh.C:
			}
		}
		lctx, lcancel := context.WithTimeout(ctx, r.attemptTimeout())
		insts, err := ep.api.Instances(lctx, hostService)
		lcancel()
		if err != nil {
			if !httpjson.IsNotFound(err) && ctx.Err() == nil {
				r.log.Warn("list hosts", "discoverd", ep.url, "err", err)
			}
			continue
		}
		if !send(nodeAddrs(insts)) {
			return
		}
	}
}

// drain takes what events holds already, without waiting.
func drain(events <-chan *discoverd.Event) {
	for {
		select {
		case _, ok := <-events:
			if !ok {
				return
			}
		default:
			return
		}
	}
}

// nodeAddrs returns the hosts' addresses, sorted, once each.
func nodeAddrs(insts []*discoverd.Instance) []string {
	out := []string{}
	for _, in := range insts {
		if h := in.Host(); h != "" {
			out = append(out, h)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

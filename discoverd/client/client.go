// Package client is the Go client of discoverd's HTTP API: registering
// instances with heartbeats, listing, watching and finding the leader.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/openflynn/flynn/discoverd"
	"github.com/openflynn/flynn/pkg/authkey"
	"github.com/openflynn/flynn/pkg/httpjson"
	"github.com/openflynn/flynn/pkg/sse"
)

// Client talks to one discoverd.
type Client struct {
	url  string
	key  string
	http *http.Client

	// TTL is the lifetime a registration asks for; default
	// discoverd.DefaultTTL. Heartbeats go every TTL/3.
	TTL time.Duration
	// Logger receives heartbeat and reconnection trouble; default discards.
	Logger *slog.Logger
}

// New returns a client of the discoverd at url (such as
// "http://127.0.0.1:1111"); key is the cluster key, or "".
func New(url, key string) *Client {
	return &Client{
		url:    strings.TrimSuffix(url, "/"),
		key:    key,
		http:   &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()},
		TTL:    discoverd.DefaultTTL,
		Logger: slog.New(slog.DiscardHandler),
	}
}

// URL returns the discoverd address the client talks to.
func (c *Client) URL() string { return c.url }

func (c *Client) do(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return fmt.Errorf("discoverd: encode request: %w", err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.url+path, rd)
	if err != nil {
		return fmt.Errorf("discoverd: %w", err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	authkey.Set(req, c.key)
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("discoverd: %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		return fmt.Errorf("discoverd: %s %s: %w", method, path, httpjson.ReadError(resp))
	}
	if out == nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("discoverd: decode %s %s: %w", method, path, err)
	}
	return nil
}

func servicePath(service string) string { return "/services/" + url.PathEscape(service) }

// AddService creates service; it is not an error when it exists.
func (c *Client) AddService(ctx context.Context, service string) error {
	return c.do(ctx, http.MethodPut, servicePath(service), nil, nil)
}

// RemoveService deletes service and its instances.
func (c *Client) RemoveService(ctx context.Context, service string) error {
	return c.do(ctx, http.MethodDelete, servicePath(service), nil, nil)
}

// Services lists service names.
func (c *Client) Services(ctx context.Context) ([]string, error) {
	var names []string
	err := c.do(ctx, http.MethodGet, "/services", nil, &names)
	return names, err
}

// Instances lists service's live instances, oldest first.
func (c *Client) Instances(ctx context.Context, service string) ([]*discoverd.Instance, error) {
	var list []*discoverd.Instance
	err := c.do(ctx, http.MethodGet, servicePath(service)+"/instances", nil, &list)
	return list, err
}

// Leader returns service's oldest live instance.
func (c *Client) Leader(ctx context.Context, service string) (*discoverd.Instance, error) {
	var inst discoverd.Instance
	if err := c.do(ctx, http.MethodGet, servicePath(service)+"/leader", nil, &inst); err != nil {
		return nil, err
	}
	return &inst, nil
}

// ServiceMeta returns service's metadata and its index.
func (c *Client) ServiceMeta(ctx context.Context, service string) (*discoverd.ServiceMeta, error) {
	var meta discoverd.ServiceMeta
	if err := c.do(ctx, http.MethodGet, servicePath(service)+"/meta", nil, &meta); err != nil {
		return nil, err
	}
	return &meta, nil
}

// SetServiceMeta writes service's metadata if its index is still meta.Index
// (0: only when there is none), and sets meta.Index to the new index. A
// lost race fails with a precondition_failed *httpjson.Error.
func (c *Client) SetServiceMeta(ctx context.Context, service string, meta *discoverd.ServiceMeta) error {
	return c.do(ctx, http.MethodPut, servicePath(service)+"/meta", meta, meta)
}

// RegisterOnce registers inst a single time (no heartbeat) and returns it
// as stored. Most callers want Register.
func (c *Client) RegisterOnce(ctx context.Context, service string, inst *discoverd.Instance) (*discoverd.Instance, error) {
	if inst.ID == "" {
		inst.ID = discoverd.InstanceID(inst.Proto, inst.Addr)
	}
	path := servicePath(service) + "/instances/" + url.PathEscape(inst.ID) + "?ttl=" + strconv.Itoa(int(c.ttl()/time.Second))
	var stored discoverd.Instance
	if err := c.do(ctx, http.MethodPut, path, inst, &stored); err != nil {
		return nil, err
	}
	return &stored, nil
}

// Deregister removes an instance now, rather than at its TTL.
func (c *Client) Deregister(ctx context.Context, service, id string) error {
	return c.do(ctx, http.MethodDelete, servicePath(service)+"/instances/"+url.PathEscape(id), nil, nil)
}

func (c *Client) ttl() time.Duration {
	if c.TTL < time.Second {
		return discoverd.DefaultTTL
	}
	return c.TTL
}

// Registration is a live registration that heartbeats until Deregister or
// until the context given to Register ends.
type Registration struct {
	client   *Client
	service  string
	instance discoverd.Instance
	cancel   context.CancelFunc
	done     chan struct{}
	once     sync.Once
	err      error

	renewed chan struct{} // a value after each confirmed heartbeat
	mu      sync.Mutex
	lease   Lease
}

// Lease is what a registration knows for sure of its instance in
// discoverd: that discoverd keeps it at least until Until, unless it is
// deregistered. A holder of a role that goes with the instance (the leader
// of a service) holds it no longer than that: past Until, discoverd may
// have dropped the instance and named another leader.
type Lease struct {
	// Instance is the instance as discoverd last confirmed it. Its Index
	// changes when discoverd had forgotten it and it was registered anew:
	// it then lost its place (the leader is the oldest instance).
	Instance *discoverd.Instance
	// Renewed is when the heartbeat discoverd last confirmed was sent (the
	// registration, at first): discoverd renewed the lease after it.
	Renewed time.Time
	// TTL is the lease's lifetime from a renewal.
	TTL time.Duration
}

// Until returns the time until which discoverd keeps the instance at
// least: TTL after Renewed.
func (l Lease) Until() time.Time { return l.Renewed.Add(l.TTL) }

// Register creates service if needed, registers inst (its ID defaults to
// discoverd.InstanceID) and keeps it alive with heartbeats, registering it
// again if discoverd forgot it (a restart, an expired lease). When ctx ends
// the instance is deregistered at once.
func (c *Client) Register(ctx context.Context, service string, inst *discoverd.Instance) (*Registration, error) {
	if err := c.AddService(ctx, service); err != nil {
		return nil, err
	}
	sent := time.Now()
	stored, err := c.RegisterOnce(ctx, service, inst)
	if err != nil {
		return nil, err
	}
	hbCtx, cancel := context.WithCancel(ctx)
	r := &Registration{client: c, service: service, instance: *stored, cancel: cancel, done: make(chan struct{}), renewed: make(chan struct{}, 1)}
	r.lease = Lease{Instance: stored, Renewed: sent, TTL: c.ttl()}
	go r.heartbeat(hbCtx)
	return r, nil
}

// Instance returns the instance as first registered.
func (r *Registration) Instance() *discoverd.Instance { inst := r.instance; return &inst }

// Lease returns what the registration knows for sure of its instance in
// discoverd, as of the last heartbeat discoverd confirmed.
func (r *Registration) Lease() Lease {
	r.mu.Lock()
	defer r.mu.Unlock()
	l := r.lease
	inst := *l.Instance
	l.Instance = &inst
	return l
}

// Renewed receives a value after heartbeats discoverd confirmed (one value
// stands for any number of them), for a holder of the Lease to look at it
// again. A heartbeat that fails sends nothing: the lease runs out by
// itself.
func (r *Registration) Renewed() <-chan struct{} { return r.renewed }

// renew records a confirmed heartbeat, sent at sent.
func (r *Registration) renew(stored *discoverd.Instance, sent time.Time) {
	r.mu.Lock()
	r.lease.Instance, r.lease.Renewed = stored, sent
	r.mu.Unlock()
	select {
	case r.renewed <- struct{}{}:
	default:
	}
}

func (r *Registration) heartbeat(ctx context.Context) {
	defer close(r.done)
	interval := r.client.ttl() / 3
	timer := time.NewTimer(interval)
	defer timer.Stop()
	log := r.client.Logger.With("service", r.service, "instance", r.instance.ID)
	failing := false
	for {
		select {
		case <-ctx.Done():
			// Leave now rather than at the TTL, so watchers see it go.
			dctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			_ = r.client.Deregister(dctx, r.service, r.instance.ID)
			cancel()
			return
		case <-timer.C:
		}
		inst := r.instance
		inst.Index = 0
		reqCtx, cancel := context.WithTimeout(ctx, interval)
		sent := time.Now()
		stored, err := r.client.RegisterOnce(reqCtx, r.service, &inst)
		if httpjson.IsNotFound(err) {
			// discoverd lost the service (a new etcd): create it again.
			if err = r.client.AddService(reqCtx, r.service); err == nil {
				stored, err = r.client.RegisterOnce(reqCtx, r.service, &inst)
			}
		}
		cancel()
		if err == nil {
			r.renew(stored, sent)
		}
		next := interval
		switch {
		case err != nil && ctx.Err() == nil:
			if !failing {
				log.Warn("heartbeat failed; retrying", "err", err)
			}
			failing = true
			next = time.Second
		case err == nil && failing:
			log.Info("heartbeat recovered")
			failing = false
		}
		timer.Reset(next)
	}
}

// Deregister stops the heartbeat and removes the instance.
func (r *Registration) Deregister(ctx context.Context) error {
	r.once.Do(func() {
		r.cancel()
		select {
		case <-r.done:
		case <-ctx.Done():
			r.err = ctx.Err()
		}
	})
	return r.err
}

// Done is closed once the registration has stopped heartbeating.
func (r *Registration) Done() <-chan struct{} { return r.done }

// Watch streams service's events until ctx ends, then closes the channel.
// It starts with an EventUp per live instance and EventCurrent, then
// reports changes as they happen. When the connection breaks it reconnects
// by itself and the stream starts over with the full set (ups, then
// EventCurrent), so a consumer that rebuilds its view at EventCurrent stays
// right. A service that does not exist yet is waited for.
func (c *Client) Watch(ctx context.Context, service string) (<-chan *discoverd.Event, error) {
	if err := discoverd.ValidateServiceName(service); err != nil {
		return nil, err
	}
	ch := make(chan *discoverd.Event, 64)
	go func() {
		defer close(ch)
		backoff := 100 * time.Millisecond
		for {
			started := time.Now()
			err := c.watchOnce(ctx, service, ch)
			if ctx.Err() != nil {
				return
			}
			if time.Since(started) > 10*time.Second {
				backoff = 100 * time.Millisecond
			}
			if !httpjson.IsNotFound(err) {
				c.Logger.Warn("watch interrupted; reconnecting", "service", service, "err", err, "in", backoff)
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff):
			}
			backoff = min(backoff*2, time.Second)
		}
	}()
	return ch, nil
}

func (c *Client) watchOnce(ctx context.Context, service string, ch chan<- *discoverd.Event) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.url+servicePath(service)+"/instances", nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "text/event-stream")
	authkey.Set(req, c.key)
	resp, err := c.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return httpjson.ReadError(resp)
	}
	stream := sse.NewReader(resp.Body)
	for {
		ev, err := stream.Next()
		if err != nil {
			return err
		}
		var e discoverd.Event
		if err := json.Unmarshal(ev.Data, &e); err != nil {
			return fmt.Errorf("decode event: %w", err)
		}
		select {
		case ch <- &e:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

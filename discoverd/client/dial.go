package client

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/openflynn/flynn/discoverd"
)

// Domain is the name suffix that addresses a service through discoverd:
// "controller.discoverd" is any live instance of the service "controller",
// "leader.postgres.discoverd" the leader of "postgres" (as discoverd's DNS
// answers them).
const Domain = "discoverd"

// Dialer connects to services by name: an address whose host is
// "<service>.discoverd" or "leader.<service>.discoverd" is dialed at a live
// instance of the service (the leader), looked up in discoverd at each
// dial, so that a component follows another as it moves between ports and
// nodes; the port in the address is ignored, instances carry their own.
// Any other address is dialed as it is.
type Dialer struct {
	// Client is the discoverd the dialer asks.
	Client *Client
	// Net dials the address chosen; its zero value does.
	Net net.Dialer
}

// ServiceOf returns the service an address names and whether it wants the
// leader; ok is false for an address that names no discoverd service.
func ServiceOf(host string) (service string, leader, ok bool) {
	name, found := strings.CutSuffix(strings.TrimSuffix(host, "."), "."+Domain)
	if !found || name == "" {
		return "", false, false
	}
	if s, isLeader := strings.CutPrefix(name, "leader."); isLeader && s != "" {
		return s, true, true
	}
	return name, false, true
}

// DialContext dials addr as the type's doc says. For a service it tries its
// live instances in random order (the leader alone when asked for it) until
// one answers.
func (d *Dialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	addrs, ok, err := d.Client.Resolve(ctx, addr)
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("dial %s: %w (%v)", addr, ctx.Err(), err)
		}
		// discoverd's answer (not_found: no leader) is the reason, but not
		// an error of the dialer's caller to pass on: wrapped, a server
		// that hands its API errors to its client would answer "not
		// found" for a dependency that is down (the controller did while
		// its Postgres was replaced), and that client would take it as
		// final.
		return nil, fmt.Errorf("dial %s: %v", addr, err)
	}
	if !ok {
		return d.Net.DialContext(ctx, network, addr)
	}
	var errs []error
	for _, a := range addrs {
		conn, err := d.Net.DialContext(ctx, network, a)
		if err == nil {
			return conn, nil
		}
		errs = append(errs, err)
		if ctx.Err() != nil {
			break
		}
	}
	return nil, fmt.Errorf("dial %s: %w", addr, errors.Join(errs...))
}

// Resolve returns the addresses that addr (host or host:port) stands for,
// as Dialer dials them: the leader's for "leader.<service>.discoverd", every
// live instance's in random order for "<service>.discoverd", never none. ok
// is false for an address that names no service, which is to be used as it
// is.
func (c *Client) Resolve(ctx context.Context, addr string) (addrs []string, ok bool, err error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		host = addr
	}
	service, leader, ok := ServiceOf(host)
	if !ok {
		return nil, false, nil
	}
	var insts []*discoverd.Instance
	if leader {
		inst, err := c.Leader(ctx, service)
		if err != nil {
			return nil, true, err
		}
		insts = []*discoverd.Instance{inst}
	} else {
		if insts, err = c.Instances(ctx, service); err != nil {
			return nil, true, err
		}
		rand.Shuffle(len(insts), func(i, j int) { insts[i], insts[j] = insts[j], insts[i] })
	}
	if len(insts) == 0 {
		return nil, true, fmt.Errorf("no live instance of %q in discoverd", service)
	}
	for _, inst := range insts {
		addrs = append(addrs, inst.Addr)
	}
	return addrs, true, nil
}

// HTTPClient returns an HTTP client whose connections go through a Dialer
// on c, so that URLs like http://controller.discoverd reach the service.
// It keeps connections alive and bounds the wait for response headers; a
// stream (events, logs) may last as long as its context.
func HTTPClient(c *Client) *http.Client {
	d := &Dialer{Client: c, Net: net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}}
	return &http.Client{Transport: &http.Transport{
		DialContext:           d.DialContext,
		MaxIdleConnsPerHost:   16,
		IdleConnTimeout:       90 * time.Second,
		ResponseHeaderTimeout: time.Minute,
		ForceAttemptHTTP2:     false,
	}}
}

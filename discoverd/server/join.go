package server

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/openflynn/flynn/discoverd"
	"github.com/openflynn/flynn/discoverd/client"
	"github.com/openflynn/flynn/pkg/httpjson"
)

// The join protocol, between a new discoverd and the discoverds it was told
// to join (Config.Join):
//
//	GET  /etcd/members   the members; with MaxEtcdMembers of them, the new
//	                     discoverd is a client of their client URLs
//	POST /etcd/members   {name, peer_url}: the answering discoverd adds a
//	                     learner and returns the initial cluster; the new
//	                     discoverd starts its member with it (state
//	                     "existing") and promotes itself once caught up.
//	                     conflict: the cluster is full (a client then);
//	                     service_unavailable: another join is under way.
//
// Both need the cluster key.

// joiner asks other discoverds about the etcd cluster.
type joiner struct {
	targets []*client.Client
	// self is this discoverd's HTTP address, to find the founder among
	// discoverds that start together.
	self    string
	timeout time.Duration
	logger  *slog.Logger
}

// errNoCluster: no join target answered; this discoverd founds the
// cluster.
var errNoCluster = errors.New("no etcd cluster to join")

// newJoiner returns a joiner of the discoverds at targets (URLs, host:port
// or host), leaving out this discoverd's own address, self.
func newJoiner(targets []string, self, key string, timeout time.Duration, logger *slog.Logger) (*joiner, error) {
	j := &joiner{self: self, timeout: timeout, logger: logger}
	seen := map[string]bool{}
	for _, t := range targets {
		u, err := joinURL(t)
		if err != nil {
			return nil, err
		}
		if seen[u.Host] || u.Host == self {
			continue
		}
		seen[u.Host] = true
		j.targets = append(j.targets, client.New(u.String(), key))
	}
	return j, nil
}

// joinURL reads a join target: a discoverd URL, host:port or host (port
// 1111).
func joinURL(s string) (*url.URL, error) {
	if !strings.Contains(s, "://") {
		s = "http://" + s
	}
	u, err := url.Parse(s)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("join target %q is not a discoverd URL", s)
	}
	if u.Port() == "" {
		u.Host = net.JoinHostPort(u.Hostname(), strconv.Itoa(discoverd.Port))
	}
	return &url.URL{Scheme: u.Scheme, Host: u.Host}, nil
}

// answered reports whether err came from a discoverd (an API error) rather
// than from the network.
func answered(err error) bool {
	var apiErr *httpjson.Error
	return errors.As(err, &apiErr)
}

// reached reports whether err came from a discoverd that is there: an
// answer, or a request that got through but had no answer in time (its
// etcd may have lost its quorum). Only a failed dial says that no
// discoverd is there, and only then may this one found a cluster.
func reached(err error) bool {
	var opErr *net.OpError
	return answered(err) || !(errors.As(err, &opErr) && opErr.Op == "dial")
}

// fatalJoinError reports whether a target's answer means joining cannot
// work however long this discoverd asks: a wrong cluster key, or a
// discoverd that does not manage its etcd.
func fatalJoinError(err error) bool {
	return httpjson.IsCode(err, httpjson.CodeUnauthorized) || httpjson.IsCode(err, httpjson.CodeNotFound)
}

// members asks each target in turn for the members, and returns the first
// answer with the target that gave it. The error says why none answered:
// a target that is there (see reached) outweighs one that is not.
func (j *joiner) members(ctx context.Context) (*discoverd.EtcdMembers, *client.Client, error) {
	if len(j.targets) == 0 {
		return nil, nil, errNoCluster
	}
	var err error
	for _, t := range j.targets {
		reqCtx, cancel := context.WithTimeout(ctx, 3*time.Second)
		m, mErr := t.EtcdMembers(reqCtx)
		cancel()
		if mErr == nil {
			return m, t, nil
		}
		if fatalJoinError(mErr) {
			return nil, nil, fmt.Errorf("join %s: %w", t.URL(), mErr)
		}
		if err == nil || reached(mErr) || !reached(err) {
			err = mErr
		}
	}
	return nil, nil, err
}

// find returns the cluster to join: the members as a join target sees
// them, and that target. It asks until one answers. A discoverd without
// targets founds the cluster (errNoCluster) at once; one none of whose
// targets has been there (see reached) for timeout founds it only if its
// address sorts first among them, so that discoverds that all start
// together found one cluster, not one each.
func (j *joiner) find(ctx context.Context) (*discoverd.EtcdMembers, *client.Client, error) {
	if len(j.targets) == 0 {
		return nil, nil, errNoCluster
	}
	start := time.Now()
	lastLog := start
	anyReached := false
	for {
		m, t, err := j.members(ctx)
		if err == nil {
			return m, t, nil
		}
		if fatalJoinError(err) {
			return nil, nil, err
		}
		anyReached = anyReached || reached(err)
		if !anyReached && time.Since(start) >= j.timeout && j.first() {
			j.logger.Warn("no join target answered: founding a new etcd cluster", "targets", j.targetHosts(), "waited", time.Since(start).Round(time.Second))
			return nil, nil, errNoCluster
		}
		if time.Since(lastLog) >= 15*time.Second {
			lastLog = time.Now()
			j.logger.Warn("waiting for a join target to answer", "targets", j.targetHosts(), "err", err)
		}
		select {
		case <-ctx.Done():
			return nil, nil, ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

// add asks t to add this node's member, until t adds it, finds the
// cluster full (errClusterFull) or does not answer (errTargetLost).
func (j *joiner) add(ctx context.Context, t *client.Client, req *discoverd.EtcdMemberAdd) (*discoverd.EtcdJoin, error) {
	lastLog := time.Now()
	for {
		reqCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
		resp, err := t.AddEtcdMember(reqCtx, req)
		cancel()
		switch {
		case err == nil:
			return resp, nil
		case httpjson.IsCode(err, httpjson.CodeConflict):
			return nil, errClusterFull
		case !answered(err):
			return nil, fmt.Errorf("%w: %s: %w", errTargetLost, t.URL(), err)
		case httpjson.IsCode(err, httpjson.CodeServiceUnavailable):
			if time.Since(lastLog) >= 15*time.Second {
				lastLog = time.Now()
				j.logger.Warn("waiting to join the etcd cluster", "target", t.URL(), "err", err)
			}
		default:
			return nil, fmt.Errorf("join the etcd cluster through %s: %w", t.URL(), err)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

// Errors of joiner.add.
var (
	// errClusterFull: the cluster has all its members.
	errClusterFull = errors.New("the etcd cluster has all its members")
	// errTargetLost: the join target stopped answering.
	errTargetLost = errors.New("the join target does not answer")
)

// first reports whether this discoverd's address sorts before every
// target's (as IP and port where they are ones).
func (j *joiner) first() bool {
	self, selfErr := netip.ParseAddrPort(j.self)
	for _, t := range j.targets {
		host := strings.TrimPrefix(strings.TrimPrefix(t.URL(), "http://"), "https://")
		other, err := netip.ParseAddrPort(host)
		var c int
		if selfErr == nil && err == nil {
			c = self.Compare(other)
		} else {
			c = cmp.Compare(j.self, host)
		}
		if c >= 0 {
			return false
		}
	}
	return true
}

func (j *joiner) targetHosts() []string {
	out := make([]string, 0, len(j.targets))
	for _, t := range j.targets {
		out = append(out, t.URL())
	}
	return out
}

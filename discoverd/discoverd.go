// Package discoverd holds the API types of Flynn's service discovery:
// services, the instances registered in them, the events a watcher sees,
// and service metadata. It imports only the standard library so that the
// server, its Go client and every consumer share one definition.
//
// The HTTP API, served by discoverd/server on :1111:
//
//	GET    /services                          list service names
//	PUT    /services/:service                 create a service (idempotent)
//	DELETE /services/:service                 remove a service and its instances
//	PUT    /services/:service/instances/:id   register; repeating it is the heartbeat (?ttl=seconds)
//	DELETE /services/:service/instances/:id   deregister
//	GET    /services/:service/instances       list, or watch with Accept: text/event-stream
//	GET    /services/:service/leader          the oldest live instance
//	GET    /services/:service/meta            service metadata and its index
//	PUT    /services/:service/meta            set metadata, compare-and-set on index
//	GET    /etcd/members                      the etcd cluster's members (key required)
//	POST   /etcd/members                      add a node as an etcd member (key required)
//	GET    /metrics                           Prometheus metrics (key required)
//
// Writes, the /etcd routes and /metrics need the cluster key as the
// basic-auth password when discoverd has one; other reads are open.
package discoverd

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"regexp"
	"strconv"
	"time"
)

// DefaultTTL is how long a registration lives without a heartbeat.
const DefaultTTL = 10 * time.Second

// MaxTTL bounds the TTL a registration may ask for.
const MaxTTL = 5 * time.Minute

// Instance is one registered endpoint of a service.
type Instance struct {
	// ID is unique within the service; clients default it to InstanceID.
	ID string `json:"id"`
	// Addr is "host:port".
	Addr string `json:"addr"`
	// Proto is the protocol spoken at Addr, such as "http" or "tcp".
	Proto string `json:"proto,omitempty"`
	// Meta carries free-form attributes (job id, app id, …).
	Meta map[string]string `json:"meta,omitempty"`
	// Index orders registrations: it grows with each new registration and
	// stays the same across heartbeats, so the lowest live Index is the
	// oldest instance, the leader. Set by the server.
	Index uint64 `json:"index,omitempty"`
}

// InstanceID derives a stable instance id from the protocol and address, so
// that re-registering the same endpoint refreshes one instance.
func InstanceID(proto, addr string) string {
	sum := sha256.Sum256([]byte(proto + "-" + addr))
	return hex.EncodeToString(sum[:16])
}

// Host returns the host part of Addr.
func (i *Instance) Host() string {
	h, _, _ := net.SplitHostPort(i.Addr)
	return h
}

// Port returns the numeric port of Addr, or 0.
func (i *Instance) Port() int {
	_, p, _ := net.SplitHostPort(i.Addr)
	n, _ := strconv.Atoi(p)
	return n
}

// Equal reports whether two instances carry the same registration data
// (Index aside).
func (i *Instance) Equal(o *Instance) bool {
	if i == nil || o == nil {
		return i == o
	}
	if i.ID != o.ID || i.Addr != o.Addr || i.Proto != o.Proto || len(i.Meta) != len(o.Meta) {
		return false
	}
	for k, v := range i.Meta {
		if ov, ok := o.Meta[k]; !ok || ov != v {
			return false
		}
	}
	return true
}

var (
	serviceNameRe = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)
	instanceIDRe  = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$`)
	protoRe       = regexp.MustCompile(`^[a-z][a-z0-9+.-]{0,31}$`)
)

// ValidateServiceName checks a service name: lowercase letters, digits and
// dashes, at most 63, not starting or ending with a dash (a DNS label).
func ValidateServiceName(name string) error {
	if name == "" {
		return fmt.Errorf("service name is empty")
	}
	if len(name) > 63 {
		return fmt.Errorf("service name %q is longer than 63 characters", name)
	}
	if !serviceNameRe.MatchString(name) {
		return fmt.Errorf("service name %q must be lowercase letters, digits and dashes, starting and ending with a letter or digit", name)
	}
	return nil
}

// ValidateInstanceID checks an instance id.
func ValidateInstanceID(id string) error {
	if !instanceIDRe.MatchString(id) {
		return fmt.Errorf("instance id %q must be 1-128 letters, digits, '.', '_' or '-', starting with a letter or digit", id)
	}
	return nil
}

// Validate checks a registration. It returns the name of the offending
// field along with the error.
func (i *Instance) Validate() (field string, err error) {
	if err := ValidateInstanceID(i.ID); err != nil {
		return "id", err
	}
	if i.Addr == "" {
		return "addr", fmt.Errorf("addr is required")
	}
	host, port, err := net.SplitHostPort(i.Addr)
	if err != nil {
		return "addr", fmt.Errorf("addr %q is not host:port: %w", i.Addr, err)
	}
	if host == "" {
		return "addr", fmt.Errorf("addr %q has no host", i.Addr)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return "addr", fmt.Errorf("addr %q has no valid port", i.Addr)
	}
	if i.Proto != "" && !protoRe.MatchString(i.Proto) {
		return "proto", fmt.Errorf("proto %q must be a lowercase protocol name", i.Proto)
	}
	return "", nil
}

// EventKind names what happened to a service.
type EventKind string

// The event kinds a watcher sees. A watch starts with one EventUp per live
// instance followed by EventCurrent; EventLeader follows whenever the leader
// changes (and after EventCurrent when there is one).
const (
	EventCurrent EventKind = "current"
	EventUp      EventKind = "up"
	EventDown    EventKind = "down"
	EventUpdate  EventKind = "update"
	EventLeader  EventKind = "leader"
)

// Event is one change to a service, as sent on a watch stream.
type Event struct {
	Service  string    `json:"service"`
	Kind     EventKind `json:"kind"`
	Instance *Instance `json:"instance,omitempty"`
}

// ServiceMeta is a service's free-form metadata. Index is the version the
// server assigned; a write carries the Index it read, and fails with
// precondition_failed if another write came in between (0: create only).
type ServiceMeta struct {
	Data  json.RawMessage `json:"data"`
	Index uint64          `json:"index"`
}

// Port is the port discoverd's HTTP API listens on on every node.
const Port = 1111

// NodeURL is the URL of the discoverd of the node at addr (an IP or a
// host name).
func NodeURL(addr string) string {
	return "http://" + net.JoinHostPort(addr, strconv.Itoa(Port))
}

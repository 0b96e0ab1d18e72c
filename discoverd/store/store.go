// Package store keeps discoverd's state in etcd v3: services, instances
// bound to leases (so a missed heartbeat expires them), and service
// metadata with compare-and-set. Several discoverd processes sharing one
// etcd see the same state, since nothing lives in their memory.
//
// Keys, under a prefix (default "/discoverd"):
//
//	<prefix>/services/<service>             {"created_at": …}
//	<prefix>/instances/<service>/<id>       Instance JSON, attached to a lease
//	<prefix>/meta/<service>                 ServiceMeta.Data
//
// An instance's Index is its key's create revision: it stays the same across
// heartbeats and grows with every new registration, so the lowest live one
// is the oldest instance, the leader.
package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/openflynn/flynn/discoverd"
)

// Errors returned by the store; the HTTP layer maps them to API errors.
var (
	ErrServiceNotFound  = errors.New("service not found")
	ErrInstanceNotFound = errors.New("instance not found")
	ErrMetaNotFound     = errors.New("service meta not found")
	ErrIndexMismatch    = errors.New("meta index does not match")
)

// Store is discoverd's state in etcd.
type Store struct {
	// Observe, when set, is told how long each of the store's etcd
	// requests took, by operation (OpGet, OpTxn, …, OpWatchOpen), failed
	// ones included. Set it before the store is used.
	Observe func(op string, took time.Duration)

	etcd   *clientv3.Client
	kv     clientv3.KV
	lease  clientv3.Lease
	prefix string
}

// New returns a Store over an etcd client. prefix namespaces the keys
// ("/discoverd" when empty) so tests and several clusters can share an etcd.
func New(etcd *clientv3.Client, prefix string) *Store {
	if prefix == "" {
		prefix = "/discoverd"
	}
	s := &Store{etcd: etcd, prefix: strings.TrimSuffix(prefix, "/")}
	s.kv = timedKV{KV: etcd.KV, observe: s.observe}
	s.lease = timedLease{Lease: etcd.Lease, observe: s.observe}
	return s
}

func (s *Store) serviceKey(service string) string { return s.prefix + "/services/" + service }
func (s *Store) instancesPrefix(service string) string {
	return s.prefix + "/instances/" + service + "/"
}
func (s *Store) instanceKey(service, id string) string { return s.instancesPrefix(service) + id }
func (s *Store) metaKey(service string) string         { return s.prefix + "/meta/" + service }

type serviceRecord struct {
	CreatedAt time.Time `json:"created_at"`
}

// AddService creates service; it reports whether the service is new.
func (s *Store) AddService(ctx context.Context, service string) (created bool, err error) {
	rec, _ := json.Marshal(serviceRecord{CreatedAt: time.Now().UTC()})
	key := s.serviceKey(service)
	resp, err := s.kv.Txn(ctx).
		If(clientv3.Compare(clientv3.CreateRevision(key), "=", 0)).
		Then(clientv3.OpPut(key, string(rec))).
		Commit()
	if err != nil {
		return false, fmt.Errorf("add service %s: %w", service, err)
	}
	return resp.Succeeded, nil
}

// ServiceExists reports whether service was created.
func (s *Store) ServiceExists(ctx context.Context, service string) (bool, error) {
	resp, err := s.kv.Get(ctx, s.serviceKey(service), clientv3.WithCountOnly())
	if err != nil {
		return false, fmt.Errorf("get service %s: %w", service, err)
	}
	return resp.Count > 0, nil
}

// Services lists service names in order.
func (s *Store) Services(ctx context.Context) ([]string, error) {
	p := s.prefix + "/services/"
	resp, err := s.kv.Get(ctx, p, clientv3.WithPrefix(), clientv3.WithKeysOnly())
	if err != nil {
		return nil, fmt.Errorf("list services: %w", err)
	}
	names := make([]string, 0, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		names = append(names, strings.TrimPrefix(string(kv.Key), p))
	}
	return names, nil
}

// RemoveService deletes a service with its instances and metadata.
func (s *Store) RemoveService(ctx context.Context, service string) error {
	key := s.serviceKey(service)
	resp, err := s.kv.Txn(ctx).
		If(clientv3.Compare(clientv3.CreateRevision(key), ">", 0)).
		Then(
			clientv3.OpDelete(key),
			clientv3.OpDelete(s.instancesPrefix(service), clientv3.WithPrefix()),
			clientv3.OpDelete(s.metaKey(service)),
		).Commit()
	if err != nil {
		return fmt.Errorf("remove service %s: %w", service, err)
	}
	if !resp.Succeeded {
		return ErrServiceNotFound
	}
	return nil
}

// Register stores inst in service with the given TTL, or refreshes it when
// it is already registered: the lease is kept alive and the value rewritten
// only when it changed, so a plain heartbeat makes no watch event. It
// returns the instance as stored, Index set.
func (s *Store) Register(ctx context.Context, service string, inst *discoverd.Instance, ttl time.Duration) (*discoverd.Instance, error) {
	if ok, err := s.ServiceExists(ctx, service); err != nil {
		return nil, err
	} else if !ok {
		return nil, ErrServiceNotFound
	}
	key := s.instanceKey(service, inst.ID)
	stored := *inst
	stored.Index = 0
	value, err := json.Marshal(&stored)
	if err != nil {
		return nil, fmt.Errorf("encode instance: %w", err)
	}
	ttlSeconds := int64((ttl + time.Second - 1) / time.Second)
	for attempt := 0; attempt < 5; attempt++ {
		cur, err := s.kv.Get(ctx, key)
		if err != nil {
			return nil, fmt.Errorf("register %s/%s: %w", service, inst.ID, err)
		}
		if len(cur.Kvs) == 1 {
			kv := cur.Kvs[0]
			if _, err := s.lease.KeepAliveOnce(ctx, clientv3.LeaseID(kv.Lease)); err == nil {
				var old discoverd.Instance
				if json.Unmarshal(kv.Value, &old) == nil && old.Equal(&stored) {
					stored.Index = uint64(kv.CreateRevision)
					return &stored, nil
				}
				// Same lease, new data: an update event for watchers.
				resp, err := s.kv.Txn(ctx).
					If(clientv3.Compare(clientv3.ModRevision(key), "=", kv.ModRevision)).
					Then(clientv3.OpPut(key, string(value), clientv3.WithLease(clientv3.LeaseID(kv.Lease)))).
					Commit()
				if err != nil {
					return nil, fmt.Errorf("update %s/%s: %w", service, inst.ID, err)
				}
				if resp.Succeeded {
					stored.Index = uint64(kv.CreateRevision)
					return &stored, nil
				}
				continue // raced with another write; look again
			} else if !errors.Is(err, rpctypes.ErrLeaseNotFound) {
				return nil, fmt.Errorf("heartbeat %s/%s: %w", service, inst.ID, err)
			}
			// The lease expired between Get and KeepAlive: register anew.
		}
		lease, err := s.lease.Grant(ctx, ttlSeconds)
		if err != nil {
			return nil, fmt.Errorf("grant lease: %w", err)
		}
		var cmp clientv3.Cmp
		if len(cur.Kvs) == 1 {
			cmp = clientv3.Compare(clientv3.ModRevision(key), "=", cur.Kvs[0].ModRevision)
		} else {
			cmp = clientv3.Compare(clientv3.CreateRevision(key), "=", 0)
		}
		resp, err := s.kv.Txn(ctx).If(cmp).
			Then(clientv3.OpPut(key, string(value), clientv3.WithLease(lease.ID))).
			Commit()
		if err != nil {
			return nil, fmt.Errorf("register %s/%s: %w", service, inst.ID, err)
		}
		if !resp.Succeeded {
			_, _ = s.lease.Revoke(ctx, lease.ID)
			continue
		}
		if len(cur.Kvs) == 1 {
			// The old key's lease is gone or going; its create revision
			// stays the same, the instance keeps its place.
			stored.Index = uint64(cur.Kvs[0].CreateRevision)
		} else {
			stored.Index = uint64(resp.Header.Revision)
		}
		return &stored, nil
	}
	return nil, fmt.Errorf("register %s/%s: too much contention", service, inst.ID)
}

// Deregister removes an instance and revokes its lease.
func (s *Store) Deregister(ctx context.Context, service, id string) error {
	key := s.instanceKey(service, id)
	resp, err := s.kv.Delete(ctx, key, clientv3.WithPrevKV())
	if err != nil {
		return fmt.Errorf("deregister %s/%s: %w", service, id, err)
	}
	if resp.Deleted == 0 {
		if ok, err := s.ServiceExists(ctx, service); err == nil && !ok {
			return ErrServiceNotFound
		}
		return ErrInstanceNotFound
	}
	if lease := resp.PrevKvs[0].Lease; lease != 0 {
		_, _ = s.lease.Revoke(ctx, clientv3.LeaseID(lease))
	}
	return nil
}

// Instances returns the live instances of service, oldest first, and the
// etcd revision they were read at (a watch resumes after it).
func (s *Store) Instances(ctx context.Context, service string) ([]*discoverd.Instance, int64, error) {
	resp, err := s.kv.Txn(ctx).Then(
		clientv3.OpGet(s.serviceKey(service), clientv3.WithCountOnly()),
		clientv3.OpGet(s.instancesPrefix(service), clientv3.WithPrefix()),
	).Commit()
	if err != nil {
		return nil, 0, fmt.Errorf("list instances of %s: %w", service, err)
	}
	if resp.Responses[0].GetResponseRange().Count == 0 {
		return nil, 0, ErrServiceNotFound
	}
	kvs := resp.Responses[1].GetResponseRange().Kvs
	list := make([]*discoverd.Instance, 0, len(kvs))
	for _, kv := range kvs {
		inst, err := decodeInstance(kv)
		if err != nil {
			continue // not ours to serve; never fail a whole list on one bad key
		}
		list = append(list, inst)
	}
	SortByIndex(list)
	return list, resp.Header.Revision, nil
}

// InstanceCounts returns how many live instances each service has, a
// service without any included, read at one revision.
func (s *Store) InstanceCounts(ctx context.Context) (map[string]int, error) {
	services, instances := s.prefix+"/services/", s.prefix+"/instances/"
	resp, err := s.kv.Txn(ctx).Then(
		clientv3.OpGet(services, clientv3.WithPrefix(), clientv3.WithKeysOnly()),
		clientv3.OpGet(instances, clientv3.WithPrefix(), clientv3.WithKeysOnly()),
	).Commit()
	if err != nil {
		return nil, fmt.Errorf("count instances: %w", err)
	}
	counts := map[string]int{}
	for _, kv := range resp.Responses[0].GetResponseRange().Kvs {
		counts[strings.TrimPrefix(string(kv.Key), services)] = 0
	}
	for _, kv := range resp.Responses[1].GetResponseRange().Kvs {
		service, _, ok := strings.Cut(strings.TrimPrefix(string(kv.Key), instances), "/")
		if _, known := counts[service]; ok && known {
			counts[service]++
		}
	}
	return counts, nil
}

// Leader returns the oldest live instance of service, or nil when none.
func (s *Store) Leader(ctx context.Context, service string) (*discoverd.Instance, error) {
	list, _, err := s.Instances(ctx, service)
	if err != nil {
		return nil, err
	}
	if len(list) == 0 {
		return nil, nil
	}
	return list[0], nil
}

// SortByIndex orders instances oldest first.
func SortByIndex(list []*discoverd.Instance) {
	sort.Slice(list, func(i, j int) bool { return list[i].Index < list[j].Index })
}

func decodeInstance(kv *mvccpb.KeyValue) (*discoverd.Instance, error) {
	var inst discoverd.Instance
	if err := json.Unmarshal(kv.Value, &inst); err != nil {
		return nil, fmt.Errorf("decode instance %s: %w", kv.Key, err)
	}
	inst.Index = uint64(kv.CreateRevision)
	return &inst, nil
}

// Meta returns a service's metadata.
func (s *Store) Meta(ctx context.Context, service string) (*discoverd.ServiceMeta, error) {
	resp, err := s.kv.Txn(ctx).Then(
		clientv3.OpGet(s.serviceKey(service), clientv3.WithCountOnly()),
		clientv3.OpGet(s.metaKey(service)),
	).Commit()
	if err != nil {
		return nil, fmt.Errorf("get meta of %s: %w", service, err)
	}
	if resp.Responses[0].GetResponseRange().Count == 0 {
		return nil, ErrServiceNotFound
	}
	kvs := resp.Responses[1].GetResponseRange().Kvs
	if len(kvs) == 0 {
		return nil, ErrMetaNotFound
	}
	return &discoverd.ServiceMeta{Data: json.RawMessage(kvs[0].Value), Index: uint64(kvs[0].ModRevision)}, nil
}

// SetMeta writes a service's metadata if its current index is meta.Index
// (0: only if there is none yet) and returns the new index.
func (s *Store) SetMeta(ctx context.Context, service string, meta *discoverd.ServiceMeta) (uint64, error) {
	key := s.metaKey(service)
	var cmp clientv3.Cmp
	if meta.Index == 0 {
		cmp = clientv3.Compare(clientv3.CreateRevision(key), "=", 0)
	} else {
		cmp = clientv3.Compare(clientv3.ModRevision(key), "=", int64(meta.Index))
	}
	resp, err := s.kv.Txn(ctx).
		If(cmp, clientv3.Compare(clientv3.CreateRevision(s.serviceKey(service)), ">", 0)).
		Then(clientv3.OpPut(key, string(meta.Data))).
		Else(clientv3.OpGet(s.serviceKey(service), clientv3.WithCountOnly())).
		Commit()
	if err != nil {
		return 0, fmt.Errorf("set meta of %s: %w", service, err)
	}
	if !resp.Succeeded {
		if resp.Responses[0].GetResponseRange().Count == 0 {
			return 0, ErrServiceNotFound
		}
		return 0, ErrIndexMismatch
	}
	return uint64(resp.Header.Revision), nil
}

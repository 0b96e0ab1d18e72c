package store

import (
	"context"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// The operations Store.Observe is told about.
const (
	OpGet            = "get"
	OpPut            = "put"
	OpDelete         = "delete"
	OpTxn            = "txn"
	OpLeaseGrant     = "lease-grant"
	OpLeaseKeepAlive = "lease-keepalive"
	OpLeaseRevoke    = "lease-revoke"
	// OpWatchOpen is the time from asking for a watch until etcd
	// confirms it, the watch's events from then on being certain.
	OpWatchOpen = "watch-open"
)

// observe tells s.Observe, when set, how long op took since start; a
// deferred call times the function it is deferred in.
func (s *Store) observe(op string, start time.Time) {
	if s.Observe != nil {
		s.Observe(op, time.Since(start))
	}
}

// timedKV is etcd's KV, each request timed, as etcd's namespace package
// wraps it: the store's methods read as plain etcd calls.
type timedKV struct {
	clientv3.KV
	observe func(op string, start time.Time)
}

func (kv timedKV) Get(ctx context.Context, key string, opts ...clientv3.OpOption) (*clientv3.GetResponse, error) {
	defer kv.observe(OpGet, time.Now())
	return kv.KV.Get(ctx, key, opts...)
}

func (kv timedKV) Put(ctx context.Context, key, val string, opts ...clientv3.OpOption) (*clientv3.PutResponse, error) {
	defer kv.observe(OpPut, time.Now())
	return kv.KV.Put(ctx, key, val, opts...)
}

func (kv timedKV) Delete(ctx context.Context, key string, opts ...clientv3.OpOption) (*clientv3.DeleteResponse, error) {
	defer kv.observe(OpDelete, time.Now())
	return kv.KV.Delete(ctx, key, opts...)
}

func (kv timedKV) Txn(ctx context.Context) clientv3.Txn {
	return &timedTxn{Txn: kv.KV.Txn(ctx), observe: kv.observe}
}

// timedTxn times a transaction's Commit, its one request.
type timedTxn struct {
	clientv3.Txn
	observe func(op string, start time.Time)
}

func (t *timedTxn) If(cs ...clientv3.Cmp) clientv3.Txn {
	t.Txn = t.Txn.If(cs...)
	return t
}

func (t *timedTxn) Then(ops ...clientv3.Op) clientv3.Txn {
	t.Txn = t.Txn.Then(ops...)
	return t
}

func (t *timedTxn) Else(ops ...clientv3.Op) clientv3.Txn {
	t.Txn = t.Txn.Else(ops...)
	return t
}

func (t *timedTxn) Commit() (*clientv3.TxnResponse, error) {
	defer t.observe(OpTxn, time.Now())
	return t.Txn.Commit()
}

// timedLease is etcd's Lease, the calls the store makes timed.
type timedLease struct {
	clientv3.Lease
	observe func(op string, start time.Time)
}

func (l timedLease) Grant(ctx context.Context, ttl int64) (*clientv3.LeaseGrantResponse, error) {
	defer l.observe(OpLeaseGrant, time.Now())
	return l.Lease.Grant(ctx, ttl)
}

func (l timedLease) KeepAliveOnce(ctx context.Context, id clientv3.LeaseID) (*clientv3.LeaseKeepAliveResponse, error) {
	defer l.observe(OpLeaseKeepAlive, time.Now())
	return l.Lease.KeepAliveOnce(ctx, id)
}

func (l timedLease) Revoke(ctx context.Context, id clientv3.LeaseID) (*clientv3.LeaseRevokeResponse, error) {
	defer l.observe(OpLeaseRevoke, time.Now())
	return l.Lease.Revoke(ctx, id)
}

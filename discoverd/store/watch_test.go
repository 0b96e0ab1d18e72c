package store

import (
	"testing"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/openflynn/flynn/discoverd"
)

func put(id string, create, mod int64, addr string) *clientv3.Event {
	return &clientv3.Event{Type: clientv3.EventTypePut, Kv: &mvccpb.KeyValue{
		Key: []byte("/d/instances/s/" + id), CreateRevision: create, ModRevision: mod,
		Value: []byte(`{"id":"` + id + `","addr":"` + addr + `"}`),
	}}
}

func del(id string, create int64, addr string) *clientv3.Event {
	return &clientv3.Event{Type: clientv3.EventTypeDelete, PrevKv: &mvccpb.KeyValue{
		Key: []byte("/d/instances/s/" + id), CreateRevision: create,
		Value: []byte(`{"id":"` + id + `","addr":"` + addr + `"}`),
	}}
}

// TestInstanceSetEvents checks how etcd changes become discoverd events
// and when the leader changes.
func TestInstanceSetEvents(t *testing.T) {
	set := newInstanceSet(nil)
	steps := []struct {
		ev         *clientv3.Event
		wantKind   discoverd.EventKind
		wantLeader string // "" = no leader change
	}{
		{put("a", 10, 10, "127.0.0.1:1"), discoverd.EventUp, "a"},
		{put("b", 11, 11, "127.0.0.1:2"), discoverd.EventUp, ""},
		{put("b", 11, 12, "127.0.0.1:3"), discoverd.EventUpdate, ""},
		{del("a", 10, "127.0.0.1:1"), discoverd.EventDown, "b"},
		{del("a", 10, "127.0.0.1:1"), "", ""}, // a repeated delete says nothing
		{put("c", 13, 13, "127.0.0.1:4"), discoverd.EventUp, ""},
		{del("b", 11, "127.0.0.1:3"), discoverd.EventDown, "c"},
		{&clientv3.Event{Type: clientv3.EventTypePut, Kv: &mvccpb.KeyValue{Value: []byte("{bad")}}, "", ""},
	}
	for i, s := range steps {
		e, _ := set.apply("s", s.ev)
		var kind discoverd.EventKind
		if e != nil {
			kind = e.Kind
		}
		if kind != s.wantKind {
			t.Errorf("step %d: kind = %q, want %q", i, kind, s.wantKind)
		}
		leader, changed := set.leaderChanged()
		switch {
		case s.wantLeader == "" && changed:
			t.Errorf("step %d: leader changed to %v, want no change", i, leader)
		case s.wantLeader != "" && (!changed || leader.ID != s.wantLeader):
			t.Errorf("step %d: leader = %v (changed %v), want %s", i, leader, changed, s.wantLeader)
		}
	}
}

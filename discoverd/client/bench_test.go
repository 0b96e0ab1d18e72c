package client_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/openflynn/flynn/discoverd"
	"github.com/openflynn/flynn/discoverd/discoverdtest"
	"github.com/openflynn/flynn/discoverd/store"
)

// BenchmarkRegister measures a registration through discoverd's HTTP API
// against its peer, the bare etcd operations it stands on (grant a lease,
// put the key), against the same embedded etcd in the same run, and
// reports both and their ratio.
func BenchmarkRegister(b *testing.B) {
	srv := discoverdtest.New(b, discoverdtest.Options{})
	ctx := context.Background()
	c := srv.Client()
	if err := c.AddService(ctx, "bench"); err != nil {
		b.Fatal(err)
	}
	// The peer: a direct etcd client on the same etcd.
	etcdAddr := srv.EtcdEndpoints()
	etcd, err := store.Dial(ctx, etcdAddr, nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer etcd.Close()

	var viaDiscoverd, viaEtcd time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		start := time.Now()
		if _, err := c.RegisterOnce(ctx, "bench", inst(10000+i%50000)); err != nil {
			b.Fatal(err)
		}
		viaDiscoverd += time.Since(start)

		start = time.Now()
		lease, err := etcd.Grant(ctx, 10)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := etcd.Put(ctx, fmt.Sprintf("/peer/%d", i), `{"addr":"127.0.0.1:1"}`, clientv3.WithLease(lease.ID)); err != nil {
			b.Fatal(err)
		}
		viaEtcd += time.Since(start)
	}
	b.StopTimer()
	b.ReportMetric(float64(viaDiscoverd.Microseconds())/float64(b.N), "µs/register")
	b.ReportMetric(float64(viaEtcd.Microseconds())/float64(b.N), "µs/etcd-grant+put")
	b.ReportMetric(float64(viaDiscoverd)/float64(viaEtcd), "ratio")
	b.ReportMetric(float64(b.N)/viaDiscoverd.Seconds(), "registers/s")
}

// BenchmarkRegisterToWatch measures the time from a registration's start
// to a watcher's "up" event, with p50 and p99.
func BenchmarkRegisterToWatch(b *testing.B) {
	srv := discoverdtest.New(b, discoverdtest.Options{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c := srv.Client()
	if err := c.AddService(ctx, "watched"); err != nil {
		b.Fatal(err)
	}
	events, err := c.Watch(ctx, "watched")
	if err != nil {
		b.Fatal(err)
	}
	for e := range events {
		if e.Kind == discoverd.EventCurrent {
			break
		}
	}
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		want := inst(20000 + i%40000)
		start := time.Now()
		if _, err := c.RegisterOnce(ctx, "watched", want); err != nil {
			b.Fatal(err)
		}
		for e := range events {
			if e.Kind == discoverd.EventUp && e.Instance.Addr == want.Addr {
				break
			}
		}
		lat = append(lat, time.Since(start))
		if err := c.Deregister(ctx, "watched", want.ID); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
}

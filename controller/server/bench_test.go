package server

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/openflynn/flynn/controller"
)

// BenchmarkAPI measures GET /apps/:id and PUT /apps/:id/formations/:release
// through the client against a real Postgres with 100 apps, and compares
// the GET with its named peer: the same lookup straight through the store
// (pgx, no HTTP, JSON or auth), printing the ratio. Each reports req/s and
// p99 latency.
func BenchmarkAPI(b *testing.B) {
	h := newHarness(b)
	apps := make([]*controller.App, 100)
	releases := make([]*controller.Release, 100)
	for i := range apps {
		apps[i] = h.app(b, fmt.Sprintf("bench-%03d", i))
		releases[i] = h.release(b, apps[i], nil)
	}
	var storeRate float64
	b.Run("peer=store-get-app", func(b *testing.B) {
		storeRate = measure(b, func(ctx context.Context, i int) error {
			_, err := h.store.Apps.Get(ctx, apps[i%len(apps)].ID)
			return err
		})
	})
	b.Run("GET-app", func(b *testing.B) {
		rate := measure(b, func(ctx context.Context, i int) error {
			_, err := h.client.App(ctx, apps[i%len(apps)].ID)
			return err
		})
		if storeRate > 0 {
			b.ReportMetric(rate/storeRate, "x-of-store-rate")
		}
	})
	b.Run("PUT-formation", func(b *testing.B) {
		measure(b, func(ctx context.Context, i int) error {
			n := i % len(apps)
			return h.client.PutFormation(ctx, &controller.Formation{AppID: apps[n].ID, ReleaseID: releases[n].ID,
				Processes: map[string]int{"web": i % 5, "worker": 1}})
		})
	})
}

// measure runs op from 8 goroutines, reports req/s and p99, and returns
// the rate.
func measure(b *testing.B, op func(ctx context.Context, i int) error) float64 {
	const workers = 8
	ctx := b.Context()
	var (
		mu        sync.Mutex
		latencies = make([]time.Duration, 0, b.N)
		next      int
		wg        sync.WaitGroup
		failure   error
	)
	b.ResetTimer()
	start := time.Now()
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				mu.Lock()
				i := next
				next++
				mu.Unlock()
				if i >= b.N {
					return
				}
				t0 := time.Now()
				err := op(ctx, i)
				d := time.Since(t0)
				mu.Lock()
				latencies = append(latencies, d)
				if err != nil && failure == nil {
					failure = err
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	if failure != nil {
		b.Fatal(failure)
	}
	if len(latencies) == 0 {
		return 0
	}
	slices.Sort(latencies)
	p99 := latencies[(len(latencies)*99)/100]
	rate := float64(len(latencies)) / elapsed.Seconds()
	b.ReportMetric(rate, "req/s")
	b.ReportMetric(float64(p99.Microseconds())/1000, "p99-ms")
	return rate
}

package blobstoretest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"runtime"
	"runtime/metrics"
	"sync"
	"testing"
	"time"

	"github.com/openflynn/flynn/pkg/testdeps"
)

// LargeSize is the size of the streamed transfer in RunLarge: 1 GiB.
const LargeSize int64 = 1 << 30

// MaxHeapGrowth is how much the heap may grow over its baseline while
// RunLarge moves its blob, far below the blob's size: proof that nothing
// buffers a whole blob.
const MaxHeapGrowth = 64 << 20

// RunLarge streams a generated blob of size bytes up and back down through
// the HTTP server (in this process, so its memory is measured) and checks
// the content hash both ways and that the heap stayed within MaxHeapGrowth
// of its baseline. The client side streams too, so the bound covers both
// ends. It is an integration test: skipped under -short, except in CI.
func RunLarge(t *testing.T, factory Factory, size int64) {
	testdeps.Short(t)
	e := newEnv(t, factory, 2*size)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	mem := startHeapSampler()
	defer mem.stop()

	const path = "apps/large/slug.tgz"
	src := NewGenerated(42, size)
	start := time.Now()
	info, err := e.client.Put(ctx, path, src)
	if err != nil {
		t.Fatalf("put: %v", err)
	}
	putTime := time.Since(start)
	if info.Size != size || info.ETag != src.SHA256() {
		t.Fatalf("put stored %d bytes with etag %s, want %d bytes, %s", info.Size, info.ETag, size, src.SHA256())
	}

	start = time.Now()
	body, _, err := e.client.Get(ctx, path)
	if err != nil {
		t.Fatalf("get: %v", err)
	}
	h := sha256.New()
	n, err := io.Copy(h, body)
	body.Close()
	if err != nil {
		t.Fatalf("get: read body: %v", err)
	}
	getTime := time.Since(start)
	if got := hex.EncodeToString(h.Sum(nil)); n != size || got != src.SHA256() {
		t.Fatalf("get returned %d bytes with sha256 %s, want %d bytes, %s", n, got, size, src.SHA256())
	}

	peak, sysGrowth := mem.stop()
	mib := float64(size) / (1 << 20)
	t.Logf("%.0f MiB: put %v (%.0f MiB/s), get %v (%.0f MiB/s); heap peak +%.1f MiB, heap reserved +%.1f MiB",
		mib, putTime.Round(time.Millisecond), mib/putTime.Seconds(), getTime.Round(time.Millisecond), mib/getTime.Seconds(),
		float64(peak)/(1<<20), float64(sysGrowth)/(1<<20))
	if peak > MaxHeapGrowth {
		t.Errorf("heap grew by %d bytes at its peak, over the %d bytes allowed", peak, MaxHeapGrowth)
	}
	// Reserved heap never shrinks, so this catches a spike between samples.
	if sysGrowth > MaxHeapGrowth {
		t.Errorf("heap reservation grew by %d bytes, over the %d bytes allowed", sysGrowth, MaxHeapGrowth)
	}
	e.mustBeClean(t)
}

// heapSampler records the peak of the live heap above a baseline.
type heapSampler struct {
	baseline, baseSys uint64
	done              chan struct{}
	wg                sync.WaitGroup
	once              sync.Once
	peak              uint64
	sysGrowth         uint64
}

func startHeapSampler() *heapSampler {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	s := &heapSampler{baseline: ms.HeapInuse, baseSys: ms.HeapSys, done: make(chan struct{})}
	s.wg.Go(s.run)
	return s
}

func (s *heapSampler) run() {
	samples := []metrics.Sample{
		{Name: "/memory/classes/heap/objects:bytes"},
		{Name: "/memory/classes/heap/unused:bytes"},
	}
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	for {
		metrics.Read(samples)
		inuse := samples[0].Value.Uint64() + samples[1].Value.Uint64()
		if inuse > s.baseline && inuse-s.baseline > s.peak {
			s.peak = inuse - s.baseline
		}
		select {
		case <-s.done:
			return
		case <-tick.C:
		}
	}
}

// stop ends sampling (idempotently) and returns the peak growth of the
// in-use heap and the growth of the reserved heap.
func (s *heapSampler) stop() (peak, sysGrowth uint64) {
	s.once.Do(func() {
		close(s.done)
		s.wg.Wait()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		if ms.HeapSys > s.baseSys {
			s.sysGrowth = ms.HeapSys - s.baseSys
		}
	})
	return s.peak, s.sysGrowth
}

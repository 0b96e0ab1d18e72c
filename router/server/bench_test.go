package server

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"runtime"
	"strings"
	"testing"

	"github.com/openflynn/flynn/controller"
)

// BenchmarkProxy sends requests through the router and, in the same run,
// through its named peer, a bare httputil.ReverseProxy with the same
// transport settings, and straight to the backend. It prints the router's
// time and allocations per request relative to the peer, and what the
// proxying itself allocates (router minus direct), for a small response and
// a 100 KB one.
func BenchmarkProxy(b *testing.B) {
	for _, size := range []int{16, 100 << 10} {
		b.Run(fmt.Sprintf("body=%d", size), func(b *testing.B) {
			payload := strings.Repeat("x", size)
			backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				io.WriteString(w, payload)
			}))
			defer backend.Close()

			tr := startRouter(b, Config{})
			tr.addHTTPRoute(b, &controller.Route{ID: "bench", Domain: "bench.test"}, backend)

			target, _ := url.Parse(backend.URL)
			peer := httputil.NewSingleHostReverseProxy(target)
			peer.Transport = newTransport(&tr.cfg)
			peer.BufferPool = &bufferPool{}
			peerSrv := httptest.NewServer(peer)
			defer peerSrv.Close()

			results := map[string]benchResult{}
			for _, tc := range []struct{ name, addr string }{
				{"direct", backend.Listener.Addr().String()},
				{"peer=httputil.ReverseProxy", peerSrv.Listener.Addr().String()},
				{"router", tr.HTTPAddr().String()},
			} {
				b.Run(tc.name, func(b *testing.B) {
					results[tc.name] = runRequests(b, tc.addr, size)
				})
			}
			r, p, d := results["router"], results["peer=httputil.ReverseProxy"], results["direct"]
			if r.n > 0 && p.n > 0 {
				fmt.Printf("BenchmarkProxy/body=%d: router %.0f ns/req, peer httputil.ReverseProxy %.0f ns/req: router/peer time ratio %.2f; allocs/req router %.1f peer %.1f direct %.1f (router's own %.1f, %.0f B)\n",
					size, r.nsPerOp(), p.nsPerOp(), r.nsPerOp()/p.nsPerOp(),
					r.allocsPerOp(), p.allocsPerOp(), d.allocsPerOp(), r.allocsPerOp()-d.allocsPerOp(), r.bytesPerOp()-d.bytesPerOp())
			}
		})
	}
}

type benchResult struct {
	n             int
	ns            int64
	allocs, bytes uint64
}

func (r benchResult) nsPerOp() float64     { return float64(r.ns) / float64(r.n) }
func (r benchResult) allocsPerOp() float64 { return float64(r.allocs) / float64(r.n) }
func (r benchResult) bytesPerOp() float64  { return float64(r.bytes) / float64(r.n) }

// runRequests sends b.N keep-alive GETs to addr and checks each answer.
func runRequests(b *testing.B, addr string, size int) benchResult {
	tp := &http.Transport{MaxIdleConnsPerHost: 16, DialContext: (&net.Dialer{}).DialContext}
	defer tp.CloseIdleConnections()
	client := &http.Client{Transport: tp}
	req, _ := http.NewRequest("GET", "http://"+addr+"/", nil)
	req.Host = "bench.test"
	buf := make([]byte, 32<<10)
	b.ReportAllocs()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		resp, err := client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		n, _ := io.CopyBuffer(io.Discard, resp.Body, buf)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || int(n) != size {
			b.Fatalf("status %d, %d bytes", resp.StatusCode, n)
		}
	}
	b.StopTimer()
	runtime.ReadMemStats(&after)
	return benchResult{n: b.N, ns: b.Elapsed().Nanoseconds(), allocs: after.Mallocs - before.Mallocs, bytes: after.TotalAlloc - before.TotalAlloc}
}

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
	"sync/atomic"
	"testing"
	"time"

	"github.com/openflynn/flynn/controller"
	"github.com/openflynn/flynn/logaggregator"
)

// BenchmarkProxy sends requests through the router, with each HTTP
// engine, and, in the same run, through its named peer, a bare
// httputil.ReverseProxy with the same transport settings, and straight to
// the backend. It prints each engine's time and allocations per request
// relative to the peer, and what the proxying itself allocates (router
// minus direct), for a small response and a 100 KB one; then what writing
// each request's line for the app's log adds (a fasthttp router with
// Config.RequestLog set, minus one without). The client is Go's, so the
// numbers include its own cost; test/bench/router (make bench-router)
// measures against nginx with wrk.
func BenchmarkProxy(b *testing.B) {
	for _, size := range []int{16, 100 << 10} {
		b.Run(fmt.Sprintf("body=%d", size), func(b *testing.B) {
			payload := strings.Repeat("x", size)
			backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				io.WriteString(w, payload)
			}))
			defer backend.Close()

			route := func() *controller.Route { return &controller.Route{ID: "bench", AppID: "app", Domain: "bench.test"} }
			fast := startRouter(b, Config{HTTPEngine: EngineFastHTTP})
			fast.addHTTPRoute(b, route(), backend)
			std := startRouter(b, Config{HTTPEngine: EngineNetHTTP})
			std.addHTTPRoute(b, route(), backend)
			lines := &countingLog{}
			logging := startRouter(b, Config{HTTPEngine: EngineFastHTTP, RequestLog: lines, JobID: "router-job", HostID: "host"})
			logging.addHTTPRoute(b, route(), backend)

			target, _ := url.Parse(backend.URL)
			peer := httputil.NewSingleHostReverseProxy(target)
			peer.Transport = newTransport(&fast.cfg)
			peer.BufferPool = &bufferPool{}
			peerSrv := httptest.NewServer(peer)
			defer peerSrv.Close()

			results := map[string]benchResult{}
			for _, tc := range []struct{ name, addr string }{
				{"direct", backend.Listener.Addr().String()},
				{"peer=httputil.ReverseProxy", peerSrv.Listener.Addr().String()},
				{"router=fasthttp", fast.HTTPAddr().String()},
				{"router=net/http", std.HTTPAddr().String()},
				{"router=fasthttp+request_log", logging.HTTPAddr().String()},
			} {
				b.Run(tc.name, func(b *testing.B) {
					results[tc.name] = runRequests(b, tc.addr, size)
				})
			}
			p, d := results["peer=httputil.ReverseProxy"], results["direct"]
			for _, engine := range []string{EngineFastHTTP, EngineNetHTTP} {
				r := results["router="+engine]
				if r.n > 0 && p.n > 0 {
					fmt.Printf("BenchmarkProxy/body=%d: router (%s) %.0f ns/req, peer httputil.ReverseProxy %.0f ns/req: router/peer time ratio %.2f; allocs/req router %.1f peer %.1f direct %.1f (router's own %.1f, %.0f B)\n",
						size, engine, r.nsPerOp(), p.nsPerOp(), r.nsPerOp()/p.nsPerOp(),
						r.allocsPerOp(), p.allocsPerOp(), d.allocsPerOp(), r.allocsPerOp()-d.allocsPerOp(), r.bytesPerOp()-d.bytesPerOp())
				}
			}
			if r, l := results["router="+EngineFastHTTP], results["router=fasthttp+request_log"]; r.n > 0 && l.n > 0 {
				fmt.Printf("BenchmarkProxy/body=%d: request log on %.0f ns/req, off %.0f ns/req (%+.0f ns); allocs/req on %.1f off %.1f (%+.1f, %+.0f B)\n",
					size, l.nsPerOp(), r.nsPerOp(), l.nsPerOp()-r.nsPerOp(),
					l.allocsPerOp(), r.allocsPerOp(), l.allocsPerOp()-r.allocsPerOp(), l.bytesPerOp()-r.bytesPerOp())
			}
		})
	}
}

// countingLog is a RequestLogger that only counts, as cheap as a shipper
// that queues the line.
type countingLog struct{ n atomic.Int64 }

func (c *countingLog) Ship(logaggregator.Line) { c.n.Add(1) }

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

// BenchmarkRequestLine is what writing one request's line costs the
// request, without the noise of the network: the line's string is its one
// allocation.
func BenchmarkRequestLine(b *testing.B) {
	r := &Router{cfg: Config{RequestLog: &countingLog{}, JobID: "router-job", HostID: "host"}}
	r.lineBuffers.New = func() any { return new([]byte) }
	x := &exchange{r: r, entry: &routeEntry{route: &controller.Route{AppID: "app"}}, proto: "https",
		requestID: "8d3a4c1e-5b7f-4e2a-9c0d-1f2e3a4b5c6d", fwd: "203.0.113.7", backend: "10.0.0.5:55012", status: 200, bytes: 1234}
	req := httptest.NewRequest(http.MethodGet, "/items?page=2&sort=name", nil)
	start := time.Now()
	end := start.Add(12 * time.Millisecond)
	b.ReportAllocs()
	for b.Loop() {
		r.logRequest(x, req, start, end)
	}
}

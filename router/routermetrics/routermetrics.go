// Package routermetrics reads what the cluster's routers count of an
// app's HTTP requests, for GET /apps/:id/metrics:
//
//	discoverd "router-http" ──► GET /metrics of each router, at once
//	                             ──► the series of the app's routes, summed
//	                             ──► controller.AppMetrics
//
// Each router counts only the requests it proxied, so every router is
// read; one that does not answer within Timeout is counted in
// RoutersFailed and left out rather than failing the whole reading.
package routermetrics

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"slices"
	"sync"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/openflynn/flynn/controller"
	"github.com/openflynn/flynn/discoverd"
	"github.com/openflynn/flynn/pkg/authkey"
	"github.com/openflynn/flynn/pkg/httpjson"
	"github.com/openflynn/flynn/pkg/metrics"
)

// Service is the discoverd service of the routers' metrics listeners
// (their job port; see router/server.Config.MetricsAddr).
const Service = "router-http"

// The router's series this package reads (router/server/metrics.go).
const (
	requestsSeries = "flynn_router_requests_total"
	durationSeries = "flynn_router_request_duration_seconds"
)

// DefaultTimeout bounds the reading of one router.
const DefaultTimeout = 3 * time.Second

// maxBody bounds one router's metrics: a few kilobytes per route, so
// this leaves room for tens of thousands of routes.
const maxBody = 128 << 20

// InstanceLister lists the live instances of a discoverd service;
// discoverd/client's Client is one.
type InstanceLister interface {
	Instances(ctx context.Context, service string) ([]*discoverd.Instance, error)
}

// Scraper reads the routers' metrics.
type Scraper struct {
	instances InstanceLister
	key       string
	hc        *http.Client

	// Timeout bounds the reading of each router; default DefaultTimeout.
	Timeout time.Duration
	// Logger gets a line for each router that fails; default discards.
	Logger *slog.Logger
}

// New returns a Scraper that finds the routers with d and reads them with
// hc (nil: a client of its own) sending key, the cluster key, which the
// routers' /metrics require.
func New(d InstanceLister, key string, hc *http.Client) *Scraper {
	if hc == nil {
		hc = &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}
	}
	return &Scraper{instances: d, key: key, hc: hc, Timeout: DefaultTimeout, Logger: slog.New(slog.DiscardHandler)}
}

// AppMetrics reads every router and sums the series of the routes whose
// ids are routeIDs. It fails only when the routers cannot be listed; no
// router registered is a reading of none.
func (s *Scraper) AppMetrics(ctx context.Context, routeIDs []string) (*controller.AppMetrics, error) {
	insts, err := s.instances.Instances(ctx, Service)
	if err != nil && !httpjson.IsNotFound(err) {
		return nil, fmt.Errorf("routermetrics: list routers: %w", err)
	}
	families := make([]map[string]*dto.MetricFamily, len(insts))
	var wg sync.WaitGroup
	for i, inst := range insts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f, err := s.scrape(ctx, inst)
			if err != nil {
				s.Logger.Warn("read router metrics", "router", inst.Addr, "err", err)
				return
			}
			families[i] = f
		}()
	}
	wg.Wait()

	routes := make(map[string]bool, len(routeIDs))
	for _, id := range routeIDs {
		routes[id] = true
	}
	m := &controller.AppMetrics{Time: time.Now().UTC(), ByStatus: map[string]float64{}, Duration: []controller.Bucket{}}
	var h histogram
	for _, f := range families {
		if f == nil {
			m.RoutersFailed++
			continue
		}
		m.Routers++
		for _, s := range f[requestsSeries].GetMetric() {
			if routes[label(s, "route")] {
				v := s.GetCounter().GetValue()
				m.Requests += v
				m.ByStatus[label(s, "status")] += v
			}
		}
		for _, s := range f[durationSeries].GetMetric() {
			if routes[label(s, "route")] {
				h.add(s.GetHistogram())
			}
		}
	}
	m.Duration, m.DurationCount = h.buckets(), h.count
	return m, nil
}

// scrape reads one router's metrics.
func (s *Scraper) scrape(ctx context.Context, inst *discoverd.Instance) (map[string]*dto.MetricFamily, error) {
	ctx, cancel := context.WithTimeout(ctx, s.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+inst.Addr+metrics.Path, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", string(expfmt.NewFormat(expfmt.TypeTextPlain)))
	authkey.Set(req, s.key)
	resp, err := s.hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
		return nil, fmt.Errorf("GET %s: %s", req.URL, resp.Status)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	f, err := parser.TextToMetricFamilies(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", req.URL, err)
	}
	return f, nil
}

// label is the value of a series' label name, "" when it has none.
func label(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

// histogram sums cumulative histograms.
type histogram struct {
	// sums holds the counts summed by upper bound, and in how many of
	// the histograms each bound was.
	sums map[float64]*boundSum
	// n is how many histograms were summed; count their total count.
	n     int
	count float64
}

type boundSum struct {
	count float64
	seen  int
}

func (h *histogram) add(d *dto.Histogram) {
	if h.sums == nil {
		h.sums = map[float64]*boundSum{}
	}
	h.n++
	h.count += float64(d.GetSampleCount())
	for _, b := range d.GetBucket() {
		ub := b.GetUpperBound()
		if math.IsInf(ub, +1) {
			continue // the total count, kept apart
		}
		s := h.sums[ub]
		if s == nil {
			s = &boundSum{}
			h.sums[ub] = s
		}
		s.count += float64(b.GetCumulativeCount())
		s.seen++
	}
}

// buckets are the summed buckets, lowest bound first. Only the bounds
// every histogram has are kept: routers of two versions with different
// buckets would otherwise give a bound the counts of some routers only.
func (h *histogram) buckets() []controller.Bucket {
	out := []controller.Bucket{}
	for ub, s := range h.sums {
		if s.seen == h.n {
			out = append(out, controller.Bucket{UpperBound: ub, Count: s.count})
		}
	}
	slices.SortFunc(out, func(a, b controller.Bucket) int { return cmp.Compare(a.UpperBound, b.UpperBound) })
	return out
}

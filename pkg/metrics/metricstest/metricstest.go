// Package metricstest reads a daemon's metrics in tests as Prometheus does:
// a GET with the daemon's key as the basic-auth password, the text format
// parsed by Prometheus's own parser, so that a series that would not
// survive a real scrape fails the test. What it returns keeps of each
// series what tests check: its labels, its value and, for a histogram,
// how many observations it has.
//
//	scraped := metricstest.Get(t, srv.URL+metrics.Path, key)
//	if got, ok := scraped.Find("flynn_x_requests_total", map[string]string{"code": "200"}); !ok || got.Value != 2 {
//		t.Errorf(...)
//	}
package metricstest

import (
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// timeout bounds one request, as Prometheus's default scrape_timeout does.
const timeout = 10 * time.Second

// Series is one series of a scrape.
type Series struct {
	// Labels are the series' labels by name; empty, never nil, for a
	// series without labels.
	Labels map[string]string
	// Value is a counter's, a gauge's or an untyped series' value; 0 for
	// a histogram or a summary.
	Value float64
	// Count is a histogram's or a summary's number of observations; 0 for
	// other series.
	Count uint64
}

// Scrape is what one scrape returned: each family's series, by the
// family's name. A family without series is left out, as Prometheus
// leaves it out.
type Scrape map[string][]Series

// Get reads url with key (see Status) and parses what it returns. It fails
// t unless the answer is 200 and parses.
func Get(t testing.TB, url, key string) Scrape {
	t.Helper()
	resp := do(t, url, key)
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s, want 200", url, resp.Status)
	}
	return Parse(t, resp.Body)
}

// Status reads url with key as the basic-auth password ("" sends no
// credentials) and returns the answer's status code, for the checks that
// the metrics refuse a request without the key.
func Status(t testing.TB, url, key string) int {
	t.Helper()
	resp := do(t, url, key)
	resp.Body.Close()
	return resp.StatusCode
}

// Parse parses r, in Prometheus's text format, failing t when it does not
// parse.
func Parse(t testing.TB, r io.Reader) Scrape {
	t.Helper()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(r)
	if err != nil {
		t.Fatalf("metrics do not parse: %v", err)
	}
	out := Scrape{}
	for name, f := range families {
		for _, m := range f.GetMetric() {
			s := Series{
				Labels: map[string]string{},
				Value:  m.GetCounter().GetValue() + m.GetGauge().GetValue() + m.GetUntyped().GetValue(),
				Count:  m.GetHistogram().GetSampleCount() + m.GetSummary().GetSampleCount(),
			}
			for _, l := range m.GetLabel() {
				s.Labels[l.GetName()] = l.GetValue()
			}
			out[name] = append(out[name], s)
		}
	}
	return out
}

// Find returns the first series of family name whose labels include
// labels (nil matches any series), and whether there is one. A label
// wanted empty matches a series without it: to Prometheus they are the
// same.
func (s Scrape) Find(name string, labels map[string]string) (Series, bool) {
	for _, series := range s[name] {
		if includes(series.Labels, labels) {
			return series, true
		}
	}
	return Series{}, false
}

// Has reports whether the scrape has a series of family name.
func (s Scrape) Has(name string) bool {
	return len(s[name]) > 0
}

func includes(have, want map[string]string) bool {
	for k, v := range want {
		if have[k] != v {
			return false
		}
	}
	return true
}

func do(t testing.TB, url, key string) *http.Response {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if key != "" {
		req.SetBasicAuth("", key)
	}
	resp, err := (&http.Client{Timeout: timeout}).Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	return resp
}

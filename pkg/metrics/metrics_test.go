package metrics_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/julienschmidt/httprouter"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/openflynn/flynn/pkg/metrics"
)

func TestHTTPMetrics(t *testing.T) {
	reg := metrics.NewRegistry()
	m := metrics.NewHTTP(reg, "flynn_test")
	r := m.Router()
	r.GET("/apps/:id", func(w http.ResponseWriter, _ *http.Request, ps httprouter.Params) {
		if ps.ByName("id") == "missing" {
			http.Error(w, "no", http.StatusNotFound)
			return
		}
		io.WriteString(w, "ok")
	})
	r.GET("/stream", func(w http.ResponseWriter, _ *http.Request, _ httprouter.Params) {
		if _, ok := w.(http.Flusher); !ok {
			t.Error("a route's writer is no http.Flusher")
		}
	})
	r.GET("/panics", func(http.ResponseWriter, *http.Request, httprouter.Params) { panic("bad") })
	r.PanicHandler = func(w http.ResponseWriter, _ *http.Request, _ any) { w.WriteHeader(http.StatusInternalServerError) }
	r.Handler(http.MethodGet, metrics.Path, metrics.Handler(reg, "s3cret"))
	srv := httptest.NewServer(m.Wrap(r))
	defer srv.Close()

	for _, path := range []string{"/apps/a", "/apps/b", "/apps/missing", "/nowhere", "/stream", "/panics"} {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	resp, err := http.Get(srv.URL + metrics.Path)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("metrics without the key: %d, want 401", resp.StatusCode)
	}
	req, _ := http.NewRequest(http.MethodGet, srv.URL+metrics.Path, nil)
	req.SetBasicAuth("", "s3cret")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("metrics do not parse: %v", err)
	}
	for _, name := range []string{"go_goroutines", "process_cpu_seconds_total", "flynn_test_http_request_duration_seconds"} {
		if families[name] == nil {
			t.Errorf("no %s", name)
		}
	}
	got := map[string]float64{}
	for _, mt := range families["flynn_test_http_requests_total"].GetMetric() {
		var labels []string
		for _, l := range mt.GetLabel() {
			labels = append(labels, l.GetName()+"="+l.GetValue())
		}
		got[strings.Join(labels, ",")] = mt.GetCounter().GetValue()
	}
	want := map[string]float64{
		"code=200,method=GET,route=/apps/:id": 2,
		"code=404,method=GET,route=/apps/:id": 1,
		"code=404,method=GET,route=unmatched": 1,
		"code=200,method=GET,route=/stream":   1,
		"code=401,method=GET,route=/metrics":  1,
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("requests{%s} = %v, want %v (all: %v)", k, got[k], v, got)
		}
	}
}

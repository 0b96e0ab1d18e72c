package metricstest_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"runtime"
	"strings"
	"testing"

	"github.com/openflynn/flynn/pkg/metrics/metricstest"
)

const exposition = `# TYPE requests_total counter
requests_total{code="200",route="/apps"} 3
requests_total{code="404",route="/apps"} 1
# TYPE up gauge
up 1
# TYPE legacy untyped
legacy 7
# TYPE duration_seconds histogram
duration_seconds_bucket{le="1"} 2
duration_seconds_bucket{le="+Inf"} 5
duration_seconds_sum 4.5
duration_seconds_count 5
# TYPE latency_seconds summary
latency_seconds_sum 1
latency_seconds_count 4
# TYPE declared_only counter
`

func TestFind(t *testing.T) {
	scraped := metricstest.Parse(t, strings.NewReader(exposition))
	tests := []struct {
		name, family string
		labels       map[string]string
		want         metricstest.Series
		found        bool
	}{
		{"a counter by its labels", "requests_total", map[string]string{"code": "404"}, metricstest.Series{Labels: map[string]string{"code": "404", "route": "/apps"}, Value: 1}, true},
		{"all its labels", "requests_total", map[string]string{"code": "200", "route": "/apps"}, metricstest.Series{Labels: map[string]string{"code": "200", "route": "/apps"}, Value: 3}, true},
		{"no labels: the first series", "requests_total", nil, metricstest.Series{Labels: map[string]string{"code": "200", "route": "/apps"}, Value: 3}, true},
		{"a label value no series has", "requests_total", map[string]string{"code": "500"}, metricstest.Series{}, false},
		{"a label no series has", "requests_total", map[string]string{"method": "GET"}, metricstest.Series{}, false},
		{"a label wanted empty is one absent", "up", map[string]string{"method": ""}, metricstest.Series{Labels: map[string]string{}, Value: 1}, true},
		{"a gauge", "up", nil, metricstest.Series{Labels: map[string]string{}, Value: 1}, true},
		{"an untyped series", "legacy", nil, metricstest.Series{Labels: map[string]string{}, Value: 7}, true},
		{"a histogram's count", "duration_seconds", nil, metricstest.Series{Labels: map[string]string{}, Count: 5}, true},
		{"a summary's count", "latency_seconds", nil, metricstest.Series{Labels: map[string]string{}, Count: 4}, true},
		{"a family without series", "declared_only", nil, metricstest.Series{}, false},
		{"no such family", "nothing", nil, metricstest.Series{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, found := scraped.Find(tt.family, tt.labels)
			if found != tt.found || !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Find(%q, %v) = %+v, %v; want %+v, %v", tt.family, tt.labels, got, found, tt.want, tt.found)
			}
			if has := scraped.Has(tt.family); has != (tt.family != "declared_only" && tt.family != "nothing") {
				t.Errorf("Has(%q) = %v", tt.family, has)
			}
		})
	}
}

// TestGet: the key goes as the basic-auth password, and anything but a
// 200 that parses fails the test.
func TestGet(t *testing.T) {
	const key = "s3cret"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, pass, ok := r.BasicAuth(); !ok || pass != key {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		switch r.URL.Path {
		case "/metrics":
			io.WriteString(w, exposition)
		case "/garbage":
			io.WriteString(w, "this is { not metrics\n")
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()

	statuses := []struct {
		name, path, key string
		want            int
	}{
		{"no key", "/metrics", "", http.StatusUnauthorized},
		{"a wrong key", "/metrics", "guess", http.StatusUnauthorized},
		{"the key", "/metrics", key, http.StatusOK},
	}
	for _, tt := range statuses {
		if got := metricstest.Status(t, srv.URL+tt.path, tt.key); got != tt.want {
			t.Errorf("%s: Status = %d, want %d", tt.name, got, tt.want)
		}
	}

	if got, ok := metricstest.Get(t, srv.URL+"/metrics", key).Find("up", nil); !ok || got.Value != 1 {
		t.Errorf("Get: up = %+v (found %v), want 1", got, ok)
	}
	fails := []struct{ name, path, key, want string }{
		{"refused", "/metrics", "", "401 Unauthorized, want 200"},
		{"not found", "/nowhere", key, "404 Not Found, want 200"},
		{"does not parse", "/garbage", key, "metrics do not parse"},
	}
	for _, tt := range fails {
		t.Run(tt.name, func(t *testing.T) {
			if got := fatal(t, func(tb testing.TB) { metricstest.Get(tb, srv.URL+tt.path, tt.key) }); !strings.Contains(got, tt.want) {
				t.Errorf("Get failed with %q, want it to say %q", got, tt.want)
			}
		})
	}
}

// fatalRecorder is a testing.TB whose Fatal ends only the goroutine it is
// called in, recording what it said.
type fatalRecorder struct {
	testing.TB
	msg string
}

func (r *fatalRecorder) Helper() {}

func (r *fatalRecorder) Fatal(args ...any) {
	r.msg = fmt.Sprint(args...)
	runtime.Goexit()
}

func (r *fatalRecorder) Fatalf(format string, args ...any) {
	r.msg = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

// fatal runs f and returns what it failed the test with; it fails t when
// f does not fail.
func fatal(t *testing.T, f func(testing.TB)) string {
	t.Helper()
	r := &fatalRecorder{TB: t}
	done := make(chan bool)
	go func() {
		defer close(done)
		f(r)
		done <- true
	}()
	if <-done {
		t.Fatal("it did not fail the test")
	}
	return r.msg
}

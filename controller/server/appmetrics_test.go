package server

import (
	"context"
	"errors"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/openflynn/flynn/controller"
	"github.com/openflynn/flynn/pkg/httpjson"
)

// fakeRouterMetrics answers every reading with m (or err) and records
// the route ids it was asked for.
type fakeRouterMetrics struct {
	m   *controller.AppMetrics
	err error

	mu    sync.Mutex
	asked [][]string
}

var _ RouterMetrics = (*fakeRouterMetrics)(nil)

func (f *fakeRouterMetrics) AppMetrics(_ context.Context, routeIDs []string) (*controller.AppMetrics, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.asked = append(f.asked, slices.Sorted(slices.Values(routeIDs)))
	return f.m, f.err
}

func (f *fakeRouterMetrics) lastAsked() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.asked) == 0 {
		return nil
	}
	return f.asked[len(f.asked)-1]
}

// TestAppMetrics: GET /apps/:id/metrics asks the routers about the app's
// HTTP routes, not its TCP routes nor another app's, and answers what
// they counted.
func TestAppMetrics(t *testing.T) {
	h := newHarness(t)
	ctx := t.Context()
	shop, other := h.app(t, "shop"), h.app(t, "other")
	h.app(t, "quiet")
	var want []string
	for _, r := range []*controller.Route{
		{Type: controller.RouteTypeHTTP, Service: "shop-web", Domain: "shop.test"},
		{Type: controller.RouteTypeHTTP, Service: "shop-api", Domain: "shop.test", Path: "/api"},
		{Type: controller.RouteTypeTCP, Service: "shop-db"},
	} {
		if err := h.client.CreateRoute(ctx, shop.ID, r); err != nil {
			t.Fatal(err)
		}
		if r.Type == controller.RouteTypeHTTP {
			want = append(want, r.ID)
		}
	}
	slices.Sort(want)
	if err := h.client.CreateRoute(ctx, other.ID, &controller.Route{Type: controller.RouteTypeHTTP, Service: "other-web", Domain: "other.test"}); err != nil {
		t.Fatal(err)
	}

	if _, err := h.client.AppMetrics(ctx, "shop"); !httpjson.IsCode(err, httpjson.CodeServiceUnavailable) {
		t.Fatalf("without router metrics: %v, want service_unavailable", err)
	}

	reading := &controller.AppMetrics{
		Time:          time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC),
		Routers:       2,
		RoutersFailed: 1,
		Requests:      13,
		ByStatus:      map[string]float64{"2xx": 10, "5xx": 2, controller.StatusClassClientGone: 1},
		Duration:      []controller.Bucket{{UpperBound: 0.1, Count: 5}, {UpperBound: 1, Count: 11}},
		DurationCount: 13,
	}
	fake := &fakeRouterMetrics{m: reading}
	h.server.opts.RouterMetrics = fake
	tests := []struct {
		name      string
		app       string
		wantIDs   []string
		wantError httpjson.Code
	}{
		{name: "by name", app: "shop", wantIDs: want},
		{name: "by id", app: shop.ID, wantIDs: want},
		{name: "no routes", app: "quiet", wantIDs: nil},
		{name: "an unknown app", app: "nope", wantError: httpjson.CodeNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := h.client.AppMetrics(ctx, tt.app)
			if tt.wantError != "" {
				if !httpjson.IsCode(err, tt.wantError) {
					t.Fatalf("err %v, want %s", err, tt.wantError)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, reading) {
				t.Errorf("got  %+v\nwant %+v", got, reading)
			}
			if ids := fake.lastAsked(); !slices.Equal(ids, tt.wantIDs) {
				t.Errorf("asked about routes %v, want %v", ids, tt.wantIDs)
			}
		})
	}

	// Without discoverd the routers cannot be found; the client may try
	// again.
	h.server.opts.RouterMetrics = &fakeRouterMetrics{err: errors.New("discoverd: connection refused")}
	_, err := h.client.AppMetrics(ctx, "shop")
	var apiErr *httpjson.Error
	if !errors.As(err, &apiErr) || apiErr.Code != httpjson.CodeServiceUnavailable || !apiErr.Retry {
		t.Errorf("routers not found: %v, want a service_unavailable to retry", err)
	}
}

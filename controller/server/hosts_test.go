package server

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"reflect"
	"testing"
	"time"

	"github.com/openflynn/flynn/controller"
	"github.com/openflynn/flynn/controller/client"
	"github.com/openflynn/flynn/pkg/authkey"
	"github.com/openflynn/flynn/pkg/httpjson"
)

// hostListingRunner is a runner that also lists hosts.
type hostListingRunner struct {
	fakeRunner
	hosts []*controller.Host
}

var _ HostLister = (*hostListingRunner)(nil)

func (r *hostListingRunner) Hosts(context.Context) ([]*controller.Host, error) { return r.hosts, nil }

// hostStatsRunner is a runner that lists hosts with or without stats.
type hostStatsRunner struct {
	hostListingRunner
	withStats []*controller.Host
}

var _ HostStatsLister = (*hostStatsRunner)(nil)

func (r *hostStatsRunner) HostsWithStats(context.Context) ([]*controller.Host, error) {
	return r.withStats, nil
}

func TestHosts(t *testing.T) {
	h := newHarness(t)
	if _, err := h.client.Hosts(t.Context()); !httpjson.IsCode(err, httpjson.CodeServiceUnavailable) {
		t.Errorf("a runner that cannot list hosts: err = %v, want service_unavailable", err)
	}

	hosts := []*controller.Host{
		{ID: "h1", Addr: "10.0.0.1", Status: controller.HostUp, Jobs: 4},
		{ID: "h2", Addr: "10.0.0.2", Status: controller.HostUnreachable, Error: "dial tcp 10.0.0.2:1113: i/o timeout"},
	}
	for _, tt := range []struct {
		name  string
		hosts []*controller.Host
		want  []*controller.Host
	}{
		{"two hosts", hosts, hosts},
		{"none", nil, []*controller.Host{}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			srv, err := New(h.store, Options{AuthKey: testKey, Logger: slog.New(slog.DiscardHandler), Runner: &hostListingRunner{hosts: tt.hosts}})
			if err != nil {
				t.Fatal(err)
			}
			hs := httptest.NewServer(srv)
			defer srv.Close()
			defer hs.Close()
			got, err := client.New(hs.URL, testKey).Hosts(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("hosts = %+v, want %+v", got, tt.want)
			}
			if _, err := client.New(hs.URL, "").Hosts(t.Context()); !httpjson.IsCode(err, httpjson.CodeUnauthorized) {
				t.Errorf("without a key: err = %v, want unauthorized", err)
			}
		})
	}
}

// TestHostsWithStats: ?stats=true asks the runner for its hosts with
// stats and passes them through; a runner that cannot read stats lists
// its hosts without.
func TestHostsWithStats(t *testing.T) {
	h := newHarness(t)
	at := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	plain := []*controller.Host{
		{ID: "h1", Addr: "10.0.0.1", Status: controller.HostUp, Jobs: 4},
		{ID: "h2", Addr: "10.0.0.2", Status: controller.HostUp, Jobs: 1},
	}
	withStats := []*controller.Host{
		{ID: "h1", Addr: "10.0.0.1", Status: controller.HostUp, Jobs: 4, Stats: &controller.HostStats{CPUPercent: 162.5, MemoryBytes: 128 << 20, Jobs: 3, Time: at}},
		{ID: "h2", Addr: "10.0.0.2", Status: controller.HostUp, Jobs: 1}, // its stats did not come
	}
	for _, tt := range []struct {
		name   string
		runner JobRunner
		list   func(*client.Client, context.Context) ([]*controller.Host, error)
		want   []*controller.Host
	}{
		{"with stats", &hostStatsRunner{hostListingRunner{hosts: plain}, withStats}, (*client.Client).HostsWithStats, withStats},
		{"without asking", &hostStatsRunner{hostListingRunner{hosts: plain}, withStats}, (*client.Client).Hosts, plain},
		{"a runner without stats", &hostListingRunner{hosts: plain}, (*client.Client).HostsWithStats, plain},
	} {
		t.Run(tt.name, func(t *testing.T) {
			srv, err := New(h.store, Options{AuthKey: testKey, Logger: slog.New(slog.DiscardHandler), Runner: tt.runner})
			if err != nil {
				t.Fatal(err)
			}
			hs := httptest.NewServer(srv)
			defer srv.Close()
			defer hs.Close()
			got, err := tt.list(client.New(hs.URL, testKey), t.Context())
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("hosts = %s, want %s", hostsJSON(got), hostsJSON(tt.want))
			}
		})
	}

	t.Run("a stats value that is no bool", func(t *testing.T) {
		srv, err := New(h.store, Options{AuthKey: testKey, Logger: slog.New(slog.DiscardHandler), Runner: &hostStatsRunner{}})
		if err != nil {
			t.Fatal(err)
		}
		hs := httptest.NewServer(srv)
		defer srv.Close()
		defer hs.Close()
		req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, hs.URL+"/hosts?stats=yes", nil)
		if err != nil {
			t.Fatal(err)
		}
		authkey.Set(req, testKey)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if err := httpjson.ReadError(resp); !httpjson.IsCode(err, httpjson.CodeValidation) {
			t.Errorf("?stats=yes: status %d, err %v; want a validation error", resp.StatusCode, err)
		}
	})
}

// hostsJSON shows hosts with their stats, which %+v shows as pointers.
func hostsJSON(hosts []*controller.Host) string {
	b, _ := json.Marshal(hosts)
	return string(b)
}

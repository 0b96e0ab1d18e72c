package server

import (
	"context"
	"log/slog"
	"net/http/httptest"
	"reflect"
	"testing"

	"github.com/openflynn/flynn/controller"
	"github.com/openflynn/flynn/controller/client"
	"github.com/openflynn/flynn/pkg/httpjson"
)

// hostListingRunner is a runner that also lists hosts.
type hostListingRunner struct {
	fakeRunner
	hosts []*controller.Host
}

var _ HostLister = (*hostListingRunner)(nil)

func (r *hostListingRunner) Hosts(context.Context) ([]*controller.Host, error) { return r.hosts, nil }

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

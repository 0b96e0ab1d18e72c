package hostrunner

import (
	"context"
	"log/slog"
	"net"
	"testing"

	"github.com/openflynn/flynn/controller"
	"github.com/openflynn/flynn/discoverd"
	"github.com/openflynn/flynn/host"
)

func TestHosts(t *testing.T) {
	d := startFakeHosts(t,
		&fakeHost{id: "h2", ip: "10.0.0.2", jobs: map[host.JobState]int{host.StateUp: 3, host.StateStarting: 1, host.StateDown: 7}},
		&fakeHost{id: "h1", ip: "10.0.0.1"},
		&fakeHost{id: "h3", down: true},
	)
	// A host whose registration has not expired yet, though nothing
	// answers at its address any more.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gone := ln.Addr().String()
	ln.Close()
	d.insts = append(d.insts,
		&discoverd.Instance{Addr: gone, Meta: map[string]string{"id": "h4"}},
		&discoverd.Instance{Addr: "127.0.0.1:1"}, // no id: not a host
	)
	r := New(d, "key", slog.New(slog.DiscardHandler))
	got, err := r.Hosts(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	want := []controller.Host{
		{ID: "h1", Addr: "10.0.0.1", Status: controller.HostUp},
		{ID: "h2", Addr: "10.0.0.2", Status: controller.HostUp, Jobs: 4},
		{ID: "h3", Addr: "127.0.0.1", Status: controller.HostUnreachable},
		{ID: "h4", Addr: "127.0.0.1", Status: controller.HostUnreachable},
	}
	if len(got) != len(want) {
		t.Fatalf("got %d hosts, want %d: %+v", len(got), len(want), got)
	}
	for i, w := range want {
		g := *got[i]
		hadErr := g.Error != ""
		g.Error = ""
		if g != w {
			t.Errorf("host %d = %+v, want %+v", i, g, w)
		}
		if hadErr != (w.Status == controller.HostUnreachable) {
			t.Errorf("host %s: error %q, want one exactly when unreachable", w.ID, got[i].Error)
		}
	}
}

func TestHostsNoneRegistered(t *testing.T) {
	r := New(&fakeDiscoverd{}, "key", slog.New(slog.DiscardHandler))
	got, err := r.Hosts(context.Background())
	if err != nil || len(got) != 0 {
		t.Fatalf("Hosts = %v, %v; want an empty list", got, err)
	}
}

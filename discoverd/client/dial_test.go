package client_test

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/openflynn/flynn/discoverd"
	"github.com/openflynn/flynn/discoverd/client"
	"github.com/openflynn/flynn/discoverd/discoverdtest"
	"github.com/openflynn/flynn/pkg/httpjson"
)

func TestServiceOf(t *testing.T) {
	tests := []struct {
		host, service string
		leader, ok    bool
	}{
		{"controller.discoverd", "controller", false, true},
		{"controller.discoverd.", "controller", false, true},
		{"leader.postgres.discoverd", "postgres", true, true},
		{"leader.discoverd", "leader", false, true},
		{"discoverd", "", false, false},
		{".discoverd", "", false, false},
		{"example.com", "", false, false},
		{"127.0.0.1", "", false, false},
	}
	for _, tt := range tests {
		service, leader, ok := client.ServiceOf(tt.host)
		if service != tt.service || leader != tt.leader || ok != tt.ok {
			t.Errorf("ServiceOf(%q) = %q, %v, %v; want %q, %v, %v", tt.host, service, leader, ok, tt.service, tt.leader, tt.ok)
		}
	}
}

// The HTTP client reaches a service by name at whichever instance answers,
// and the leader by its name; a service with no live instance is a clear
// error.
func TestDialByServiceName(t *testing.T) {
	srv := discoverdtest.New(t, discoverdtest.Options{})
	c := srv.Client()
	ctx := t.Context()
	app := func(name string) *httptest.Server {
		s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, name) }))
		t.Cleanup(s.Close)
		return s
	}
	live := app("live")
	dead, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadAddr := dead.Addr().String()
	dead.Close() // nothing answers there: the dialer must try the other
	for _, addr := range []string{deadAddr, live.Listener.Addr().String()} {
		if _, err := c.Register(ctx, "web", &discoverd.Instance{Addr: addr, Proto: "http"}); err != nil {
			t.Fatal(err)
		}
	}
	hc := client.HTTPClient(c)
	defer hc.CloseIdleConnections()
	for range 5 {
		resp, err := hc.Get("http://web.discoverd/")
		if err != nil {
			t.Fatalf("GET web.discoverd: %v", err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(body) != "live" {
			t.Fatalf("web.discoverd answered %q", body)
		}
		hc.CloseIdleConnections() // dial again: the order is random
	}

	leader := app("leader")
	if _, err := c.Register(ctx, "db", &discoverd.Instance{Addr: leader.Listener.Addr().String(), Proto: "tcp"}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Register(ctx, "db", &discoverd.Instance{Addr: app("follower").Listener.Addr().String(), Proto: "tcp"}); err != nil {
		t.Fatal(err)
	}
	resp, err := hc.Get("http://leader.db.discoverd/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "leader" {
		t.Fatalf("leader.db.discoverd answered %q, want the oldest instance", body)
	}

	if _, err := hc.Get("http://nothing.discoverd/"); err == nil {
		t.Fatal("a service with no instance answered")
	}
	// A service that has no leader fails the dial with discoverd's reason,
	// but not as an API error of the caller's own (a server would pass a
	// not_found on to its client).
	_, err = (&client.Dialer{Client: c}).DialContext(ctx, "tcp", "leader.nothing.discoverd:5432")
	if err == nil || !strings.Contains(err.Error(), "nothing") {
		t.Fatalf("dial leader.nothing.discoverd: %v, want an error naming the service", err)
	}
	if he := (*httpjson.Error)(nil); errors.As(err, &he) {
		t.Errorf("dial leader.nothing.discoverd: %v wraps API error %s", err, he.Code)
	}
}

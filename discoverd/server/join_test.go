package server

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/openflynn/flynn/discoverd/client"
	"github.com/openflynn/flynn/pkg/httpjson"
)

func TestJoinTargets(t *testing.T) {
	tests := []struct {
		name    string
		targets []string
		self    string
		want    []string
	}{
		{"urls", []string{"http://10.0.0.1:1111", "http://10.0.0.2:1111"}, "10.0.0.3:1111", []string{"http://10.0.0.1:1111", "http://10.0.0.2:1111"}},
		{"host and port, or host alone", []string{"10.0.0.1:2000", "10.0.0.2"}, "10.0.0.3:1111", []string{"http://10.0.0.1:2000", "http://10.0.0.2:1111"}},
		{"self left out", []string{"http://10.0.0.1:1111", "10.0.0.3"}, "10.0.0.3:1111", []string{"http://10.0.0.1:1111"}},
		{"duplicates once", []string{"10.0.0.1", "http://10.0.0.1:1111/"}, "10.0.0.3:1111", []string{"http://10.0.0.1:1111"}},
		{"none", nil, ":1111", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			j, err := newJoiner(tt.targets, tt.self, "", time.Second, slog.New(slog.DiscardHandler))
			if err != nil {
				t.Fatal(err)
			}
			if got := j.targetHosts(); !slices.Equal(got, tt.want) {
				t.Errorf("targets = %v, want %v", got, tt.want)
			}
		})
	}
	if _, err := newJoiner([]string{"http://"}, ":1111", "", time.Second, nil); err == nil {
		t.Error("a join target without a host was accepted")
	}
}

// Of discoverds that start together and find no cluster, the one whose
// address sorts first founds it.
func TestJoinFounder(t *testing.T) {
	tests := []struct {
		name    string
		self    string
		targets []string
		want    bool
	}{
		{"lowest address", "127.0.0.1:1111", []string{"127.0.0.2", "127.0.0.3"}, true},
		{"not the lowest", "127.0.0.2:1111", []string{"127.0.0.1", "127.0.0.3"}, false},
		{"numeric, not textual, order", "10.0.0.9:1111", []string{"10.0.0.10"}, true},
		{"same address, lower port", "127.0.0.1:1111", []string{"127.0.0.1:2222"}, true},
		{"names compare as text", "a.example:1111", []string{"b.example"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			j, err := newJoiner(tt.targets, tt.self, "", time.Second, slog.New(slog.DiscardHandler))
			if err != nil {
				t.Fatal(err)
			}
			if got := j.first(); got != tt.want {
				t.Errorf("first() = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestNodeState(t *testing.T) {
	dir := t.TempDir()
	st, err := readNodeState(dir)
	if err != nil || st.Role != "" || st.MemberID != "" || st.Endpoints != nil {
		t.Fatalf("no record: %+v, %v; want the zero state", st, err)
	}
	want := &nodeState{Role: roleClient, ClusterID: "c1", Endpoints: []string{"https://10.0.0.1:1121"}}
	if err := writeNodeState(dir, want); err != nil {
		t.Fatal(err)
	}
	got, err := readNodeState(dir)
	if err != nil || got.Role != want.Role || got.ClusterID != want.ClusterID || !slices.Equal(got.Endpoints, want.Endpoints) {
		t.Errorf("read back %+v, %v; want %+v", got, err, want)
	}
}

// closedAddr returns a loopback address nothing listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// Only a target that cannot be dialled is not there: one that takes the
// request and answers nothing in time (its etcd lost its quorum) is.
func TestReached(t *testing.T) {
	hung := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() }))
	defer hung.Close()
	busy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		httpjson.WriteError(w, &httpjson.Error{Code: httpjson.CodeServiceUnavailable, Message: "etcd did not answer in time"})
	}))
	defer busy.Close()
	tests := []struct {
		name string
		url  string
		want bool
	}{
		{"nothing listens", "http://" + closedAddr(t), false},
		{"no answer in time", hung.URL, true},
		{"an error answered", busy.URL, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
			defer cancel()
			_, err := client.New(tt.url, "").EtcdMembers(ctx)
			if err == nil {
				t.Fatal("no error")
			}
			if got := reached(err); got != tt.want {
				t.Errorf("reached(%v) = %v, want %v", err, got, tt.want)
			}
		})
	}
}

// A discoverd founds a cluster when no target is there, not when one is
// there without an answer.
func TestFindFounds(t *testing.T) {
	busy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		httpjson.WriteError(w, &httpjson.Error{Code: httpjson.CodeServiceUnavailable, Message: "etcd did not answer in time"})
	}))
	defer busy.Close()
	tests := []struct {
		name    string
		targets []string
		want    error
	}{
		{"no target", nil, errNoCluster},
		{"no target there", []string{closedAddr(t)}, errNoCluster},
		{"a target there without members", []string{closedAddr(t), busy.URL}, context.DeadlineExceeded},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Port 1 sorts before any target's: this one would found.
			j, err := newJoiner(tt.targets, "127.0.0.1:1", "", 0, slog.New(slog.DiscardHandler))
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
			defer cancel()
			if _, _, err := j.find(ctx); !errors.Is(err, tt.want) {
				t.Errorf("find: err = %v, want %v", err, tt.want)
			}
		})
	}
}

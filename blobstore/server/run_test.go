package server

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/openflynn/flynn/blobstore"
	"github.com/openflynn/flynn/blobstore/client"
	"github.com/openflynn/flynn/discoverd"
	"github.com/openflynn/flynn/discoverd/discoverdtest"
)

// fakeRegistrar records the registration and its withdrawal.
type fakeRegistrar struct {
	mu           sync.Mutex
	registered   *discoverd.Instance
	deregistered bool
}

func (f *fakeRegistrar) Register(_ context.Context, inst *discoverd.Instance) (Deregisterer, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.registered = inst
	return f, nil
}

func (f *fakeRegistrar) Deregister(context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.deregistered = true
	return nil
}

// startRun runs Run in the background and returns its address, a stop
// function that returns Run's error, and fails t if it does not come up.
func startRun(t *testing.T, cfg Config) (addr string, stop func() error) {
	t.Helper()
	ready := make(chan string, 1)
	cfg.Ready = func(a string) { ready <- a }
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Run(ctx, cfg, slog.New(slog.DiscardHandler)) }()
	stop = sync.OnceValue(func() error {
		cancel()
		return <-done
	})
	select {
	case addr = <-ready:
	case err := <-done:
		cancel()
		t.Fatalf("Run returned before it was ready: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("Run not ready after 30s")
	}
	t.Cleanup(func() { _ = stop() })
	return addr, stop
}

func TestRunServesRegistersAndStops(t *testing.T) {
	reg := &fakeRegistrar{}
	addr, stop := startRun(t, Config{
		HTTPAddr:  "127.0.0.1:0",
		Dir:       filepath.Join(t.TempDir(), "blobs"),
		AuthKey:   "k",
		Registrar: reg,
	})
	reg.mu.Lock()
	inst := reg.registered
	reg.mu.Unlock()
	if inst == nil || inst.Addr != addr || inst.Proto != "http" {
		t.Fatalf("registered %+v, want http at %s", inst, addr)
	}

	c := client.New("http://"+addr, "k")
	ctx := context.Background()
	if _, err := c.Put(ctx, "apps/a/slug.tgz", strings.NewReader("slug")); err != nil {
		t.Fatal(err)
	}
	st, err := c.Stat(ctx, "apps/a/slug.tgz")
	if err != nil || st.Size != 4 {
		t.Fatalf("stat = %+v, %v; want 4 bytes", st, err)
	}

	if err := stop(); err != nil {
		t.Fatalf("Run returned %v after its context ended, want nil", err)
	}
	reg.mu.Lock()
	defer reg.mu.Unlock()
	if !reg.deregistered {
		t.Fatal("Run did not deregister on shutdown")
	}
	if _, err := c.Stat(ctx, "apps/a/slug.tgz"); err == nil {
		t.Fatal("server still answers after Run returned")
	}
}

func TestRunRefusesBadConfig(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
	}{
		{"unknown backend", Config{Backend: "s3", HTTPAddr: "127.0.0.1:0"}},
		{"postgres without url", Config{Backend: BackendPostgres, HTTPAddr: "127.0.0.1:0"}},
		{"bad listen address", Config{Dir: t.TempDir(), HTTPAddr: "127.0.0.1:99999"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := Run(ctx, tt.cfg, slog.New(slog.DiscardHandler)); err == nil {
				t.Fatal("Run succeeded")
			}
		})
	}
}

func TestAdvertiseAddr(t *testing.T) {
	tests := []struct {
		name, host, listen, want string
	}{
		{"all interfaces", "", "[::]:5001", "127.0.0.1:5001"},
		{"all ipv4 interfaces", "", "0.0.0.0:5001", "127.0.0.1:5001"},
		{"specific listener", "", "127.0.0.7:5001", "127.0.0.7:5001"},
		{"advertised host wins", "10.0.0.2", "0.0.0.0:5001", "10.0.0.2:5001"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr, err := netTCPAddr(tt.listen)
			if err != nil {
				t.Fatal(err)
			}
			if got := advertiseAddr(tt.host, addr); got != tt.want {
				t.Fatalf("advertiseAddr(%q, %s) = %s, want %s", tt.host, tt.listen, got, tt.want)
			}
		})
	}
}

// TestRunRegistersInDiscoverd runs the blobstore against a real discoverd:
// it shows up as the blobstore service while it runs and is gone after.
func TestRunRegistersInDiscoverd(t *testing.T) {
	d := discoverdtest.New(t, discoverdtest.Options{Key: "k"})
	dc := d.Client()
	addr, stop := startRun(t, Config{
		HTTPAddr:  "127.0.0.1:0",
		Dir:       t.TempDir(),
		AuthKey:   "k",
		Registrar: DiscoverdRegistrar{Client: dc},
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	insts, err := dc.Instances(ctx, ServiceName)
	if err != nil {
		t.Fatal(err)
	}
	if len(insts) != 1 || insts[0].Addr != addr {
		t.Fatalf("blobstore instances = %v, want one at %s", insts, addr)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	insts, err = dc.Instances(ctx, ServiceName)
	if err != nil && !errors.Is(err, blobstore.ErrNotFound) {
		t.Fatal(err)
	}
	if len(insts) != 0 {
		t.Fatalf("instances after shutdown = %v, want none", insts)
	}
}

func netTCPAddr(s string) (*net.TCPAddr, error) { return net.ResolveTCPAddr("tcp", s) }

// TestRunWaitsForTheDatabase: with the postgres backend, a blobstore that
// starts while Postgres cannot be reached keeps trying and serves once it
// can, rather than exiting (in bootstrap nothing would start it again).
func TestRunWaitsForTheDatabase(t *testing.T) {
	var dials atomic.Int32
	var d net.Dialer
	addr, _ := startRun(t, Config{
		HTTPAddr:    "127.0.0.1:0",
		Backend:     BackendPostgres,
		DatabaseURL: postgres.Server(t).NewDatabase(t),
		AuthKey:     "k",
		DialDatabase: func(ctx context.Context, network, address string) (net.Conn, error) {
			if dials.Add(1) <= 3 {
				return nil, errors.New("service postgres has no instances, so no leader")
			}
			return d.DialContext(ctx, network, address)
		},
	})
	if n := dials.Load(); n < 4 {
		t.Errorf("%d dials, want the refused three and more", n)
	}
	c := client.New("http://"+addr, "k")
	if _, err := c.Put(context.Background(), "apps/a/slug.tgz", strings.NewReader("slug")); err != nil {
		t.Fatal(err)
	}
}

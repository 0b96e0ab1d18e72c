package patroni

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/openflynn/flynn/appliance/postgres"
	"github.com/openflynn/flynn/discoverd"
)

// fakeRegistry is discoverd in memory.
type fakeRegistry struct {
	mu       sync.Mutex
	services map[string]map[string]*discoverd.Instance // service → id → instance
	fail     bool
}

func newFakeRegistry() *fakeRegistry {
	return &fakeRegistry{services: map[string]map[string]*discoverd.Instance{}}
}

func (r *fakeRegistry) Register(_ context.Context, service string, inst *discoverd.Instance) (registration, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fail {
		return nil, errors.New("discoverd is down")
	}
	stored := *inst
	stored.ID = discoverd.InstanceID(inst.Proto, inst.Addr)
	r.add(service, &stored)
	return &fakeRegistration{r: r, service: service, id: stored.ID}, nil
}

func (r *fakeRegistry) add(service string, inst *discoverd.Instance) {
	if r.services[service] == nil {
		r.services[service] = map[string]*discoverd.Instance{}
	}
	r.services[service][inst.ID] = inst
}

func (r *fakeRegistry) Instances(_ context.Context, service string) ([]*discoverd.Instance, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []*discoverd.Instance
	for _, inst := range r.services[service] {
		out = append(out, inst)
	}
	return out, nil
}

func (r *fakeRegistry) Deregister(_ context.Context, service, id string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.services[service], id)
	return nil
}

// addrs returns the addresses in service, sorted.
func (r *fakeRegistry) addrs(service string) []string {
	insts, _ := r.Instances(context.Background(), service)
	var out []string
	for _, inst := range insts {
		out = append(out, inst.Addr)
	}
	slices.Sort(out)
	return out
}

type fakeRegistration struct {
	r           *fakeRegistry
	service, id string
}

func (g *fakeRegistration) Deregister(ctx context.Context) error {
	return g.r.Deregister(ctx, g.service, g.id)
}

// fakePatroni answers GET /primary as Patroni's REST API would.
type fakePatroni struct {
	mu     sync.Mutex
	code   int    // 0: the connection is dropped, as by a dead API
	body   string // status JSON
	server *httptest.Server
}

func newFakePatroni(t *testing.T) *fakePatroni {
	p := &fakePatroni{}
	p.server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.mu.Lock()
		code, body := p.code, p.body
		p.mu.Unlock()
		if r.URL.Path != "/primary" {
			http.NotFound(w, r)
			return
		}
		if code == 0 {
			panic(http.ErrAbortHandler)
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		_, _ = w.Write([]byte(body))
	}))
	t.Cleanup(p.server.Close)
	return p
}

func (p *fakePatroni) set(code int, body string) {
	p.mu.Lock()
	p.code, p.body = code, body
	p.mu.Unlock()
}

// Patroni's answers in each state.
const (
	primaryAlone    = `{"state":"running","role":"master"}`
	primaryWithSync = `{"state":"running","role":"master","replication":[{"application_name":"host2","state":"streaming","sync_state":"sync"}]}`
	replicaRunning  = `{"state":"running","role":"replica"}`
	starting        = `{"state":"starting","role":"replica"}`
	demoting        = `{"state":"running","role":"master"}`
)

func TestFollowerRegistersThePrimaryAlone(t *testing.T) {
	const self = "10.0.0.1:5432"
	type answer struct {
		code int
		body string
	}
	tests := []struct {
		name string
		// stale is registered in "postgres" beforehand: a lost primary.
		stale string
		steps []answer
		// wantPrimary and wantReplicas are the services' addresses after
		// the last step.
		wantPrimary, wantReplicas []string
		wantProvisions            int
		wantLog                   string
	}{
		{
			name:           "primary",
			steps:          []answer{{503, starting}, {200, primaryAlone}},
			wantPrimary:    []string{self},
			wantProvisions: 1,
			wantLog:        "running alone without a replica",
		},
		{
			name:           "primary with a synchronous standby",
			steps:          []answer{{200, primaryWithSync}, {200, primaryWithSync}},
			wantPrimary:    []string{self},
			wantProvisions: 1,
			wantLog:        "host2 (streaming, sync)",
		},
		{
			name:         "replica",
			steps:        []answer{{503, replicaRunning}},
			wantReplicas: []string{self},
		},
		{
			name:           "a primary no more",
			steps:          []answer{{200, primaryAlone}, {503, demoting}},
			wantProvisions: 1,
		},
		{
			name:           "promoted replica",
			steps:          []answer{{503, replicaRunning}, {200, primaryWithSync}},
			wantPrimary:    []string{self},
			wantProvisions: 1,
		},
		{
			name:           "a lost primary's registration goes",
			stale:          "10.0.0.9:5432",
			steps:          []answer{{200, primaryAlone}},
			wantPrimary:    []string{self},
			wantProvisions: 1,
		},
		{
			name:           "one unanswered check keeps the primary",
			steps:          []answer{{200, primaryAlone}, {0, ""}},
			wantPrimary:    []string{self},
			wantProvisions: 1,
		},
		{
			name:           "a silent Patroni is no primary",
			steps:          []answer{{200, primaryAlone}, {0, ""}, {0, ""}, {0, ""}},
			wantProvisions: 1,
			wantLog:        "patroni does not answer",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			api := newFakePatroni(t)
			reg := newFakeRegistry()
			if tt.stale != "" {
				reg.add(postgres.Service, &discoverd.Instance{ID: "stale", Addr: tt.stale, Proto: "tcp"})
			}
			var log strings.Builder
			provisions := 0
			f := &follower{
				probe:     &prober{url: api.server.URL, http: api.server.Client()},
				registry:  reg,
				instance:  discoverd.Instance{Addr: self, Proto: "tcp", Meta: map[string]string{postgres.MetaHostID: "host1"}},
				provision: func(context.Context) error { provisions++; return nil },
				interval:  time.Second,
				logger:    slog.New(slog.NewTextHandler(&log, nil)),
			}
			for _, s := range tt.steps {
				api.set(s.code, s.body)
				f.step(context.Background())
			}
			if got := reg.addrs(postgres.Service); !slices.Equal(got, tt.wantPrimary) {
				t.Errorf("%q = %v, want %v", postgres.Service, got, tt.wantPrimary)
			}
			if got := reg.addrs(postgres.ReplicaService); !slices.Equal(got, tt.wantReplicas) {
				t.Errorf("%q = %v, want %v", postgres.ReplicaService, got, tt.wantReplicas)
			}
			if provisions != tt.wantProvisions {
				t.Errorf("provisioned %d times, want %d", provisions, tt.wantProvisions)
			}
			if !strings.Contains(log.String(), tt.wantLog) {
				t.Errorf("log lacks %q:\n%s", tt.wantLog, log.String())
			}
			for _, inst := range reg.services[postgres.Service] {
				if inst.Meta[postgres.MetaRole] != postgres.RolePrimary || inst.Meta[postgres.MetaHostID] != "host1" {
					t.Errorf("primary's meta = %v", inst.Meta)
				}
			}
			f.deregisterAll()
			if got := append(reg.addrs(postgres.Service), reg.addrs(postgres.ReplicaService)...); len(got) != 0 && tt.stale == "" {
				t.Errorf("after deregisterAll: %v", got)
			}
		})
	}
}

// A primary whose provisioning fails registers all the same (clients
// reach it; the databases come when provisioning works), and tries again.
func TestFollowerRegistersWhenProvisioningFails(t *testing.T) {
	api := newFakePatroni(t)
	api.set(200, primaryAlone)
	reg := newFakeRegistry()
	var log strings.Builder
	f := &follower{
		probe:     &prober{url: api.server.URL, http: api.server.Client()},
		registry:  reg,
		instance:  discoverd.Instance{Addr: "10.0.0.1:5432", Proto: "tcp"},
		provision: func(context.Context) error { return errors.New("database is read-only") },
		interval:  time.Second,
		logger:    slog.New(slog.NewTextHandler(&log, nil)),
	}
	f.step(context.Background())
	if got := reg.addrs(postgres.Service); len(got) != 1 {
		t.Errorf("primary not registered: %v", got)
	}
	if f.provisioned || !strings.Contains(log.String(), "database is read-only") {
		t.Errorf("provisioned %v; log:\n%s", f.provisioned, log.String())
	}
}

// A discoverd that refuses the registration is tried again at the next
// check.
func TestFollowerRetriesRegistration(t *testing.T) {
	api := newFakePatroni(t)
	api.set(200, primaryAlone)
	reg := newFakeRegistry()
	reg.fail = true
	f := &follower{
		probe:    &prober{url: api.server.URL, http: api.server.Client()},
		registry: reg,
		instance: discoverd.Instance{Addr: "10.0.0.1:5432", Proto: "tcp"},
		interval: time.Second,
		logger:   slog.New(slog.DiscardHandler),
	}
	f.step(context.Background())
	reg.mu.Lock()
	reg.fail = false
	reg.mu.Unlock()
	f.step(context.Background())
	if got := reg.addrs(postgres.Service); len(got) != 1 {
		t.Errorf("primary not registered after discoverd came back: %v", got)
	}
}

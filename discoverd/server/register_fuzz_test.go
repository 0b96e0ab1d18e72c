package server

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/openflynn/flynn/discoverd"
	"github.com/openflynn/flynn/discoverd/store"
	"github.com/openflynn/flynn/pkg/httpjson"
	"github.com/openflynn/flynn/pkg/sse"
)

// FuzzRegister sends arbitrary registrations (PUT
// /services/web/instances/:id) through the API handler to a store that
// keeps them. A refusal is a 4xx JSON error and reaches no store; what is
// stored is the instance the client sent under the id in the URL, valid,
// and equal to the one answered; and it can be served: it encodes to the
// same instance, a watch stream carries it, and DNS answers for it (A or
// AAAA of the service, SRV whose target resolves back to it).
func FuzzRegister(f *testing.F) {
	for _, s := range []struct{ id, ttl, body string }{
		{"a", "", `{"addr":"127.0.0.1:1"}`},
		{"5f1c0e6d3a2b4c5d6e7f8091a2b3c4d5", "30", `{"id":"5f1c0e6d3a2b4c5d6e7f8091a2b3c4d5","addr":"10.0.0.2:55000","proto":"http","meta":{"job_id":"h1-x","host_id":"h1"},"index":7}`},
		{"v6", "", `{"addr":"[fd00::1]:80","proto":"tcp"}`},
		{"named", "", `{"addr":"node1.example.com:80"}`},
		{"a", "", `{"addr":"nowhere"}`},
		{"a", "", `{"addr":":80"}`},
		{"a", "", `{"addr":"127.0.0.1:99999"}`},
		{"a", "forever", `{"addr":"127.0.0.1:1"}`},
		{"a", "", `{"id":"b","addr":"127.0.0.1:1"}`},
		{"a", "", `{"addr":"127.0.0.1:1","colour":"red"}`},
		{"a.b", "", `{"addr":"127.0.0.1:1"}`},
		{strings.Repeat("a", 100), "", `{"addr":"127.0.0.1:1"}`},
		{"scheduler-0123456789ab", "", `{"addr":"127.0.0.1:1"}`},
		{"a_b", "", `{"addr":"127.0.0.1:1"}`},
		{"a", "", `{"addr":"a b:1"}`},
		{"a", "", `{"addr":"127.0.0.1:+1"}`},
		{"a", "", `{"addr":"127.0.0.1:1","proto":"HTTP"}`},
		{"a", "", `{"addr":"127.0.0.1:1"} {}`},
	} {
		f.Add(s.id, s.ttl, []byte(s.body))
	}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	f.Fuzz(func(t *testing.T, id, ttl string, body []byte) {
		if id == "" || id == "." || id == ".." || strings.Contains(id, "/") {
			return // not one path segment: the router redirects or finds no route
		}
		st := &keepingStore{}
		api := NewAPI(st, nil, "", nil, logger)
		target := "/services/web/instances/" + url.PathEscape(id)
		if ttl != "" {
			target += "?ttl=" + url.QueryEscape(ttl)
		}
		if _, err := url.ParseRequestURI(target); err != nil {
			return // not a request a client can send
		}
		req := httptest.NewRequest(http.MethodPut, target, bytes.NewReader(body))
		rec := httptest.NewRecorder()
		api.ServeHTTP(rec, req)

		if rec.Code != http.StatusOK {
			var e httpjson.Error
			if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || rec.Code < 400 || rec.Code > 499 || e.Code.Status() != rec.Code {
				t.Fatalf("PUT %s %q: %d %s; want 200 or a 4xx JSON error", target, body, rec.Code, rec.Body)
			}
			if len(st.registered) != 0 {
				t.Fatalf("PUT %s %q refused (%d), yet the store got %+v", target, body, rec.Code, st.registered)
			}
			return
		}
		if len(st.registered) != 1 {
			t.Fatalf("PUT %s %q: 200, but the store got %d registrations", target, body, len(st.registered))
		}
		inst := st.registered[0]
		if inst.ID != id {
			t.Fatalf("PUT %s %q: stored under id %q", target, body, inst.ID)
		}
		if field, err := inst.Validate(); err != nil {
			t.Fatalf("PUT %s %q: stored an invalid instance (%s: %v)", target, body, field, err)
		}
		var answered discoverd.Instance
		if err := json.Unmarshal(rec.Body.Bytes(), &answered); err != nil || !answered.Equal(inst) {
			t.Fatalf("PUT %s %q: answered %s, stored %+v", target, body, rec.Body, inst)
		}
		checkServable(t, inst)
	})
}

// checkServable fails t unless inst, registered in service web, can be
// given to clients in every way discoverd gives instances.
func checkServable(t *testing.T, inst *discoverd.Instance) {
	t.Helper()
	enc, err := json.Marshal(inst)
	if err != nil {
		t.Fatal(err)
	}
	var back discoverd.Instance
	if err := json.Unmarshal(enc, &back); err != nil || !back.Equal(inst) || back.Index != inst.Index {
		t.Fatalf("instance %+v encodes as %s, which decodes to %+v, %v", inst, enc, back, err)
	}
	ev, _ := json.Marshal(&discoverd.Event{Service: "web", Kind: discoverd.EventUp, Instance: inst})
	w, err := sse.NewWriter(httptest.NewRecorder())
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Send(sse.Event{Name: string(discoverd.EventUp), Data: ev}); err != nil {
		t.Fatalf("instance %+v: a watch stream cannot carry it: %v", inst, err)
	}
	// Routers and clients dial the address.
	host, port, err := net.SplitHostPort(inst.Addr)
	if err != nil || host == "" || inst.Port() < 1 || inst.Port() > 65535 || inst.Host() != host || port == "" {
		t.Fatalf("instance %+v: address does not split into host and port", inst)
	}

	d := &DNS{Store: &keepingStore{registered: []*discoverd.Instance{inst}}, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	ask := func(name string, qtype uint16) *dns.Msg {
		req := new(dns.Msg)
		req.SetQuestion(name, qtype)
		resp := d.answer(req, &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 53})
		if _, err := resp.Pack(); err != nil {
			t.Fatalf("instance %+v: the DNS answer to %s %s cannot be sent: %v", inst, name, dns.TypeToString[qtype], err)
		}
		return resp
	}
	ip := net.ParseIP(inst.Host())
	for _, qtype := range []uint16{dns.TypeA, dns.TypeAAAA, dns.TypeANY} {
		resp := ask("web."+DNSZone, qtype)
		if ip != nil && qtype == dns.TypeANY && len(resp.Answer) != 1 {
			t.Fatalf("instance %+v: %d answers to ANY web.%s, want 1", inst, len(resp.Answer), DNSZone)
		}
	}
	resp := ask("web."+DNSZone, dns.TypeSRV)
	if len(resp.Answer) != 1 {
		t.Fatalf("instance %+v: %d SRV answers, want 1", inst, len(resp.Answer))
	}
	srv := resp.Answer[0].(*dns.SRV)
	if int(srv.Port) != inst.Port() {
		t.Fatalf("instance %+v: SRV port %d", inst, srv.Port)
	}
	if ip != nil {
		// The target names this instance: asked for, it gives its address.
		qtype := dns.TypeA
		if ip.To4() == nil {
			qtype = dns.TypeAAAA
		}
		resp := ask(srv.Target, qtype)
		if len(resp.Answer) != 1 {
			t.Fatalf("instance %+v: SRV target %s has %d answers, want its address", inst, srv.Target, len(resp.Answer))
		}
	}
}

// keepingStore is a Store of one service, "web", that keeps registrations.
type keepingStore struct {
	mu         sync.Mutex
	registered []*discoverd.Instance
}

var _ Store = (*keepingStore)(nil)

func (s *keepingStore) AddService(context.Context, string) (bool, error) { return false, nil }
func (s *keepingStore) RemoveService(context.Context, string) error      { return nil }
func (s *keepingStore) Services(context.Context) ([]string, error)       { return []string{"web"}, nil }

func (s *keepingStore) Register(_ context.Context, service string, inst *discoverd.Instance, _ time.Duration) (*discoverd.Instance, error) {
	if service != "web" {
		return nil, store.ErrServiceNotFound
	}
	stored := *inst
	stored.Index = 1
	s.mu.Lock()
	defer s.mu.Unlock()
	s.registered = append(s.registered, &stored)
	return &stored, nil
}

func (s *keepingStore) Deregister(context.Context, string, string) error { return nil }

func (s *keepingStore) Instances(_ context.Context, service string) ([]*discoverd.Instance, int64, error) {
	if service != "web" {
		return nil, 0, store.ErrServiceNotFound
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*discoverd.Instance(nil), s.registered...), 1, nil
}

func (s *keepingStore) Leader(ctx context.Context, service string) (*discoverd.Instance, error) {
	list, _, err := s.Instances(ctx, service)
	if err != nil || len(list) == 0 {
		return nil, err
	}
	return list[0], nil
}

func (s *keepingStore) Watch(context.Context, string, func(*discoverd.Event) error) error {
	return nil
}

func (s *keepingStore) Meta(context.Context, string) (*discoverd.ServiceMeta, error) {
	return nil, store.ErrMetaNotFound
}

func (s *keepingStore) SetMeta(context.Context, string, *discoverd.ServiceMeta) (uint64, error) {
	return 0, nil
}

// Package server serves discoverd's HTTP API (see package discoverd for the
// routes) and its DNS interface over a Store.
package server

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/julienschmidt/httprouter"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/openflynn/flynn/discoverd"
	"github.com/openflynn/flynn/discoverd/store"
	"github.com/openflynn/flynn/pkg/authkey"
	"github.com/openflynn/flynn/pkg/httpjson"
	"github.com/openflynn/flynn/pkg/metrics"
	"github.com/openflynn/flynn/pkg/sse"
)

// Store is the state the API reads and writes; *store.Store implements it.
type Store interface {
	AddService(ctx context.Context, service string) (bool, error)
	RemoveService(ctx context.Context, service string) error
	Services(ctx context.Context) ([]string, error)
	Register(ctx context.Context, service string, inst *discoverd.Instance, ttl time.Duration) (*discoverd.Instance, error)
	Deregister(ctx context.Context, service, id string) error
	Instances(ctx context.Context, service string) ([]*discoverd.Instance, int64, error)
	Leader(ctx context.Context, service string) (*discoverd.Instance, error)
	Watch(ctx context.Context, service string, send func(*discoverd.Event) error) error
	Meta(ctx context.Context, service string) (*discoverd.ServiceMeta, error)
	SetMeta(ctx context.Context, service string, meta *discoverd.ServiceMeta) (uint64, error)
}

var _ Store = (*store.Store)(nil)

// Cluster is the etcd membership the /etcd routes show and grow;
// *store.Cluster implements it.
type Cluster interface {
	Members(ctx context.Context) (*discoverd.EtcdMembers, error)
	AddMember(ctx context.Context, name, peerURL string) (*discoverd.EtcdJoin, error)
}

var _ Cluster = (*store.Cluster)(nil)

// KeepaliveInterval is how often an idle watch stream carries a comment, so
// proxies keep it open and gone clients are noticed.
const KeepaliveInterval = 15 * time.Second

// maxInstanceBody bounds a registration body.
const maxInstanceBody = 64 << 10

// API is discoverd's HTTP handler.
type API struct {
	store    Store
	cluster  Cluster
	key      string
	logger   *slog.Logger
	watchers prometheus.Gauge
	handler  http.Handler
}

// NewAPI returns the HTTP API over st and the etcd membership cluster (nil
// when discoverd uses an etcd it does not manage). Writes, the /etcd
// routes and /metrics need key when it is not empty. The API's metrics
// (flynn_discoverd_http_*, flynn_discoverd_watchers) are registered in
// reg, which /metrics serves; nil: a registry of the API's own.
func NewAPI(st Store, cluster Cluster, key string, reg *prometheus.Registry, logger *slog.Logger) *API {
	if reg == nil {
		reg = metrics.NewRegistry()
	}
	a := &API{store: st, cluster: cluster, key: key, logger: logger, watchers: newWatchers(reg)}
	m := metrics.NewHTTP(reg, namespace)
	r := m.Router()
	r.GET("/ping", a.ping)
	r.GET("/services", a.listServices)
	r.PUT("/services/:service", a.keyed(a.addService))
	r.DELETE("/services/:service", a.keyed(a.removeService))
	r.PUT("/services/:service/instances/:id", a.keyed(a.register))
	r.DELETE("/services/:service/instances/:id", a.keyed(a.deregister))
	r.GET("/services/:service/instances", a.instances)
	r.GET("/services/:service/leader", a.leader)
	r.GET("/services/:service/meta", a.getMeta)
	r.PUT("/services/:service/meta", a.keyed(a.setMeta))
	r.GET("/etcd/members", a.keyed(a.etcdMembers))
	r.POST("/etcd/members", a.keyed(a.addEtcdMember))
	r.Handler(http.MethodGet, metrics.Path, metrics.Handler(reg, key))
	r.NotFound = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		httpjson.WriteError(w, httpjson.NotFound("no such endpoint: %s %s", r.Method, r.URL.Path))
	})
	r.MethodNotAllowed = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		httpjson.WriteError(w, httpjson.Errorf(httpjson.CodeMethodNotAllowed, "%s is not allowed on %s", r.Method, r.URL.Path))
	})
	r.PanicHandler = func(w http.ResponseWriter, r *http.Request, v any) {
		a.logger.Error("panic in handler", "method", r.Method, "path", r.URL.Path, "panic", v)
		httpjson.WriteError(w, errors.New("panic"))
	}
	a.handler = m.Wrap(r)
	return a
}

// ServeHTTP serves the API.
func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) { a.handler.ServeHTTP(w, r) }

// keyed admits requests that carry the cluster key.
func (a *API) keyed(h httprouter.Handle) httprouter.Handle {
	return func(w http.ResponseWriter, r *http.Request, ps httprouter.Params) {
		if !authkey.Valid(r, a.key) {
			w.Header().Set("WWW-Authenticate", `Basic realm="discoverd"`)
			httpjson.WriteError(w, httpjson.Errorf(httpjson.CodeUnauthorized, "missing or wrong cluster key"))
			return
		}
		h(w, r, ps)
	}
}

// fail writes err as an API error, logging what the client does not see.
func (a *API) fail(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case errors.Is(err, store.ErrServiceNotFound):
		err = httpjson.NotFound("service not found")
	case errors.Is(err, store.ErrInstanceNotFound):
		err = httpjson.NotFound("instance not found")
	case errors.Is(err, store.ErrMetaNotFound):
		err = httpjson.NotFound("service has no meta")
	case errors.Is(err, store.ErrIndexMismatch):
		err = httpjson.Errorf(httpjson.CodePreconditionFailed, "meta index does not match: another write came first; read it again")
	case errors.Is(err, store.ErrClusterFull):
		err = httpjson.Errorf(httpjson.CodeConflict, "the etcd cluster has its %d members: run as a client of them", discoverd.MaxEtcdMembers)
	case errors.Is(err, store.ErrMemberNameTaken):
		err = httpjson.Errorf(httpjson.CodeObjectExists, "%v", err)
	case errors.Is(err, store.ErrJoinBusy):
		err = &httpjson.Error{Code: httpjson.CodeServiceUnavailable, Message: err.Error(), Retry: true}
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		err = &httpjson.Error{Code: httpjson.CodeServiceUnavailable, Message: "etcd did not answer in time", Retry: true}
	}
	var apiErr *httpjson.Error
	if !errors.As(err, &apiErr) {
		a.logger.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	httpjson.WriteError(w, err)
}

// service returns the validated :service parameter.
func service(ps httprouter.Params) (string, error) {
	name := ps.ByName("service")
	if err := discoverd.ValidateServiceName(name); err != nil {
		return "", httpjson.ValidationError("service", "%v", err)
	}
	return name, nil
}

func (a *API) ping(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	w.WriteHeader(http.StatusOK)
}

func (a *API) listServices(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	names, err := a.store.Services(r.Context())
	if err != nil {
		a.fail(w, r, err)
		return
	}
	httpjson.Write(w, http.StatusOK, names)
}

func (a *API) addService(w http.ResponseWriter, r *http.Request, ps httprouter.Params) {
	name, err := service(ps)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	created, err := a.store.AddService(r.Context(), name)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	status := http.StatusOK
	if created {
		status = http.StatusCreated
		a.logger.Info("service created", "service", name)
	}
	httpjson.Write(w, status, map[string]string{"name": name})
}

func (a *API) removeService(w http.ResponseWriter, r *http.Request, ps httprouter.Params) {
	name, err := service(ps)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	if err := a.store.RemoveService(r.Context(), name); err != nil {
		a.fail(w, r, err)
		return
	}
	a.logger.Info("service removed", "service", name)
	w.WriteHeader(http.StatusNoContent)
}

func (a *API) register(w http.ResponseWriter, r *http.Request, ps httprouter.Params) {
	name, err := service(ps)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	var inst discoverd.Instance
	if err := httpjson.Decode(w, r, maxInstanceBody, &inst); err != nil {
		a.fail(w, r, err)
		return
	}
	id := ps.ByName("id")
	if inst.ID == "" {
		inst.ID = id
	} else if inst.ID != id {
		a.fail(w, r, httpjson.ValidationError("id", "instance id %q in the body does not match %q in the path", inst.ID, id))
		return
	}
	if field, err := inst.Validate(); err != nil {
		a.fail(w, r, httpjson.ValidationError(field, "%v", err))
		return
	}
	ttl, err := parseTTL(r.URL.Query().Get("ttl"))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	stored, err := a.store.Register(r.Context(), name, &inst, ttl)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	httpjson.Write(w, http.StatusOK, stored)
}

func parseTTL(s string) (time.Duration, error) {
	if s == "" {
		return discoverd.DefaultTTL, nil
	}
	secs, err := strconv.Atoi(s)
	if err != nil || secs < 1 || time.Duration(secs)*time.Second > discoverd.MaxTTL {
		return 0, httpjson.ValidationError("ttl", "ttl must be whole seconds from 1 to %d, got %q", int(discoverd.MaxTTL/time.Second), s)
	}
	return time.Duration(secs) * time.Second, nil
}

func (a *API) deregister(w http.ResponseWriter, r *http.Request, ps httprouter.Params) {
	name, err := service(ps)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	id := ps.ByName("id")
	if err := discoverd.ValidateInstanceID(id); err != nil {
		a.fail(w, r, httpjson.ValidationError("id", "%v", err))
		return
	}
	if err := a.store.Deregister(r.Context(), name, id); err != nil {
		a.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (a *API) instances(w http.ResponseWriter, r *http.Request, ps httprouter.Params) {
	name, err := service(ps)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	if strings.Contains(r.Header.Get("Accept"), "text/event-stream") {
		a.watch(w, r, name)
		return
	}
	list, _, err := a.store.Instances(r.Context(), name)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	httpjson.Write(w, http.StatusOK, list)
}

// watch streams a service's events as Server-Sent Events, named by kind.
func (a *API) watch(w http.ResponseWriter, r *http.Request, name string) {
	// A failing store answers with a plain error before the stream starts.
	// A service that does not exist yet is no error: it is watched as an
	// empty one (store.Watch).
	if _, _, err := a.store.Instances(r.Context(), name); err != nil && !errors.Is(err, store.ErrServiceNotFound) {
		a.fail(w, r, err)
		return
	}
	stream, err := sse.NewWriter(w)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	a.watchers.Inc()
	defer a.watchers.Dec()
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	events := make(chan *discoverd.Event, 64)
	watchErr := make(chan error, 1)
	go func() {
		defer close(events)
		watchErr <- a.store.Watch(ctx, name, func(e *discoverd.Event) error {
			select {
			case events <- e:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		})
	}()
	keepalive := time.NewTicker(KeepaliveInterval)
	defer keepalive.Stop()
	for {
		select {
		case e, ok := <-events:
			if !ok {
				if err := <-watchErr; err != nil && ctx.Err() == nil {
					a.logger.Warn("watch ended", "service", name, "err", err)
				}
				return
			}
			data, _ := json.Marshal(e)
			if err := stream.Send(sse.Event{Name: string(e.Kind), Data: data}); err != nil {
				cancel()
				for range events { // let the watcher goroutine finish
				}
				return
			}
		case <-keepalive.C:
			if err := stream.Comment("keepalive"); err != nil {
				cancel()
				for range events {
				}
				return
			}
		}
	}
}

func (a *API) leader(w http.ResponseWriter, r *http.Request, ps httprouter.Params) {
	name, err := service(ps)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	leader, err := a.store.Leader(r.Context(), name)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	if leader == nil {
		a.fail(w, r, httpjson.NotFound("service %s has no instances, so no leader", name))
		return
	}
	httpjson.Write(w, http.StatusOK, leader)
}

func (a *API) getMeta(w http.ResponseWriter, r *http.Request, ps httprouter.Params) {
	name, err := service(ps)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	meta, err := a.store.Meta(r.Context(), name)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	httpjson.Write(w, http.StatusOK, meta)
}

func (a *API) setMeta(w http.ResponseWriter, r *http.Request, ps httprouter.Params) {
	name, err := service(ps)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	var meta discoverd.ServiceMeta
	if err := httpjson.Decode(w, r, maxInstanceBody, &meta); err != nil {
		a.fail(w, r, err)
		return
	}
	if len(meta.Data) == 0 {
		a.fail(w, r, httpjson.ValidationError("data", "data is required"))
		return
	}
	index, err := a.store.SetMeta(r.Context(), name, &meta)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	meta.Index = index
	httpjson.Write(w, http.StatusOK, &meta)
}

// Package server is the controller's HTTP API: handlers over the Postgres
// store (controller/postgres), request bodies checked against the JSON
// Schemas in schema/, errors as httpjson errors (the store's are translated
// in one place, apiError). routes.go lists every endpoint; auth.go tells
// system requests (the controller key) from people's (API keys), and
// system.go keeps people's hands off system apps.
package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/julienschmidt/httprouter"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/openflynn/flynn/controller/postgres"
	"github.com/openflynn/flynn/pkg/httpjson"
	"github.com/openflynn/flynn/pkg/metrics"
	"github.com/openflynn/flynn/pkg/retry"
	"github.com/openflynn/flynn/schema"
)

// Config configures Run.
type Config struct {
	// Addr is the listen address; default ":8081".
	Addr string
	// DatabaseURL is the Postgres connection string (required).
	DatabaseURL string
	// DialDatabase, when set, opens every database connection, given the
	// URL's host unresolved, so that the URL may name a discoverd service
	// ("leader.postgres.discoverd"; see postgres.Options.DialFunc). Nil
	// connects to the URL's host as it is.
	DialDatabase func(ctx context.Context, network, addr string) (net.Conn, error)
	// AuthKey is the cluster's controller key: the basic-auth password of
	// system requests (the platform's components, `flynn --system`).
	// People use API keys (POST /api-keys) instead. Empty admits everyone
	// without an API key as the system (development only).
	AuthKey string
	// Runner places one-off jobs on hosts; nil answers those requests with
	// service_unavailable.
	Runner JobRunner
	// Logs reads apps' lines from the log aggregator (GET /apps/:id/log);
	// nil answers those requests with service_unavailable.
	Logs AppLogReader
	// RouterMetrics reads the routers' counts of apps' requests (GET
	// /apps/:id/metrics); nil answers those requests with
	// service_unavailable.
	RouterMetrics RouterMetrics
	// ProviderClient calls resource providers: see Options.HTTPClient.
	ProviderClient *http.Client
	// DrainTimeout is how long a stopping controller goes on answering,
	// telling each client to close its connection, before it shuts down
	// (see drainer); default DefaultDrainTimeout.
	DrainTimeout time.Duration
	// EventRetention: see Options.EventRetention. The flynn-controller
	// command's default is DefaultEventRetention.
	EventRetention time.Duration
	// BlobstoreKey: see Options.BlobstoreKey.
	BlobstoreKey string
	// Images and MaxImageSize: see Options.
	Images       ImageStore
	MaxImageSize int64
	// Builder: see Options.Builder.
	Builder ImageBuilder
	// DefaultRouteDomain: see Options.DefaultRouteDomain.
	DefaultRouteDomain string
}

// Run connects to Postgres, applies the migrations and serves the API until
// ctx ends, then drains and shuts down gracefully: requests in flight, and
// those clients send on their open connections during the drain, are
// answered in full; event streams end when the drain does.
func Run(ctx context.Context, cfg Config, logger *slog.Logger) error {
	if cfg.DatabaseURL == "" {
		return errors.New("controller: a database URL is required")
	}
	if cfg.Addr == "" {
		cfg.Addr = ":8081"
	}
	store, err := openStore(ctx, cfg, logger)
	if err != nil {
		return fmt.Errorf("controller: %w", err)
	}
	defer store.Close()
	srv, err := New(store, Options{AuthKey: cfg.AuthKey, Logger: logger, Runner: cfg.Runner, Logs: cfg.Logs, RouterMetrics: cfg.RouterMetrics, HTTPClient: cfg.ProviderClient, EventRetention: cfg.EventRetention, BlobstoreKey: cfg.BlobstoreKey,
		DefaultRouteDomain: cfg.DefaultRouteDomain, Images: cfg.Images, MaxImageSize: cfg.MaxImageSize, Builder: cfg.Builder})
	if err != nil {
		return err
	}
	defer srv.Close()

	l, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("controller: listen: %w", err)
	}
	if cfg.DrainTimeout <= 0 {
		cfg.DrainTimeout = DefaultDrainTimeout
	}
	// Requests' contexts end with the drain, not with ctx, so that what
	// is in flight when ctx ends is answered rather than cut.
	base, endRequests := context.WithCancel(context.WithoutCancel(ctx))
	defer endRequests()
	d := newDrainer(srv)
	hs := &http.Server{
		Handler:           d,
		ReadHeaderTimeout: 10 * time.Second,
		BaseContext:       func(net.Listener) context.Context { return base },
		ConnState:         d.connState,
	}
	logger.Info("controller listening", "addr", l.Addr().String())
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(l) }()
	select {
	case err := <-errc:
		return fmt.Errorf("controller: serve: %w", err)
	case <-ctx.Done():
	}
	drainCtx, cancelDrain := context.WithTimeout(context.Background(), cfg.DrainTimeout)
	d.drain(drainCtx)
	cancelDrain()
	logger.Info("controller drained; shutting down", "connections_left", d.open())
	// Event streams end with the requests' base context, so Shutdown does
	// not wait for them.
	endRequests()
	// With the default drain, within the 10 s a host gives a job between
	// SIGTERM and SIGKILL.
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 7*time.Second)
	defer cancel()
	if err := hs.Shutdown(shutdownCtx); err != nil {
		hs.Close()
	}
	<-errc
	return nil
}

// openStore opens the database and applies the migrations, trying again
// while that fails (see pkg/retry): Postgres may be starting, failing
// over, or not yet registered in discoverd when the controller starts.
// The controller listens, and so is registered, only once it has its
// database. A malformed URL fails at once.
func openStore(ctx context.Context, cfg Config, logger *slog.Logger) (*postgres.Store, error) {
	var store *postgres.Store
	err := retry.Until(ctx, logger, "open the database", func(ctx context.Context) error {
		var err error
		store, err = postgres.Open(ctx, cfg.DatabaseURL, postgres.Options{DialFunc: cfg.DialDatabase})
		if errors.Is(err, postgres.ErrDatabaseURL) {
			return retry.Permanent(err)
		}
		return err
	})
	return store, err
}

// Options configures New.
type Options struct {
	// AuthKey: see Config.AuthKey.
	AuthKey string
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// Runner: see Config.Runner.
	Runner JobRunner
	// Logs: see Config.Logs.
	Logs AppLogReader
	// RouterMetrics: see Config.RouterMetrics.
	RouterMetrics RouterMetrics
	// HTTPClient calls resource providers; default a client with a 30 s
	// timeout. In a cluster it must dial discoverd names, since providers'
	// URLs name their services (http://:KEY@postgres-api.discoverd/…).
	HTTPClient *http.Client
	// MaxBodyBytes bounds request bodies; default httpjson.DefaultMaxBody.
	MaxBodyBytes int64
	// KeepAlive is how often an idle event stream gets a comment, which
	// finds gone clients; default 15 s.
	KeepAlive time.Duration
	// EventRetention is how long events are kept: older ones are deleted
	// (see pruneEvents), and a stream resumed from before a deleted event
	// it would have carried is refused. Zero keeps every event.
	EventRetention time.Duration
	// EventPruneInterval is how often old events are deleted when
	// EventRetention is set; default an hour.
	EventPruneInterval time.Duration
	// BlobstoreKey is the key the blobstore checks signed URLs with; a
	// restore signs the imported releases' blob URLs (SLUG_URL) again
	// with it. Default AuthKey, which bootstrap gives the blobstore.
	BlobstoreKey string
	// Images keeps the image archives of POST /apps/:id/images (see
	// images.go), whose artifacts' URLs it signs with BlobstoreKey; nil
	// answers those requests with service_unavailable.
	Images ImageStore
	// MaxImageSize bounds an uploaded image archive, in bytes; default
	// DefaultMaxImageSize (4 GiB).
	MaxImageSize int64
	// Builder builds Dockerfiles on hosts for POST /apps/:id/images/build
	// (imagebuild.go), whose images are kept in Images; nil answers those
	// requests with service_unavailable.
	Builder ImageBuilder
	// DefaultRouteDomain, when set, gives every app that is not a system
	// app an HTTP route as it is created: "<app>.<DefaultRouteDomain>" to
	// the service "<app>-web" (see defaultroute.go). It must be a domain
	// name (New refuses anything else); upper case is lowered. Empty: apps
	// get no route unless someone adds one.
	DefaultRouteDomain string
}

// Server is the controller API as an http.Handler.
type Server struct {
	store    *postgres.Store
	schemas  *schema.Set
	notifier *postgres.Notifier
	opts     Options
	logger   *slog.Logger
	handler  http.Handler
	keys     *keyCache
	// registry holds this server's metrics, served at metrics.Path to
	// the controller key; requests counts the API's requests in it.
	registry *prometheus.Registry
	requests *metrics.HTTP
	// stopWatch ends watchRevocations and pruneEvents; watchDone closes
	// when both have.
	stopWatch context.CancelFunc
	watchDone chan struct{}
}

// New returns the API over store. It starts listening for event
// notifications; Close stops that.
func New(store *postgres.Store, opts Options) (*Server, error) {
	schemas, err := schema.Load()
	if err != nil {
		return nil, fmt.Errorf("controller: load schemas: %w", err)
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.HTTPClient == nil {
		opts.HTTPClient = &http.Client{Timeout: 30 * time.Second}
	}
	if opts.MaxBodyBytes <= 0 {
		opts.MaxBodyBytes = httpjson.DefaultMaxBody
	}
	if opts.KeepAlive <= 0 {
		opts.KeepAlive = 15 * time.Second
	}
	if opts.EventPruneInterval <= 0 {
		opts.EventPruneInterval = defaultEventPruneInterval
	}
	if err := CheckDefaultRouteDomain(opts.DefaultRouteDomain); err != nil {
		return nil, fmt.Errorf("controller: %w", err)
	}
	opts.DefaultRouteDomain = strings.ToLower(opts.DefaultRouteDomain)
	logger := opts.Logger
	s := &Server{store: store, schemas: schemas, opts: opts, logger: logger, keys: newKeyCache(keyCacheTTL), watchDone: make(chan struct{})}
	s.registry = metrics.NewRegistry()
	s.requests = metrics.NewHTTP(s.registry, metricsNamespace)
	s.registry.MustRegister(postgres.NewPoolCollector(metricsNamespace, store.Pool))
	s.notifier = postgres.NewNotifier(store, logger)
	var watchCtx context.Context
	watchCtx, s.stopWatch = context.WithCancel(context.Background())
	var watches sync.WaitGroup
	watches.Add(1)
	go func() {
		defer watches.Done()
		s.watchRevocations(watchCtx)
	}()
	if opts.EventRetention > 0 {
		watches.Add(1)
		go func() {
			defer watches.Done()
			s.pruneEvents(watchCtx)
		}()
	}
	go func() {
		watches.Wait()
		close(s.watchDone)
	}()
	s.handler = s.routes()
	s.handler = s.withBackupRoutes(s.handler) // GET /backup, POST /restore: backup.go
	return s, nil
}

// metricsNamespace prefixes the controller's own series.
const metricsNamespace = "flynn_controller"

// Close stops the event listener, the API key revocation watch and the
// pruning of old events.
func (s *Server) Close() {
	s.stopWatch()
	<-s.watchDone
	s.notifier.Close()
}

// ServeHTTP serves the API.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.handler.ServeHTTP(w, r) }

// handlerFunc is an endpoint that returns its error instead of writing it.
type handlerFunc func(w http.ResponseWriter, r *http.Request, ps httprouter.Params) error

// handle adapts h to httprouter, writing a returned error: API errors and
// the store's refusals (translated by apiError) go to the client, anything
// else is logged and hidden behind a 500.
func (s *Server) handle(h handlerFunc) httprouter.Handle {
	return func(w http.ResponseWriter, r *http.Request, ps httprouter.Params) {
		err := h(w, r, ps)
		if err == nil {
			return
		}
		err = apiError(err)
		var apiErr *httpjson.Error
		if !errors.As(err, &apiErr) {
			if r.Context().Err() != nil {
				return // the client went away
			}
			s.logger.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		}
		httpjson.WriteError(w, err)
	}
}

// storeErrorCodes is the one table from the store's sentinel errors to the
// API error codes (and so HTTP statuses) clients get for them.
var storeErrorCodes = []struct {
	err  error
	code httpjson.Code
}{
	{postgres.ErrNotFound, httpjson.CodeNotFound},
	{postgres.ErrExists, httpjson.CodeObjectExists},
	{postgres.ErrConflict, httpjson.CodeConflict},
	{postgres.ErrPrecondition, httpjson.CodePreconditionFailed},
	{postgres.ErrInvalid, httpjson.CodeValidation},
}

// apiError returns the API error for a refusal by the store, with the
// store's field and message, and any other error unchanged. An API error a
// handler made comes first: it may wrap the store error it replaces.
func apiError(err error) error {
	var apiErr *httpjson.Error
	var storeErr *postgres.Error
	if errors.As(err, &apiErr) || !errors.As(err, &storeErr) {
		return err
	}
	for _, c := range storeErrorCodes {
		if errors.Is(storeErr.Err, c.err) {
			return &httpjson.Error{Code: c.code, Field: storeErr.Field, Message: storeErr.Message}
		}
	}
	return err
}

// decode reads a JSON body, checks it against the named schema and decodes
// it into v.
func (s *Server) decode(w http.ResponseWriter, r *http.Request, schemaName string, v any) error {
	var raw json.RawMessage
	if err := httpjson.Decode(w, r, s.opts.MaxBodyBytes, &raw); err != nil {
		return err
	}
	if err := s.schemas.Validate(schemaName, raw); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var typeErr *json.UnmarshalTypeError
		if errors.As(err, &typeErr) {
			return httpjson.ValidationError(typeErr.Field, "must be %s", typeErr.Type)
		}
		return httpjson.ValidationError("", "invalid request body: %v", err)
	}
	return nil
}

// page reads ?limit= and ?cursor=.
func page(r *http.Request) (postgres.Page, error) {
	q := r.URL.Query()
	p := postgres.Page{Cursor: q.Get("cursor")}
	if l := q.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > postgres.MaxPageSize {
			return p, httpjson.ValidationError("limit", "limit must be a number from 1 to %d", postgres.MaxPageSize)
		}
		p.Limit = n
	}
	return p, nil
}

// writePage sends one page of a list; when more follows, a Link header
// (rel="next") gives the URL of the next page.
func writePage(w http.ResponseWriter, r *http.Request, p postgres.Page, list any, next string) {
	if next != "" {
		q := r.URL.Query() // filters stay as they were
		q.Set("cursor", next)
		if p.Limit > 0 {
			q.Set("limit", strconv.Itoa(p.Limit))
		}
		w.Header().Set("Link", fmt.Sprintf("<%s?%s>; rel=\"next\"", r.URL.Path, q.Encode()))
	}
	httpjson.Write(w, http.StatusOK, list)
}

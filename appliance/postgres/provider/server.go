package provider

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"time"

	"github.com/openflynn/flynn/controller"
	"github.com/openflynn/flynn/pkg/authkey"
	"github.com/openflynn/flynn/pkg/httpjson"
)

// Store is what the API needs of the database server; *Databases is one.
type Store interface {
	Create(ctx context.Context) (*Database, error)
	Drop(ctx context.Context, name string) error
	Ping(ctx context.Context) error
}

var _ Store = (*Databases)(nil)

// Options configures New.
type Options struct {
	// Key is the provider key every request but GET /health carries as its
	// basic-auth password; empty admits everyone (tests; --insecure).
	Key string
	// Host and Port are where apps reach the databases: the router's TCP
	// route to the primary, "postgres.<cluster domain>" and
	// DefaultRoutePort. Host is required.
	Host string
	Port int
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// MaxBodyBytes bounds request bodies; default DefaultMaxBody.
	MaxBodyBytes int64
	// StoreTimeout bounds each request's work on the database server;
	// default DefaultStoreTimeout.
	StoreTimeout time.Duration
	// Backup, when set, serves GET /backup and POST /restore behind the
	// key (appliance/postgres/backup.Handler): the controller's `flynn
	// cluster backup` and `restore` go through it.
	Backup http.Handler
}

// Defaults of Options.
const (
	// DefaultRoutePort is the router port of the TCP route to the
	// appliance's primary, which apps connect to.
	DefaultRoutePort = 3432
	// DefaultMaxBody is more than any provision request needs.
	DefaultMaxBody = 64 << 10
	// DefaultStoreTimeout leaves room for CREATE DATABASE, which copies
	// a template and checkpoints, and ends the work before the
	// controller gives up on the request (after 30 s), so that a database
	// the controller never hears of is undone rather than left behind.
	DefaultStoreTimeout = 25 * time.Second
)

// Server is the provider's HTTP API.
type Server struct {
	store   Store
	opts    Options
	logger  *slog.Logger
	handler http.Handler
}

// New returns the API over store. It speaks the controller's provider
// contract (controller/provider.go):
//
//	POST   /databases      {"config":{}} → 201 controller.ProvisionedResource
//	DELETE /databases/{id} → 204; 404 when there is no such database
//	GET    /health         → 200 when the database server answers, else 503
//	GET    /backup, POST /restore → Options.Backup, when set
//
// Errors are httpjson errors.
func New(store Store, opts Options) (*Server, error) {
	if opts.Host == "" {
		return nil, errors.New("postgres-api: the host apps reach the databases at is required")
	}
	if opts.Port <= 0 || opts.Port > 65535 {
		opts.Port = DefaultRoutePort
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.MaxBodyBytes <= 0 {
		opts.MaxBodyBytes = DefaultMaxBody
	}
	if opts.StoreTimeout <= 0 {
		opts.StoreTimeout = DefaultStoreTimeout
	}
	s := &Server{store: store, opts: opts, logger: opts.Logger}
	authed := http.NewServeMux()
	authed.HandleFunc("POST /databases", s.handle(s.create))
	authed.HandleFunc("DELETE /databases/{id}", s.handle(s.drop))
	if opts.Backup != nil {
		authed.Handle("GET /backup", opts.Backup)
		authed.Handle("POST /restore", opts.Backup)
	}
	authed.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) {
		httpjson.WriteError(w, httpjson.NotFound("no such endpoint"))
	})
	mux := http.NewServeMux()
	mux.HandleFunc("GET /health", s.health)
	mux.Handle("/", s.requireKey(authed))
	s.handler = mux
	return s, nil
}

// ServeHTTP serves the API.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.handler.ServeHTTP(w, r) }

func (s *Server) requireKey(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !authkey.Valid(r, s.opts.Key) {
			w.Header().Set("WWW-Authenticate", `Basic realm="flynn-postgres-api"`)
			httpjson.WriteError(w, httpjson.Errorf(httpjson.CodeUnauthorized, "missing or wrong provider key"))
			return
		}
		next.ServeHTTP(w, r)
	})
}

// handle adapts an endpoint that returns its error: API errors go to the
// client; anything else is logged and answered 503, since it is the
// database server's trouble and a retry may succeed.
func (s *Server) handle(h func(w http.ResponseWriter, r *http.Request) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), s.opts.StoreTimeout)
		defer cancel()
		err := h(w, r.WithContext(ctx))
		if err == nil {
			return
		}
		var apiErr *httpjson.Error
		if !errors.As(err, &apiErr) {
			s.logger.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
			apiErr = &httpjson.Error{Code: httpjson.CodeServiceUnavailable, Retry: true, Message: "the database server failed the request; try again"}
		}
		httpjson.WriteError(w, apiErr)
	}
}

// createRequest is the body of POST /databases: the controller's
// provision request.
type createRequest struct {
	// Config holds the resource's options; the postgres provider has
	// none, so it must be empty or absent.
	Config map[string]json.RawMessage `json:"config"`
}

// decodeCreate reads and checks a provision request.
func decodeCreate(w http.ResponseWriter, r *http.Request, maxBytes int64) (*createRequest, error) {
	var req createRequest
	if err := httpjson.Decode(w, r, maxBytes, &req); err != nil {
		return nil, err
	}
	if len(req.Config) > 0 {
		keys := slices.Sorted(maps.Keys(req.Config))
		return nil, httpjson.ValidationError("config."+keys[0], "unknown option %q: the postgres provider takes no options (config must be {})", keys[0])
	}
	return &req, nil
}

func (s *Server) create(w http.ResponseWriter, r *http.Request) error {
	if _, err := decodeCreate(w, r, s.opts.MaxBodyBytes); err != nil {
		return err
	}
	db, err := s.store.Create(r.Context())
	if err != nil {
		return err
	}
	s.logger.Info("database created", "database", db.Name)
	httpjson.Write(w, http.StatusCreated, &controller.ProvisionedResource{ID: db.Name, Env: s.env(db)})
	return nil
}

// env is what an app needs to reach db: DATABASE_URL and the variables
// libpq and most drivers read (PGHOST…).
func (s *Server) env(db *Database) map[string]string {
	port := strconv.Itoa(s.opts.Port)
	u := url.URL{
		Scheme: "postgres",
		User:   url.UserPassword(db.Name, db.Password),
		Host:   net.JoinHostPort(s.opts.Host, port),
		Path:   "/" + db.Name,
	}
	return map[string]string{
		"DATABASE_URL": u.String(),
		"PGHOST":       s.opts.Host,
		"PGPORT":       port,
		"PGUSER":       db.Name,
		"PGPASSWORD":   db.Password,
		"PGDATABASE":   db.Name,
	}
}

func (s *Server) drop(w http.ResponseWriter, r *http.Request) error {
	name := r.PathValue("id")
	if err := s.store.Drop(r.Context(), name); err != nil {
		if errors.Is(err, ErrNotFound) {
			return httpjson.NotFound("no database %q", name)
		}
		return err
	}
	s.logger.Info("database dropped", "database", name)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// healthTimeout bounds the health check's ping.
const healthTimeout = 3 * time.Second

func (s *Server) health(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), healthTimeout)
	defer cancel()
	if err := s.store.Ping(ctx); err != nil {
		// Anyone may ask: the details go to the log only.
		s.logger.Warn("health: the database server does not answer", "err", err)
		httpjson.WriteError(w, &httpjson.Error{Code: httpjson.CodeServiceUnavailable, Retry: true, Message: "the database server does not answer"})
		return
	}
	httpjson.Write(w, http.StatusOK, map[string]string{"status": "ok"})
}

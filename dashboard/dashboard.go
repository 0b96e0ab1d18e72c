// Package dashboard is Flynn's web dashboard: a person signs in with a
// controller key or their API key and manages apps (releases, scale, env,
// routes, resources, the live log) and watches the cluster, in pages the
// server renders with html/template and a little JavaScript that keeps
// them live.
//
// The dashboard keeps no state of its own. Every page is read from the
// controller with the signed-in person's key, which lives sealed in the
// session cookie (session.go), so the controller decides what that person
// may see and change, exactly as for the CLI. The exception is the
// graphs: the controller answers only running totals, so a recorder
// (dashboard/history) reads them every half minute, with the dashboard's
// own key, and keeps the last hour.
//
// Every page works without JavaScript: forms post and the server
// redirects back. With it (static/app.js), forms post in the background,
// the page listens to the controller's event stream through GET /live
// and re-renders just the sections that changed (?section=NAME), and the
// app's log follows.
package dashboard

import (
	"context"
	"embed"
	"errors"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"time"

	"github.com/julienschmidt/httprouter"
	"github.com/openflynn/flynn/controller"
	"github.com/openflynn/flynn/controller/client"
	"github.com/openflynn/flynn/dashboard/history"
	"github.com/openflynn/flynn/pkg/metrics"
)

//go:embed templates/*.html
var templateFiles embed.FS

//go:embed static
var staticFiles embed.FS

// Readings are the recorded metrics the graphs draw: a *history.Recorder.
type Readings interface {
	AppReadings(appID string) []*controller.AppMetrics
	HostReadings() []history.HostReading
}

// Config configures a dashboard. Controller and SessionSecret are
// required.
type Config struct {
	// Controller returns a client of the controller that acts with key.
	Controller func(key string) *client.Client
	// SessionSecret seals the session cookies; every instance of the
	// dashboard must have the same (at least 16 characters).
	SessionSecret string
	// GitPort is the routers' TCP port of gitreceive (2222): an app's git
	// remote is ssh://git@HOST:GitPort/<app>.git, where HOST is the name
	// the person reached the dashboard by, which reaches the routers too.
	// Zero: the app page shows no git remote.
	GitPort int
	// Readings draws the graphs; nil draws none.
	Readings Readings
	// Requests counts the dashboard's requests by route (nil: a registry
	// of its own, unserved).
	Requests *metrics.HTTP
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Server serves the dashboard.
type Server struct {
	cfg    Config
	logger *slog.Logger
	seal   *sealer
	tmpl   *template.Template
	static http.Handler
	// assetVersion names the embedded assets' content in their URLs, so a
	// browser may cache them for good and still loads a new build's.
	assetVersion string
}

// New makes a dashboard server.
func New(cfg Config, logger *slog.Logger) (*Server, error) {
	if cfg.Controller == nil {
		return nil, errors.New("dashboard: no controller")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Requests == nil {
		cfg.Requests = metrics.NewHTTP(metrics.NewRegistry(), "flynn_dashboard")
	}
	seal, err := newSealer(cfg.SessionSecret, cfg.Now)
	if err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, logger: logger, seal: seal}
	sub, err := fs.Sub(staticFiles, "static")
	if err != nil {
		return nil, err
	}
	if s.assetVersion, err = contentVersion(sub); err != nil {
		return nil, err
	}
	s.static = http.StripPrefix("/static/", http.FileServerFS(sub))
	if s.tmpl, err = parseTemplates(cfg.Now); err != nil {
		return nil, err
	}
	return s, nil
}

// maxFormBytes bounds a form's body: the biggest is an env value.
const maxFormBytes = 256 << 10

// Handler is the dashboard's HTTP API: the pages, their forms' actions,
// and the live streams.
//
//	GET  /login, POST /login, POST /logout   signing in and out
//	GET  /                                   the apps; POST /apps creates one
//	GET  /apps/:app                          an app's page
//	POST /apps/:app/{scale,env,env/unset,deploy,routes,routes/:route/delete,resources,delete}
//	GET  /apps/:app/log                      the app's log, followed (SSE)
//	GET  /cluster                            the nodes and deployments in flight
//	GET  /live?app=ID                        "change" events (SSE) when the controller's objects change
//	GET  /static/*                           the stylesheet and script
//	GET  /health                             200 when serving
//
// A page asked for with ?section=NAME answers only that section's HTML,
// which the script swaps in. Every POST needs the session's CSRF token and
// is refused when the browser says another site's page sent it.
func (s *Server) Handler() http.Handler {
	r := s.cfg.Requests.Router()
	r.GET("/health", func(w http.ResponseWriter, _ *http.Request, _ httprouter.Params) { w.WriteHeader(http.StatusOK) })
	r.Handler(http.MethodGet, "/static/*file", s.cacheForever(s.static))
	// Pages name no icon; a browser asks anyway.
	r.GET("/favicon.ico", func(w http.ResponseWriter, _ *http.Request, _ httprouter.Params) { w.WriteHeader(http.StatusNoContent) })
	r.GET("/login", s.loginPage)
	r.POST("/login", s.login)
	r.POST("/logout", s.action(s.logout))

	r.GET("/", s.page(s.appsPage))
	r.POST("/apps", s.action(s.createApp))
	r.GET("/apps/:app", s.page(s.appPage))
	r.GET("/apps/:app/log", s.signedIn(s.appLog))
	r.POST("/apps/:app/scale", s.action(s.scale))
	r.POST("/apps/:app/env", s.action(s.setEnv))
	r.POST("/apps/:app/env/unset", s.action(s.unsetEnv))
	r.POST("/apps/:app/deploy", s.action(s.deployRelease))
	r.POST("/apps/:app/routes", s.action(s.addRoute))
	r.POST("/apps/:app/routes/:route/delete", s.action(s.removeRoute))
	r.POST("/apps/:app/resources", s.action(s.addResource))
	r.POST("/apps/:app/delete", s.action(s.deleteApp))
	r.GET("/cluster", s.page(s.clusterPage))
	r.GET("/live", s.signedIn(s.live))
	return s.cfg.Requests.Wrap(s.secure(r))
}

// secure sets the headers every answer carries: no framing (clickjacking),
// no scripts or styles but the dashboard's own, no sniffing, no referrer
// with app names to other sites.
func (s *Server) secure(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "same-origin")
		next.ServeHTTP(w, r)
	})
}

func (s *Server) cacheForever(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("v") == s.assetVersion {
			w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
		} else {
			w.Header().Set("Cache-Control", "no-cache")
		}
		next.ServeHTTP(w, r)
	})
}

// sessionOf is r's session, or errNoSession.
func (s *Server) sessionOf(r *http.Request) (*session, error) {
	c, err := r.Cookie(CookieName)
	if err != nil {
		return nil, errNoSession
	}
	return s.seal.open(c.Value)
}

// request is one signed-in request: its session and a controller client
// acting with the session's key.
type request struct {
	*http.Request
	sess *session
	api  *client.Client
	ps   httprouter.Params
}

// signedIn runs h for a signed-in request; others go to the sign-in page
// (a page) or get 401 (a stream or a script's request).
func (s *Server) signedIn(h func(w http.ResponseWriter, r *request)) httprouter.Handle {
	return func(w http.ResponseWriter, r *http.Request, ps httprouter.Params) {
		sess, err := s.sessionOf(r)
		if err != nil {
			if r.Method == http.MethodGet && !wantsFragment(r) && r.Header.Get("Accept") != "text/event-stream" {
				http.Redirect(w, r, "/login", http.StatusSeeOther)
				return
			}
			http.Error(w, "not signed in", http.StatusUnauthorized)
			return
		}
		h(w, &request{Request: r, sess: sess, api: s.cfg.Controller(sess.Key), ps: ps})
	}
}

// requestTimeout bounds the controller calls behind one page or action.
const requestTimeout = 30 * time.Second

func (r *request) ctx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(r.Context(), requestTimeout)
}

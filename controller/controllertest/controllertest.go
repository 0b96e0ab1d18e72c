// Package controllertest runs a real controller for tests in other
// packages: the API server on a database the caller made (pkg/pgtest),
// behind an httptest server on loopback, closed when the test ends.
package controllertest

import (
	"context"
	"encoding/json"
	"io"
	"log"
	"log/slog"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/openflynn/flynn/controller"
	"github.com/openflynn/flynn/controller/client"
	"github.com/openflynn/flynn/controller/postgres"
	"github.com/openflynn/flynn/controller/server"
)

// Options tune a test controller.
type Options struct {
	// Key is the controller key clients must send.
	Key string
	// Runner places one-off jobs; nil answers them with service_unavailable.
	Runner server.JobRunner
	// Logs reads apps' logs; nil answers GET /apps/:id/log with
	// service_unavailable.
	Logs server.AppLogReader
	// RouterMetrics reads the routers' counts; nil answers GET
	// /apps/:id/metrics with service_unavailable.
	RouterMetrics server.RouterMetrics
	// Logger defaults to discarding.
	Logger *slog.Logger
	// TLS serves over TLS with a self-signed certificate, offering HTTP/2
	// as the router in front of a real controller does.
	TLS bool
	// KeepAlive is the event stream's keepalive interval (server default
	// when zero).
	KeepAlive time.Duration
	// DefaultRouteDomain gives every app that is not a system app the
	// route <app>.<DefaultRouteDomain> at create; empty: none.
	DefaultRouteDomain string
	// Images keeps uploaded image archives (POST /apps/:id/images); nil
	// answers those uploads with service_unavailable.
	Images server.ImageStore
	// CompleteDeployments stands in for the scheduler where a test has
	// none: every deployment it returns true for is reported complete as
	// soon as it is made (formations are left as they are), so that a
	// client waiting for one (flynn env set) goes on.
	CompleteDeployments func(*controller.Deployment) bool
}

// Controller is a running test controller.
type Controller struct {
	// HTTP is the httptest server; HTTP.URL is the controller's URL.
	HTTP *httptest.Server
	// Server is the controller's handler.
	Server *server.Server
	// Store is its database.
	Store *postgres.Store
	key   string
}

// New serves a controller on the database at dbURL (migrated here) until t
// ends: client connections are dropped, then the server, its event
// notifier and the store are closed.
func New(t testing.TB, dbURL string, opts Options) *Controller {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	store, err := postgres.Open(ctx, dbURL, postgres.Options{})
	if err != nil {
		t.Fatalf("controllertest: open store: %v", err)
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	srv, err := server.New(store, server.Options{AuthKey: opts.Key, Logger: opts.Logger, Runner: opts.Runner, Logs: opts.Logs, RouterMetrics: opts.RouterMetrics, KeepAlive: opts.KeepAlive, Images: opts.Images, DefaultRouteDomain: opts.DefaultRouteDomain})
	if err != nil {
		store.Close()
		t.Fatalf("controllertest: %v", err)
	}
	hs := httptest.NewUnstartedServer(srv)
	hs.Config.ErrorLog = log.New(io.Discard, "", 0) // refused handshakes are expected in TLS tests
	if opts.TLS {
		hs.EnableHTTP2 = true
		hs.StartTLS()
	} else {
		hs.Start()
	}
	c := &Controller{HTTP: hs, Server: srv, Store: store, key: opts.Key}
	stopDeployer := func() {}
	if opts.CompleteDeployments != nil {
		stopDeployer = c.completeDeployments(t, opts.CompleteDeployments)
	}
	t.Cleanup(func() {
		stopDeployer()
		hs.CloseClientConnections()
		hs.Close()
		srv.Close()
		store.Close()
	})
	return c
}

// completeDeployments reports every pending deployment which picks
// complete until the returned function is called (which waits for it to
// stop).
func (c *Controller) completeDeployments(t testing.TB, which func(*controller.Deployment) bool) func() {
	ctx, cancel := context.WithCancel(context.Background())
	events, err := c.Client().StreamEvents(ctx, controller.EventFilter{ObjectTypes: []string{controller.ObjectTypeDeployment}})
	if err != nil {
		cancel()
		t.Fatalf("controllertest: follow deployments: %v", err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		api := c.Client()
		for e := range events {
			var d controller.Deployment
			if e.Op != controller.OpCreate || json.Unmarshal(e.Data, &d) != nil || d.Status != controller.DeploymentPending || !which(&d) {
				continue
			}
			for _, status := range []string{controller.DeploymentRunning, controller.DeploymentComplete} {
				_, _ = api.UpdateDeployment(ctx, d.AppID, d.ID, controller.DeploymentUpdate{Status: status})
			}
		}
	}()
	return func() {
		cancel()
		<-done
	}
}

// URL returns the controller's base URL.
func (c *Controller) URL() string { return c.HTTP.URL }

// Client returns a client with the controller's key (trusting its test
// certificate when it serves TLS).
func (c *Controller) Client() *client.Client {
	return client.NewWithHTTPClient(c.HTTP.URL, c.key, c.HTTP.Client())
}

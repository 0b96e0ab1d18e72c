// Package dashboardd runs the dashboard as a daemon: its flags, the HTTP
// server and the metrics recorder behind the graphs.
package dashboardd

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/openflynn/flynn/controller/client"
	"github.com/openflynn/flynn/dashboard"
	"github.com/openflynn/flynn/dashboard/history"
	"github.com/openflynn/flynn/discoverd"
	discoverdclient "github.com/openflynn/flynn/discoverd/client"
	"github.com/openflynn/flynn/pkg/cmdline"
	"github.com/openflynn/flynn/pkg/metrics"
	"github.com/urfave/cli/v2"
)

// DefaultHTTPAddr is where the dashboard listens outside a job.
const DefaultHTTPAddr = "127.0.0.1:8090"

// Config is the daemon's configuration.
type Config struct {
	// HTTPAddr is the listen address (default DefaultHTTPAddr).
	HTTPAddr string
	// ControllerURL is the controller ("http://controller.discoverd").
	ControllerURL string
	// HTTPClient reaches the controller (nil: http.DefaultClient); a
	// discoverd dialer's resolves controller.discoverd.
	HTTPClient *http.Client
	// ControllerKey is the dashboard's own key: it reads the metrics the
	// graphs draw, and guards GET /metrics. Empty: no graphs.
	ControllerKey string
	// SessionSecret seals session cookies (dashboard.Config).
	SessionSecret string
	// GitPort is the routers' port of gitreceive (dashboard.Config).
	GitPort int
	// SampleInterval is how often the graphs' metrics are read (default
	// 30 s).
	SampleInterval time.Duration
	// Ready, if set, is called with the listen address once it listens.
	Ready func(addr string)
}

// Daemon describes flynn-dashboard's command line.
func Daemon() cmdline.Daemon[Config] {
	return cmdline.Daemon[Config]{
		Name:  "flynn-dashboard",
		Usage: "Flynn's web dashboard",
		Description: `Serves the dashboard: a person signs in with a controller key or an API key
and manages apps and watches the cluster in a browser. Every page is read
from the controller with the signed-in person's key. Bootstrap runs it as
the app "dashboard", routed at https://dashboard.<domain>. As a Flynn job
it listens on $PORT unless --http-addr is given.`,
		Flags: append([]cli.Flag{
			cmdline.String("http-addr", DefaultHTTPAddr, "listen address (default :$PORT in a job)"),
			cmdline.String("controller-url", "http://controller.discoverd", "the controller (a discoverd name is reached through --discoverd-url)"),
			cmdline.String("discoverd-url", "", "discoverd, to reach the controller by name (default: http://EXTERNAL_IP:1111)"),
			cmdline.String("external-ip", "", "this node's address, whose discoverd is the default", cmdline.Was("EXTERNAL_IP")),
			cmdline.Int("git-port", 2222, "the routers' TCP port of gitreceive, for the apps' git remotes (0: none shown)"),
			cmdline.Duration("sample-interval", 30*time.Second, "how often the graphs' metrics are read"),
		}, append(append(cmdline.Secret("session-secret", "the secret session cookies are sealed with (at least 16 characters; every instance needs the same)"),
			cmdline.Secret("controller-key", "the dashboard's own key, to read what the graphs draw (none: no graphs)")...),
			cmdline.Secret("cluster-key", "the cluster key, for discoverd")...)...),
		Config: func(c *cli.Context, logger *slog.Logger) (Config, error) {
			secret, err := cmdline.SecretOf(c, "session-secret")
			if err != nil {
				return Config{}, err
			}
			if secret == "" {
				return Config{}, errors.New("a session secret is required (--session-secret-file or FLYNN_SESSION_SECRET)")
			}
			controllerKey, err := cmdline.SecretOf(c, "controller-key")
			if err != nil {
				return Config{}, err
			}
			clusterKey, err := cmdline.SecretOf(c, "cluster-key")
			if err != nil {
				return Config{}, err
			}
			cfg := Config{
				HTTPAddr:       cmdline.ListenAddr(c, "http-addr"),
				ControllerURL:  c.String("controller-url"),
				ControllerKey:  controllerKey,
				SessionSecret:  secret,
				GitPort:        c.Int("git-port"),
				SampleInterval: c.Duration("sample-interval"),
			}
			du := c.String("discoverd-url")
			if ip := c.String("external-ip"); du == "" && ip != "" {
				du = discoverd.NodeURL(ip)
			}
			if du != "" {
				cfg.HTTPClient = discoverdclient.HTTPClient(discoverdclient.New(du, clusterKey))
			}
			return cfg, nil
		},
		Run: Run,
	}
}

// Run serves the dashboard until ctx ends.
func Run(ctx context.Context, cfg Config, logger *slog.Logger) error {
	hc := cfg.HTTPClient
	if hc == nil {
		hc = http.DefaultClient
	}
	controllerFor := func(key string) *client.Client { return client.NewWithHTTPClient(cfg.ControllerURL, key, hc) }
	reg := metrics.NewRegistry()
	dcfg := dashboard.Config{
		Controller:    controllerFor,
		SessionSecret: cfg.SessionSecret,
		GitPort:       cfg.GitPort,
		Requests:      metrics.NewHTTP(reg, "flynn_dashboard"),
	}
	recorderDone := make(chan struct{})
	rctx, stopRecorder := context.WithCancel(ctx)
	defer func() { stopRecorder(); <-recorderDone }()
	if cfg.ControllerKey != "" {
		rec := history.New(controllerFor(cfg.ControllerKey), history.Config{Interval: cfg.SampleInterval}, logger.With("part", "history"))
		dcfg.Readings = rec
		go func() {
			defer close(recorderDone)
			_ = rec.Run(rctx)
		}()
	} else {
		logger.Warn("no controller key: the dashboard draws no graphs")
		close(recorderDone)
	}
	d, err := dashboard.New(dcfg, logger)
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.Handle("GET "+metrics.Path, metrics.Handler(reg, cfg.ControllerKey))
	mux.Handle("/", d.Handler())

	addr := cfg.HTTPAddr
	if addr == "" {
		addr = DefaultHTTPAddr
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	srv := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		// Pages and actions wait at most for the controller's answers;
		// the live streams lift the deadline for themselves.
		WriteTimeout:   time.Minute,
		IdleTimeout:    2 * time.Minute,
		MaxHeaderBytes: 64 << 10,
		ErrorLog:       slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	logger.Info("listening", "addr", ln.Addr().String())
	if cfg.Ready != nil {
		cfg.Ready(ln.Addr().String())
	}
	select {
	case err := <-served:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	// Live streams never end on their own: give requests a moment, then close.
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		srv.Close()
	}
	<-served
	return nil
}

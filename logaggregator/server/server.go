// Package server is Flynn's log aggregator: it takes the lines flynn-host
// ships of every job and the router ships of every request (POST /lines),
// keeps the last lines of every app in memory (Store), snapshots them to
// its data directory so they outlive its own restart, and serves them, as
// history and followed (GET /apps/:app_id/log). See package logaggregator
// for the API.
package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/openflynn/flynn/controller/client"
	"github.com/openflynn/flynn/discoverd"
	discoverdclient "github.com/openflynn/flynn/discoverd/client"
	"github.com/openflynn/flynn/logaggregator"
	"github.com/openflynn/flynn/logaggregator/drain"
	"github.com/openflynn/flynn/pkg/cmdline"
	"github.com/openflynn/flynn/pkg/metrics"
)

// DefaultHTTPAddr is where the aggregator listens outside a job.
const DefaultHTTPAddr = ":5080"

// DefaultSnapshotInterval is how often a changed store is snapshot.
const DefaultSnapshotInterval = 10 * time.Second

// Config configures Run.
type Config struct {
	// HTTPAddr is the listen address; DefaultHTTPAddr when empty.
	HTTPAddr string
	// Key is the cluster key every request needs; empty admits everyone.
	Key string
	// LinesPerApp and BytesPerApp bound what is kept of each app; the
	// defaults are logaggregator.DefaultLinesPerApp and DefaultBytesPerApp.
	LinesPerApp, BytesPerApp int
	// DataDir, when set, holds the snapshot the lines are loaded from at
	// start and saved to every SnapshotInterval and at shutdown.
	DataDir string
	// SnapshotInterval defaults to DefaultSnapshotInterval.
	SnapshotInterval time.Duration
	// Drains, when set, is where the apps' log drains are learnt (the
	// controller); every line kept is sent to its app's drains. Nil runs
	// no drains.
	Drains DrainSource
	// DrainResync is how often the drains are listed even when no event
	// said they changed; default DefaultDrainResync.
	DrainResync time.Duration
	// Ready, when set, is called with the listen address once the server
	// accepts requests; tests use it.
	Ready func(addr string)
}

// Daemon is the flynn-logaggregator binary.
func Daemon() cmdline.Daemon[Config] {
	return cmdline.Daemon[Config]{
		Name:  "flynn-logaggregator",
		Usage: "Flynn's log aggregator: every app's recent output, for flynn log",
		Description: `Takes the lines flynn-host ships of every job and the router ships of every
request, keeps the last --lines-per-app lines of each app (and at most
--bytes-per-app bytes of them), and serves them to the controller, which
serves flynn log. With --data-dir the lines are saved there every
--snapshot-interval and at shutdown, and loaded at start. flynn-host
registers the job in discoverd as "logaggregator". As a Flynn job it
listens on $PORT unless --http-addr is given.`,
		Flags: append([]cli.Flag{
			cmdline.String("http-addr", DefaultHTTPAddr, "listen address (default :$PORT in a job)"),
			cmdline.Int("lines-per-app", logaggregator.DefaultLinesPerApp, "lines kept of each app"),
			cmdline.Size("bytes-per-app", DefaultBytesPerApp, "most line data kept of each app"),
			cmdline.String("data-dir", "", "directory the lines are saved in (empty: kept in memory only)"),
			cmdline.Duration("snapshot-interval", DefaultSnapshotInterval, "how often changed lines are saved to --data-dir"),
			cmdline.String("controller-url", "http://controller.discoverd", "the controller, which lists the apps' log drains (a discoverd name is reached through --discoverd-url)"),
			cmdline.String("discoverd-url", "", "discoverd, to reach the controller by name (default: http://EXTERNAL_IP:1111)"),
			cmdline.String("external-ip", "", "this node's address, whose discoverd is the default", cmdline.Was("EXTERNAL_IP")),
			cmdline.Insecure(),
		}, append(cmdline.Secret("cluster-key", "cluster key: every request carries it; required unless --insecure"),
			cmdline.Secret("controller-key", "the controller's key, to read the apps' log drains (none: no drains run)")...)...),
		Config: func(c *cli.Context, logger *slog.Logger) (Config, error) {
			key, err := cmdline.RequiredKey(c, logger, "cluster-key")
			if err != nil {
				return Config{}, err
			}
			cfg := Config{
				HTTPAddr:         cmdline.ListenAddr(c, "http-addr"),
				Key:              key,
				LinesPerApp:      c.Int("lines-per-app"),
				BytesPerApp:      int(cmdline.SizeOf(c, "bytes-per-app")),
				DataDir:          c.String("data-dir"),
				SnapshotInterval: c.Duration("snapshot-interval"),
			}
			if cfg.LinesPerApp <= 0 {
				return cfg, errors.New("--lines-per-app must be more than 0")
			}
			if cfg.BytesPerApp < logaggregator.MaxLineBytes {
				return cfg, fmt.Errorf("--bytes-per-app must be at least %d (one line at its longest)", logaggregator.MaxLineBytes)
			}
			if cfg.SnapshotInterval <= 0 {
				return cfg, errors.New("--snapshot-interval must be more than 0")
			}
			controllerKey, err := cmdline.SecretOf(c, "controller-key")
			if err != nil {
				return cfg, err
			}
			if controllerKey == "" {
				logger.Warn("no controller key: no log drains run")
				return cfg, nil
			}
			du := c.String("discoverd-url")
			if ip := c.String("external-ip"); du == "" && ip != "" {
				du = discoverd.NodeURL(ip)
			}
			hc := &http.Client{}
			if du != "" {
				hc = discoverdclient.HTTPClient(discoverdclient.New(du, key))
			}
			cfg.Drains = client.NewWithHTTPClient(c.String("controller-url"), controllerKey, hc)
			return cfg, nil
		},
		Run: Run,
	}
}

// Run serves the aggregator until ctx ends, then saves its lines (with
// DataDir) and returns.
func Run(ctx context.Context, cfg Config, logger *slog.Logger) error {
	store := NewStore(cfg.LinesPerApp, cfg.BytesPerApp)
	if cfg.DataDir != "" {
		n, err := store.Load(cfg.DataDir)
		if err != nil {
			return err
		}
		logger.Info("loaded saved lines", "lines", n, "dir", cfg.DataDir)
	}
	addr := cfg.HTTPAddr
	if addr == "" {
		addr = DefaultHTTPAddr
	}
	saved := store.Version() // what the data dir holds
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	reg := metrics.NewRegistry()
	handler := NewHandler(store, cfg.Key, reg, logger)
	var drains *drain.Manager
	drainsDone := make(chan struct{})
	drainCtx, stopDrainSync := context.WithCancel(ctx)
	if cfg.Drains != nil {
		drains = newDrains(store, logger.With("part", "drains"))
		handler.drains = drains
		resync := cfg.DrainResync
		if resync <= 0 {
			resync = DefaultDrainResync
		}
		go func() {
			defer close(drainsDone)
			syncDrains(drainCtx, cfg.Drains, drains, resync, logger.With("part", "drains"))
		}()
	} else {
		close(drainsDone)
	}
	srv := &http.Server{
		Handler: handler,
		// No write timeout: a follow lasts as long as its reader.
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       time.Minute, // a batch is at most 4 MiB
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	logger.Info("listening", "addr", ln.Addr().String())
	if cfg.Ready != nil {
		cfg.Ready(ln.Addr().String())
	}

	snapshots := make(chan struct{})
	snapCtx, stopSnapshots := context.WithCancel(ctx)
	go func() {
		defer close(snapshots)
		if cfg.DataDir != "" {
			snapshotLoop(snapCtx, store, saved, cfg, logger)
		}
	}()

	var serveFailed error
	select {
	case <-ctx.Done():
	case serveFailed = <-serveErr:
	}
	// Followers never end on their own: close them after a moment.
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
	if err := srv.Shutdown(sctx); err != nil {
		srv.Close()
	}
	cancel()
	stopSnapshots()
	<-snapshots
	stopDrainSync()
	<-drainsDone
	if drains != nil {
		// What the receivers have not taken yet goes out, for a while.
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		if err := drains.Close(dctx); err != nil {
			logger.Warn("drains closed with lines unsent", "err", err)
		}
		cancel()
	}
	if cfg.DataDir != "" {
		if err := store.Save(cfg.DataDir); err != nil {
			logger.Error("save lines at shutdown", "err", err)
		}
	}
	if serveFailed != nil && !errors.Is(serveFailed, http.ErrServerClosed) {
		return fmt.Errorf("serve: %w", serveFailed)
	}
	return nil
}

// snapshotLoop saves the store every SnapshotInterval when it changed
// since version saved.
func snapshotLoop(ctx context.Context, store *Store, saved uint64, cfg Config, logger *slog.Logger) {
	interval := cfg.SnapshotInterval
	if interval <= 0 {
		interval = DefaultSnapshotInterval
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		v := store.Version()
		if v == saved {
			continue
		}
		if err := store.Save(cfg.DataDir); err != nil {
			logger.Warn("save lines", "err", err)
			continue
		}
		saved = v
	}
}

package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/openflynn/flynn/discoverd"
	discoverdclient "github.com/openflynn/flynn/discoverd/client"
	"github.com/openflynn/flynn/host/daemon"
	"github.com/openflynn/flynn/host/docker"
	"github.com/openflynn/flynn/host/ports"
	logclient "github.com/openflynn/flynn/logaggregator/client"
	"github.com/openflynn/flynn/logaggregator/shipper"
	"github.com/openflynn/flynn/pkg/metrics"
	"github.com/openflynn/flynn/pkg/sdnotify"
)

// Config configures a flynn-host daemon process.
type Config struct {
	// Daemon configures the job runner; its APIPort defaults to Listen's port.
	Daemon daemon.Config
	// Listen is the host API's address. Default ":1113".
	Listen string
	// ClusterKey guards the API (basic-auth password); empty leaves it open.
	ClusterKey string
	// DiscoverdURLs are the discoverds the host and its jobs register in:
	// the first that answers, this node's own (Daemon.DiscoverdURL) first
	// when listed (see Registrar). Jobs get the others as FLYNN_JOIN
	// unless Daemon.DiscoverdPeers says otherwise. None registers nothing.
	DiscoverdURLs []string
	// DiscoverdURL is one more discoverd, for callers that know one: it
	// goes after DiscoverdURLs.
	DiscoverdURL string
	// DiscoverdTTL is how long a registration outlives its last heartbeat. Default discoverd.DefaultTTL.
	DiscoverdTTL time.Duration
	// ReservePorts takes the job port range out of the machine's
	// ephemeral ports (ports.KeepFromEphemeral), as flynn-host does; tests that
	// run a daemon in their process leave the machine's settings alone.
	ReservePorts bool
	// MigrateListenerQueues sets the kernel's tcp_migrate_req, as
	// flynn-host does: a listener closed while another of its
	// SO_REUSEPORT group stays (the old router of a deployment) hands the
	// connections queued on it to that one instead of resetting them.
	MigrateListenerQueues bool
	// StopJobs stops every job when the daemon shuts down (--stop-jobs),
	// bounded by StopJobsTimeout; otherwise the jobs keep running and the
	// next daemon adopts them.
	StopJobs bool
}

// tcpMigrateReqPath is the sysctl of Config.MigrateListenerQueues.
const tcpMigrateReqPath = "/proc/sys/net/ipv4/tcp_migrate_req"

// StopJobsTimeout bounds how long a daemon with StopJobs waits on shutdown
// for its jobs to end; each is killed after its own grace period, so only
// a job that cannot even be killed outlasts it.
const StopJobsTimeout = 2 * time.Minute

// DefaultCABundle is the host's CA bundle as update-ca-certificates writes it.
const DefaultCABundle = "/etc/ssl/certs/ca-certificates.crt"

// Run runs the daemon until ctx ends; jobs keep running after it returns.
func Run(ctx context.Context, cfg Config, logger *slog.Logger) error {
	if cfg.Listen == "" {
		cfg.Listen = ":1113"
	}
	_, portStr, err := net.SplitHostPort(cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen address %q: %w", cfg.Listen, err)
	}
	if cfg.Daemon.APIPort == 0 {
		cfg.Daemon.APIPort, _ = strconv.Atoi(portStr)
	}
	if cfg.Daemon.CABundle == "" {
		if _, err := os.Stat(DefaultCABundle); err == nil {
			cfg.Daemon.CABundle = DefaultCABundle
		}
	}
	backend, err := docker.New(ctx)
	if err != nil {
		return err
	}
	defer backend.Close()
	if cfg.Daemon.ExternalIP == "" {
		cfg.Daemon.ExternalIP = "127.0.0.1"
	}
	if cfg.Daemon.DiscoverdURL == "" {
		cfg.Daemon.DiscoverdURL = discoverd.NodeURL(cfg.Daemon.ExternalIP)
	}
	urls := cfg.DiscoverdURLs
	if cfg.DiscoverdURL != "" {
		urls = append(slices.Clone(urls), cfg.DiscoverdURL)
	}
	urls = PreferenceOrder(cfg.Daemon.DiscoverdURL, urls)
	if cfg.Daemon.DiscoverdPeers == nil {
		cfg.Daemon.DiscoverdPeers = slices.DeleteFunc(slices.Clone(urls), func(u string) bool {
			return u == strings.TrimSuffix(cfg.Daemon.DiscoverdURL, "/")
		})
	}
	var registrar daemon.Registrar
	if len(urls) > 0 {
		registrar = NewRegistrar(cfg.Daemon.DiscoverdURL, urls, cfg.ClusterKey, cfg.DiscoverdTTL, logger.With("part", "discoverd-client"))
	}
	// Every app job's lines go to the log aggregator, found through the
	// node's discoverd. The shipper outlives the daemon's log pumps (the
	// defers run in turn), so it sends their last lines.
	nodeDiscoverd := discoverdclient.New(cfg.Daemon.DiscoverdURL, cfg.ClusterKey)
	ship := shipper.New(
		logclient.New(logclient.DiscoverdURL, cfg.ClusterKey, discoverdclient.HTTPClient(nodeDiscoverd)),
		shipper.Options{}, logger.With("part", "log-shipper"))
	// Image archives' URLs name the blobstore as the controller reaches
	// it: http://blobstore.discoverd, found the same way.
	if cfg.Daemon.ArchiveClient == nil {
		cfg.Daemon.ArchiveClient = discoverdclient.HTTPClient(nodeDiscoverd)
	}
	cfg.Daemon.LogShipper = ship
	shipCtx, stopShipping := context.WithCancel(context.WithoutCancel(ctx))
	shipped := make(chan struct{})
	go func() {
		defer close(shipped)
		ship.Run(shipCtx)
	}()
	defer func() {
		stopShipping()
		<-shipped
	}()
	if cfg.ReservePorts {
		if err := ports.KeepFromEphemeral(ports.ReservedPortsPath, cfg.Daemon.PortMin, cfg.Daemon.PortMax); err != nil {
			// The jobs still run; now and then one fails to start, with
			// "address already in use".
			logger.Warn("could not keep the job ports out of the ephemeral range", "err", err)
		}
	}
	if cfg.MigrateListenerQueues {
		if err := os.WriteFile(tcpMigrateReqPath, []byte("1\n"), 0o644); err != nil {
			// Kernels before 5.14 lack it: a router's deployment may
			// then reset the few connections queued on the old one.
			logger.Warn("could not set tcp_migrate_req", "err", err)
		}
	}
	d, err := daemon.New(cfg.Daemon, backend, registrar, logger)
	if err != nil {
		return err
	}
	defer d.Close()
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	if err := d.Start(ctx); err != nil {
		ln.Close()
		return err
	}
	reg := metrics.NewRegistry()
	reg.MustRegister(ship.Collector("flynn_host"))
	srv := &http.Server{Handler: Handler(d, cfg.ClusterKey, reg, logger), ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	logger.Info("flynn-host listening", "addr", ln.Addr().String(), "host_id", cfg.Daemon.HostID)
	// Under systemd (Type=notify), `systemctl start` returns, and units
	// after this one start, only now: jobs adopted, the API answering.
	if _, err := sdnotify.Notify(sdnotify.Ready); err != nil {
		logger.Warn("could not tell systemd the daemon is ready", "err", err)
	}
	select {
	case <-ctx.Done():
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	}
	_, _ = sdnotify.Notify(sdnotify.Stopping)
	if cfg.StopJobs {
		stopCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), StopJobsTimeout)
		stopped, left := d.StopAll(stopCtx)
		cancel()
		logger.Info("jobs stopped on shutdown (--stop-jobs)", "stopped", stopped, "still_running", left)
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = srv.Shutdown(sctx)
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

package provider

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
	"github.com/openflynn/flynn/pkg/cmdline"
)

// Config is what a flynn-redis-api process runs with.
type Config struct {
	// HTTPAddr is the API's listen address (in a job, :$PORT).
	HTTPAddr string
	// Key guards the API: every request carries it as its basic-auth
	// password. Required.
	Key string
	// ControllerURL and ControllerKey reach the controller. The URL may
	// name a discoverd service (http://controller.discoverd), reached
	// through DiscoverdURL.
	ControllerURL, ControllerKey string
	// DiscoverdURL is the discoverd that resolves the controller URL's
	// service names.
	DiscoverdURL string
	// Provider configures the provisioning: the host of REDIS_URL, the
	// app of the server image, the timeout.
	Provider Options
	// ShutdownTimeout bounds the wait for requests in flight when the
	// process is stopped; default 30s.
	ShutdownTimeout time.Duration
}

// Run serves the provider's API until ctx ends, then lets the requests in
// flight finish (for at most ShutdownTimeout).
func Run(ctx context.Context, cfg Config, logger *slog.Logger) error {
	if cfg.Key == "" {
		return errors.New("no API key: the provider would make Redis servers for anyone")
	}
	if cfg.Provider.Host == "" {
		return errors.New("no host for REDIS_URL")
	}
	if cfg.ShutdownTimeout <= 0 {
		cfg.ShutdownTimeout = 30 * time.Second
	}
	d := discoverdclient.New(cfg.DiscoverdURL, "")
	d.Logger = logger
	ctrl := client.NewWithHTTPClient(cfg.ControllerURL, cfg.ControllerKey, discoverdclient.HTTPClient(d))
	cfg.Provider.Logger = logger
	if cfg.Provider.Dialer == nil {
		cfg.Provider.Dialer = &discoverdclient.Dialer{Client: d, Net: net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}}
	}
	p := New(ctrl, cfg.Provider)

	ln, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return err
	}
	srv := &http.Server{
		Handler:           Handler(p, cfg.Key, logger),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		// A provisioning takes at most the provider's timeout, and its
		// clean-up after a failure as long again. Backups and restores
		// lift both timeouts for their transfer (see StreamTimeout).
		WriteTimeout:   2*p.opts.Timeout + 10*time.Second,
		IdleTimeout:    2 * time.Minute,
		MaxHeaderBytes: 64 << 10,
		ErrorLog:       slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	logger.Info("serving", "addr", ln.Addr().String(), "controller", cfg.ControllerURL, "redis_host", cfg.Provider.Host)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	select {
	case err := <-served:
		return err
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.ShutdownTimeout)
	defer cancel()
	err = srv.Shutdown(shutdownCtx)
	if serveErr := <-served; !errors.Is(serveErr, http.ErrServerClosed) {
		return serveErr
	}
	return err
}

// Daemon is the flynn-redis-api binary.
func Daemon() cmdline.Daemon[Config] {
	flags := []cli.Flag{
		cmdline.String("http-addr", ":8080", "listen address (default in a job: :$PORT)"),
		cmdline.String("domain", "", "the cluster's domain: apps reach Redis servers at redis.DOMAIN through the router (required unless --redis-host)"),
		cmdline.String("redis-host", "", "host name in REDIS_URL (default: redis.DOMAIN)"),
		cmdline.String("redis-app", "redis", "app whose current release's artifact (the redis image) the servers run"),
		cmdline.String("controller-url", "http://controller.discoverd", "controller URL; http://controller.discoverd reaches any live controller"),
		cmdline.String("discoverd-url", "", "discoverd that resolves the controller URL (default: http://EXTERNAL_IP:1111, this node's)"),
		cmdline.String("external-ip", "127.0.0.1", "this node's address, where its discoverd is", cmdline.Was("EXTERNAL_IP")),
		cmdline.Duration("timeout", 25*time.Second, "longest a provisioning or a removal may take, controller calls included"),
	}
	flags = append(flags, cmdline.Secret("redis-api-key", "key every request must carry as its basic-auth password (required)")...)
	flags = append(flags, cmdline.Secret("controller-key", "controller key (required)")...)
	return cmdline.Daemon[Config]{
		Name:  "flynn-redis-api",
		Usage: "the Redis appliance's resource provider: makes and removes Redis servers for `flynn resource`",
		Description: `POST /clusters makes a Redis server: an app redis-<id> that runs the
redis image with a password and a volume, and a TCP route to it; the answer
is the env an app reaches it with (REDIS_URL=redis://:<password>@redis.DOMAIN:<port>).
DELETE /clusters/<id> removes it. GET /clusters/<id>/backup dumps a server's
data; PUT /clusters/<id> re-creates a server of a cluster backup and POST
/clusters/<id>/restore loads its dump into it. Every request carries --redis-api-key
as its basic-auth password; the controller sends the key given in the
provider's URL (http://:KEY@redis-api.discoverd/clusters).`,
		Flags:  flags,
		Config: configFrom,
		Run:    Run,
	}
}

func configFrom(c *cli.Context, _ *slog.Logger) (Config, error) {
	cfg := Config{
		HTTPAddr:      cmdline.ListenAddr(c, "http-addr"),
		ControllerURL: c.String("controller-url"),
		DiscoverdURL:  c.String("discoverd-url"),
		Provider: Options{
			Host:     c.String("redis-host"),
			RedisApp: c.String("redis-app"),
			Timeout:  c.Duration("timeout"),
		},
	}
	var err error
	if cfg.Key, err = cmdline.SecretOf(c, "redis-api-key"); err != nil {
		return cfg, err
	}
	if cfg.Key == "" {
		return cfg, fmt.Errorf("no API key: give it with --redis-api-key-file or $%s", cmdline.Env("redis-api-key"))
	}
	if cfg.ControllerKey, err = cmdline.SecretOf(c, "controller-key"); err != nil {
		return cfg, err
	}
	if cfg.ControllerKey == "" {
		return cfg, fmt.Errorf("no controller key: give it with --controller-key-file or $%s", cmdline.Env("controller-key"))
	}
	if cfg.ControllerURL == "" {
		return cfg, errors.New("--controller-url is empty")
	}
	if cfg.Provider.Host == "" {
		domain := c.String("domain")
		if domain == "" {
			return cfg, fmt.Errorf("the cluster's domain is required: --domain or $%s", cmdline.Env("domain"))
		}
		cfg.Provider.Host = "redis." + domain
	}
	if cfg.DiscoverdURL == "" {
		ip := c.String("external-ip")
		if ip == "" {
			ip = "127.0.0.1"
		}
		cfg.DiscoverdURL = discoverd.NodeURL(ip)
	}
	if cfg.Provider.Timeout <= 0 {
		return cfg, errors.New("--timeout must be more than 0")
	}
	return cfg, nil
}

// Package provider is the flynn-redis-api binary: the resource provider of
// the Redis appliance (see package redis), which the controller calls when
// someone runs `flynn resource add redis`.
//
//	controller ──POST /clusters──> provider ──controller API──> app redis-<id>: release, route, formation
//	           <──{id, env}──────                                 └─ scheduler runs one "redis" job
//	controller ──DELETE /clusters/<id>──> provider ──> delete app redis-<id> (its route and job)
//
// Each Redis server is an app of its own, made with the controller key, so
// that it is deployed, restarted and routed like any other app and `flynn
// -a redis-<id> ps`/`log` show it. It is a system app: people's API keys
// can read it (its password hidden) but not change or delete it.
//
// # Backups
//
// A cluster backup holds each Redis server's data, which the controller
// fetches from the provider and gives back on restore:
//
//	backup:  controller ──GET /clusters/<id>/backup──> provider ──SCAN, PTTL, DUMP──> redis-<id>
//	restore: controller ──PUT /clusters/<id> {env}──> provider (the app, as provisioning makes it)
//	         controller ──POST /clusters/<id>/restore (the dump)──> provider ──RESTORE──> redis-<id>
//
// The provider reaches a server through discoverd (its service is its app,
// redis-<id>) with the password of the app's current release.
//
// A dump is a stream of RESP2 arrays of bulk strings (see package resp),
// each a command that a restore replays:
//
//	SELECT <db>                                    before each database's keys, db 0 to 15
//	RESTORE <key> <ttl> <payload> REPLACE          one per key
//
// where <ttl> is the key's remaining time to live in milliseconds (0: it
// has none) and <payload> is what DUMP answered: Redis's own serialization
// of the value, with its RDB version and a checksum, which RESTORE checks.
// A dump is made with SCAN (COUNT 1000) of each database INFO keyspace
// lists, then PTTL and DUMP of each key, pipelined; a key that is gone
// between SCAN and DUMP is left out. It is no snapshot: keys written while
// it is made may or may not be in it. A restore accepts those two commands
// alone, so that a dump cannot flush or reconfigure the server it is
// loaded into.
package provider

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"regexp"
	"strconv"
	"time"

	"github.com/openflynn/flynn/appliance/redis"
	"github.com/openflynn/flynn/controller"
	"github.com/openflynn/flynn/pkg/httpjson"
	"github.com/openflynn/flynn/pkg/random"
)

// Controller is what the provider needs of the controller's API;
// *controller/client.Client has it.
type Controller interface {
	App(ctx context.Context, idOrName string) (*controller.App, error)
	AppRelease(ctx context.Context, app string) (*controller.Release, error)
	CreateApp(ctx context.Context, app *controller.App) error
	CreateRelease(ctx context.Context, rel *controller.Release) error
	SetAppRelease(ctx context.Context, app, releaseID string) (*controller.App, error)
	CreateRoute(ctx context.Context, app string, route *controller.Route) error
	PutFormation(ctx context.Context, f *controller.Formation) error
	DeleteApp(ctx context.Context, idOrName string) (*controller.App, error)
}

// Dialer connects to Redis servers; *discoverd/client.Dialer and
// *net.Dialer are ones.
type Dialer interface {
	DialContext(ctx context.Context, network, addr string) (net.Conn, error)
}

// Errors of the provider, which the HTTP API maps to statuses in one place
// (see apiError).
var (
	// ErrNotFound is a resource id the provider has no Redis app for.
	ErrNotFound = errors.New("no such redis resource")
	// ErrNoImage is a cluster whose redis app (Options.RedisApp) has no
	// release to take the server image from.
	ErrNoImage = errors.New("no redis server image")
	// ErrController wraps what the controller answered or why it could
	// not be reached.
	ErrController = errors.New("controller")
	// ErrConflict is a request at odds with what exists: a server to
	// re-create whose app exists with another password or is not the
	// provider's, a router port taken, a key a restore may not replace.
	ErrConflict = errors.New("conflict")
	// ErrBadDump is a restore's dump that is not one (see the package
	// doc), or that the server refused a command of.
	ErrBadDump = errors.New("bad dump")
	// ErrServer wraps why a Redis server could not be reached or failed
	// in the middle of a backup or a restore.
	ErrServer = errors.New("redis server")
)

// Options configure a Provider.
type Options struct {
	// Host is the name apps reach the router by, in REDIS_URL:
	// redis.<cluster domain>. Required.
	Host string
	// RedisApp is the app whose current release's artifact (the "redis"
	// image) every server runs; default "redis", which bootstrap creates
	// with no process running. Taking it from there at each provisioning
	// picks up the image a cluster update deployed.
	RedisApp string
	// Timeout bounds one provisioning or removal, every controller call
	// included; default 25s, inside the 30s the controller waits for a
	// provider.
	Timeout time.Duration
	// Dialer connects to a Redis server for a backup or a restore, at
	// "redis-<id>.discoverd:6379": the flynn-redis-api binary passes a
	// discoverd client's Dialer, which finds the job of the server's
	// service (the provider runs with host networking, so it reaches the
	// job's address). Default: a net.Dialer, which reaches such a name
	// only where discoverd's DNS answers it.
	Dialer Dialer
	// RestoreWait bounds the wait of a restore for its server to answer
	// (a server just made or re-created is still being scheduled);
	// default 2 minutes.
	RestoreWait time.Duration
	// Logger defaults to discarding.
	Logger *slog.Logger

	// retryInterval is how often a restore asks a server that does not
	// answer yet; default 1s. Tests shorten it.
	retryInterval time.Duration
}

// Provider provisions Redis servers as apps of the controller.
type Provider struct {
	ctrl Controller
	opts Options
}

// New returns a provider that makes its apps through ctrl, which must
// carry the controller key (system apps need it).
func New(ctrl Controller, opts Options) *Provider {
	if opts.RedisApp == "" {
		opts.RedisApp = "redis"
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 25 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Dialer == nil {
		opts.Dialer = &net.Dialer{Timeout: 10 * time.Second}
	}
	if opts.RestoreWait <= 0 {
		opts.RestoreWait = 2 * time.Minute
	}
	if opts.retryInterval <= 0 {
		opts.retryInterval = time.Second
	}
	return &Provider{ctrl: ctrl, opts: opts}
}

// idBytes is the size of a resource id's randomness: 16 hex digits, so
// that "redis-<id>" is a valid app name (30 characters at most).
const idBytes = 8

// passwordBytes is the randomness of a server's password: 256 bits.
const passwordBytes = 32

var idPattern = regexp.MustCompile(`^[0-9a-f]{16}$`)

// Provision makes a Redis server: an app "redis-<id>" with a release of
// the server image, its password and a volume, a TCP route to it, and a
// formation of one job. It returns the resource id and the env an app
// reaches the server with. What it made is removed again when a step
// fails, or when ctx ends before it is done (the controller has given up
// and will never hold the resource).
func (p *Provider) Provision(ctx context.Context) (*controller.ProvisionedResource, error) {
	ctx, cancel := context.WithTimeout(ctx, p.opts.Timeout)
	defer cancel()
	return p.create(ctx, random.Hex(idBytes), random.Hex(passwordBytes), 0)
}

// create makes Redis server id with password and a TCP route on port (0:
// one the controller chooses), as Provision says.
func (p *Provider) create(ctx context.Context, id, password string, port int) (res *controller.ProvisionedResource, err error) {
	src, err := p.ctrl.AppRelease(ctx, p.opts.RedisApp)
	switch {
	case httpjson.IsNotFound(err):
		return nil, fmt.Errorf("%w: app %s has no release (bootstrap makes it, with the redis image)", ErrNoImage, p.opts.RedisApp)
	case err != nil:
		return nil, fmt.Errorf("%w: read the release of app %s: %w", ErrController, p.opts.RedisApp, err)
	case src.ArtifactID == "":
		return nil, fmt.Errorf("%w: the release of app %s has no artifact", ErrNoImage, p.opts.RedisApp)
	}

	log := p.opts.Logger.With("resource.id", id)
	app := &controller.App{Name: redis.AppName(id), System: true, Meta: map[string]string{redis.MetaResource: redis.ResourceKind}}
	if err := p.ctrl.CreateApp(ctx, app); err != nil {
		return nil, fmt.Errorf("%w: create app %s: %w", ErrController, app.Name, err)
	}
	defer func() {
		if err == nil {
			err = ctx.Err()
		}
		if err != nil {
			p.remove(context.WithoutCancel(ctx), app, log)
			res = nil
		}
	}()
	rel := Release(id, src.ArtifactID, password)
	rel.AppID = app.ID
	if err := p.ctrl.CreateRelease(ctx, rel); err != nil {
		return nil, fmt.Errorf("%w: create release of %s: %w", ErrController, app.Name, err)
	}
	if _, err := p.ctrl.SetAppRelease(ctx, app.ID, rel.ID); err != nil {
		return nil, fmt.Errorf("%w: set release of %s: %w", ErrController, app.Name, err)
	}
	route := &controller.Route{Type: controller.RouteTypeTCP, Service: redis.AppName(id), Port: port}
	if err := p.ctrl.CreateRoute(ctx, app.ID, route); err != nil {
		if port != 0 && (httpjson.IsCode(err, httpjson.CodeConflict) || httpjson.IsCode(err, httpjson.CodeObjectExists)) {
			return nil, fmt.Errorf("%w: router port %d: %w", ErrConflict, port, err)
		}
		return nil, fmt.Errorf("%w: create route of %s: %w", ErrController, app.Name, err)
	}
	f := &controller.Formation{AppID: app.ID, ReleaseID: rel.ID, Processes: map[string]int{redis.ProcessType: 1}}
	if err := p.ctrl.PutFormation(ctx, f); err != nil {
		return nil, fmt.Errorf("%w: scale %s: %w", ErrController, app.Name, err)
	}
	log.Info("redis provisioned", "app", app.Name, "route.port", route.Port)
	return &controller.ProvisionedResource{ID: id, Env: Env(p.opts.Host, route.Port, password)}, nil
}

// remove deletes the app of a provisioning that failed, logging what it
// cannot do: the app is then left for an operator (flynn --system -a
// redis-<id> delete).
func (p *Provider) remove(ctx context.Context, app *controller.App, log *slog.Logger) {
	ctx, cancel := context.WithTimeout(ctx, p.opts.Timeout)
	defer cancel()
	if _, err := p.ctrl.DeleteApp(ctx, app.ID); err != nil && !httpjson.IsNotFound(err) {
		log.Error("remove the app of a failed provisioning", "app", app.Name, "err", err)
		return
	}
	log.Info("removed the app of a failed provisioning", "app", app.Name)
}

// Deprovision removes Redis server id: its app, with the app's route,
// formation and job. The data stays in the volume on the host that ran
// the job. It returns ErrNotFound when there is no such server, or the
// app of that name is not one the provider made.
func (p *Provider) Deprovision(ctx context.Context, id string) error {
	ctx, cancel := context.WithTimeout(ctx, p.opts.Timeout)
	defer cancel()
	app, err := p.app(ctx, id)
	if err != nil {
		return err
	}
	name := app.Name
	if _, err := p.ctrl.DeleteApp(ctx, app.ID); err != nil {
		if httpjson.IsNotFound(err) {
			return ErrNotFound
		}
		return fmt.Errorf("%w: delete app %s: %w", ErrController, name, err)
	}
	p.opts.Logger.Info("redis deprovisioned", "resource.id", id, "app", name)
	return nil
}

// Release is the release of Redis server id (its app is left for the
// caller to set): the server image's artifact, the password in the env
// the server reads it from, and one process type whose job registers its
// port as the app's discoverd service and keeps its data in a volume of
// its own.
func Release(id, artifactID, password string) *controller.Release {
	return &controller.Release{
		ArtifactID: artifactID,
		Env:        map[string]string{redis.EnvPassword: password},
		Processes: map[string]controller.ProcessType{
			redis.ProcessType: {
				Ports:   []controller.Port{{Proto: "tcp"}},
				Service: redis.AppName(id),
				Volumes: []controller.Volume{{Name: redis.VolumeName(id), Target: redis.DataDir}},
			},
		},
	}
}

// Env is what an app reaches a Redis server with: REDIS_URL, and its
// parts for clients that take them apart.
func Env(host string, port int, password string) map[string]string {
	u := url.URL{Scheme: "redis", User: url.UserPassword("", password), Host: net.JoinHostPort(host, strconv.Itoa(port))}
	return map[string]string{
		redis.EnvURL:      u.String(),
		redis.EnvHost:     host,
		redis.EnvPort:     strconv.Itoa(port),
		redis.EnvPassword: password,
	}
}

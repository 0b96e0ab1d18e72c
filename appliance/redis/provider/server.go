package provider

import (
	"context"
	"errors"
	"fmt"
	"net"

	"github.com/openflynn/flynn/appliance/redis"
	"github.com/openflynn/flynn/appliance/redis/resp"
	"github.com/openflynn/flynn/controller"
	discoverdclient "github.com/openflynn/flynn/discoverd/client"
	"github.com/openflynn/flynn/pkg/httpjson"
)

// serverPort is the port in the address given to Options.Dialer. discoverd's
// Dialer ignores it (instances carry their own port); it is Redis's, for a
// DNS-based dialer that needs one.
const serverPort = "6379"

// app returns the app of Redis server id. It returns ErrNotFound for an
// id the provider cannot have made or an app that is not the provider's.
func (p *Provider) app(ctx context.Context, id string) (*controller.App, error) {
	if !idPattern.MatchString(id) {
		return nil, ErrNotFound
	}
	name := redis.AppName(id)
	app, err := p.ctrl.App(ctx, name)
	switch {
	case httpjson.IsNotFound(err):
		return nil, ErrNotFound
	case err != nil:
		return nil, fmt.Errorf("%w: read app %s: %w", ErrController, name, err)
	case app.Meta[redis.MetaResource] != redis.ResourceKind:
		// Someone else's app that happens to have the name.
		return nil, ErrNotFound
	}
	return app, nil
}

// lookup returns the password of Redis server id, from its app's current
// release; ErrNotFound as app says.
func (p *Provider) lookup(ctx context.Context, id string) (password string, err error) {
	ctx, cancel := context.WithTimeout(ctx, p.opts.Timeout)
	defer cancel()
	app, err := p.app(ctx, id)
	if err != nil {
		return "", err
	}
	name := app.Name
	rel, err := p.ctrl.AppRelease(ctx, app.ID)
	switch {
	case httpjson.IsNotFound(err):
		return "", fmt.Errorf("%w: app %s has no release", ErrNotFound, name)
	case err != nil:
		return "", fmt.Errorf("%w: read the release of %s: %w", ErrController, name, err)
	case rel.Env[redis.EnvPassword] == "":
		return "", fmt.Errorf("%w: the release of %s has no %s", ErrController, name, redis.EnvPassword)
	}
	return rel.Env[redis.EnvPassword], nil
}

// connect dials Redis server id through Options.Dialer and authenticates.
func (p *Provider) connect(ctx context.Context, id, password string) (*resp.Conn, error) {
	addr := net.JoinHostPort(redis.AppName(id)+"."+discoverdclient.Domain, serverPort)
	nc, err := p.opts.Dialer.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrServer, err)
	}
	c := resp.NewConn(nc)
	if _, err := c.Do(ctx, "AUTH", password); err != nil {
		c.Close()
		return nil, fmt.Errorf("%w: AUTH: %w", ErrServer, err)
	}
	return c, nil
}

// replyError reports whether err is an error reply of the server's, after
// which the connection stays in step.
func replyError(err error) (resp.Error, bool) {
	var e resp.Error
	ok := errors.As(err, &e)
	return e, ok
}

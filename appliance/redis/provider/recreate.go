package provider

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/openflynn/flynn/appliance/redis"
	"github.com/openflynn/flynn/controller"
	"github.com/openflynn/flynn/pkg/httpjson"
)

// maxPassword bounds a re-created server's password; the provider makes
// them of 64 hex digits.
const maxPassword = 256

// RecreateRequest is the body of PUT /clusters/{id}, as the controller
// sends it for every resource a restore brings back: the resource's env,
// whose REDIS_PASSWORD and REDIS_PORT (the router's TCP port) name the
// server to make again.
type RecreateRequest struct {
	Env map[string]string `json:"env"`
}

// Recreate makes Redis server id again, as Provision makes one but with
// the id, password and router port of a resource a cluster backup holds,
// so that the env the restored controller gives apps reaches it. Its data
// is then loaded with Restore. When the app redis-<id> exists and is the
// provider's (a restore that is tried again, say: a restore does not
// bring system apps back) it changes nothing and answers as if it had
// made it; an app
// of that name that is not the provider's, or whose release has another
// password, is ErrConflict, as is a port another route has. A bad id,
// password or port is an *httpjson.Error validation error.
func (p *Provider) Recreate(ctx context.Context, id string, req *RecreateRequest) (*controller.ProvisionedResource, error) {
	password := req.Env[redis.EnvPassword]
	port, perr := strconv.Atoi(req.Env[redis.EnvPort])
	switch {
	case !idPattern.MatchString(id):
		return nil, httpjson.ValidationError("id", "%q is not a resource id of the provider's (16 hex digits)", id)
	case password == "" || len(password) > maxPassword:
		return nil, httpjson.ValidationError("env."+redis.EnvPassword, "must be 1 to %d characters", maxPassword)
	case !printable(password):
		return nil, httpjson.ValidationError("env."+redis.EnvPassword, "must be printable ASCII without spaces")
	case perr != nil || port < controller.TCPRoutePortMin || port > controller.TCPRoutePortMax:
		return nil, httpjson.ValidationError("env."+redis.EnvPort, "must be a router port of apps, %d to %d", controller.TCPRoutePortMin, controller.TCPRoutePortMax)
	}
	ctx, cancel := context.WithTimeout(ctx, p.opts.Timeout)
	defer cancel()
	res := &controller.ProvisionedResource{ID: id, Env: Env(p.opts.Host, port, password)}
	existing, err := p.lookup(ctx, id)
	switch {
	case err == nil && existing != password:
		return nil, fmt.Errorf("%w: app %s exists with another password", ErrConflict, redis.AppName(id))
	case err == nil:
		return res, nil
	case !errors.Is(err, ErrNotFound):
		return nil, err
	}
	// lookup says ErrNotFound of an app that exists but is not the
	// provider's as well; CreateApp tells them apart.
	created, err := p.create(ctx, id, password, port)
	if httpjson.IsCode(err, httpjson.CodeObjectExists) || httpjson.IsCode(err, httpjson.CodeConflict) {
		return nil, fmt.Errorf("%w: %w", ErrConflict, err)
	}
	return created, err
}

// printable reports whether s is printable ASCII without spaces, so that
// it stands in REDIS_URL, redis.conf and logs' quoting without surprise.
func printable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] > '~' {
			return false
		}
	}
	return true
}

package redisd

import (
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/openflynn/flynn/appliance/redis"
	"github.com/openflynn/flynn/pkg/cmdline"
)

// Daemon is the flynn-redis binary.
func Daemon() cmdline.Daemon[Config] {
	return cmdline.Daemon[Config]{
		Name:  "flynn-redis",
		Usage: "a Redis server job of the Redis appliance: redis-server with Flynn's configuration",
		Description: `Writes a redis.conf (mode 0600, in a temporary directory) that sets the
password from $REDIS_PASSWORD (or --password-file), port $PORT, the data
directory --data-dir with an append-only file, and runs redis-server with
it. SIGTERM is passed on to redis-server, which saves its data and exits;
flynn-redis exits as redis-server did.`,
		Flags: []cli.Flag{
			cmdline.Int("port", 6379, "port Redis listens on (default in a job: $PORT)"),
			cmdline.String("data-dir", redis.DataDir, "directory of Redis's data: the job's volume"),
			cmdline.String("redis-server", "redis-server", "the redis-server program"),
			// The password is the appliance's REDIS_PASSWORD rather than a
			// FLYNN_ variable: the provider sets it in the server's release
			// under the name apps see it by.
			&cli.StringFlag{Name: "password-file", Usage: "file holding the password clients must give (or its value in $" + redis.EnvPassword + ")", EnvVars: []string{cmdline.Env("password-file")}},
			&cli.StringFlag{Name: "password", Hidden: true, EnvVars: []string{redis.EnvPassword}},
		},
		Config: func(c *cli.Context, _ *slog.Logger) (Config, error) {
			cfg := Config{
				Port:        c.Int("port"),
				DataDir:     c.String("data-dir"),
				RedisServer: c.String("redis-server"),
				Env:         childEnv(os.Environ()),
			}
			if port := os.Getenv("PORT"); port != "" && !c.IsSet("port") {
				p, err := strconv.Atoi(port)
				if err != nil {
					return cfg, fmt.Errorf("$PORT %q is not a port", port)
				}
				cfg.Port = p
			}
			var err error
			if cfg.Password, err = cmdline.SecretOf(c, "password"); err != nil {
				return cfg, err
			}
			if cfg.Password == "" {
				return cfg, fmt.Errorf("no password: set $%s or --password-file", redis.EnvPassword)
			}
			return cfg, cfg.check()
		},
		Run: Run,
	}
}

// childEnv is env without the password: redis-server reads it from its
// configuration file and has no use for it in its environment.
func childEnv(env []string) []string {
	out := make([]string, 0, len(env))
	for _, kv := range env {
		if !strings.HasPrefix(kv, redis.EnvPassword+"=") {
			out = append(out, kv)
		}
	}
	return out
}

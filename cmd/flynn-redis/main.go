// Command flynn-redis is the entrypoint of the Redis appliance's server
// jobs: redis-server with Flynn's configuration; see
// appliance/redis/redisd.
package main

import (
	"github.com/openflynn/flynn/appliance/redis/redisd"
	"github.com/openflynn/flynn/pkg/cmdline"
)

func main() { cmdline.Main(redisd.Daemon()) }

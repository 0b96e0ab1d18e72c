// Command flynn-redis-api is the Redis appliance's resource provider, which
// makes and removes Redis servers for `flynn resource add redis`; see
// appliance/redis/provider.
package main

import (
	"github.com/openflynn/flynn/appliance/redis/provider"
	"github.com/openflynn/flynn/pkg/cmdline"
)

func main() { cmdline.Main(provider.Daemon()) }

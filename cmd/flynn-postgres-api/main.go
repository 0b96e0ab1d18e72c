// Command flynn-postgres-api is the resource provider that gives apps
// Postgres databases of their own on the appliance; see
// appliance/postgres/provider.
package main

import (
	"github.com/openflynn/flynn/appliance/postgres/provider"
	"github.com/openflynn/flynn/pkg/cmdline"
)

func main() { cmdline.Main(provider.Daemon()) }

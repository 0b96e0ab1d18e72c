// Command flynn-postgres is one instance of Flynn's highly available
// Postgres appliance: Patroni, supervised; see appliance/postgres/patroni.
package main

import (
	"github.com/openflynn/flynn/appliance/postgres/patroni"
	"github.com/openflynn/flynn/pkg/cmdline"
)

func main() { cmdline.Main(patroni.Daemon()) }

// Command flynn-controller serves the controller API over Postgres; see
// controller/controllerd for its flags.
package main

import (
	"github.com/openflynn/flynn/controller/controllerd"
	"github.com/openflynn/flynn/pkg/cmdline"
)

func main() { cmdline.Main(controllerd.Daemon()) }

// Command flynn-host is the layer-0 node daemon (`flynn-host daemon`, see
// host/server) and the operator's tool to look at and drive the jobs of
// one host (see cli/hostcli).
package main

import (
	"os"

	"github.com/openflynn/flynn/cli/hostcli"
	"github.com/openflynn/flynn/host/server"
)

func main() { os.Exit(hostcli.Main(server.Daemon().Command("daemon"))) }

// Command flynn-host is the layer-0 node daemon (`flynn-host daemon`) and
// the operator's tool to look at and drive the jobs of one host; those
// commands live in package cli/hostcli, which runs this one beside them.
package main

import (
	"os"

	"github.com/openflynn/flynn/cli/hostcli"
)

func main() {
	os.Exit(hostcli.Main(daemonCommand()))
}

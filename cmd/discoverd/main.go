// Command discoverd is Flynn's service discovery daemon: an HTTP API and DNS
// over etcd (embedded single-node by default); see discoverd/server.
package main

import (
	"github.com/openflynn/flynn/discoverd/server"
	"github.com/openflynn/flynn/pkg/cmdline"
)

func main() { cmdline.Main(server.Daemon()) }

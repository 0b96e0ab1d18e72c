// Command flynn-router is Flynn's HTTP(S) and TCP router; see
// router/routerd for its flags and router/server for the proxy.
package main

import (
	"github.com/openflynn/flynn/pkg/cmdline"
	"github.com/openflynn/flynn/router/routerd"
)

func main() { cmdline.Main(routerd.Daemon()) }

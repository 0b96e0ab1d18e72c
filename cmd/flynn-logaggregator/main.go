// Command flynn-logaggregator keeps every app's recent output for flynn
// log; see package logaggregator for the API and logaggregator/server for
// its flags.
package main

import (
	"github.com/openflynn/flynn/logaggregator/server"
	"github.com/openflynn/flynn/pkg/cmdline"
)

func main() { cmdline.Main(server.Daemon()) }

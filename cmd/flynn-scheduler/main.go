// Command flynn-scheduler runs the scheduler; see
// controller/scheduler/schedulerd for its flags.
package main

import (
	"github.com/openflynn/flynn/controller/scheduler/schedulerd"
	"github.com/openflynn/flynn/pkg/cmdline"
)

func main() { cmdline.Main(schedulerd.Daemon()) }

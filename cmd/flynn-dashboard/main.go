// Command flynn-dashboard serves Flynn's web dashboard; see package
// dashboard, and dashboard/dashboardd for its flags.
package main

import (
	"github.com/openflynn/flynn/dashboard/dashboardd"
	"github.com/openflynn/flynn/pkg/cmdline"
)

func main() { cmdline.Main(dashboardd.Daemon()) }

// Command gitreceive is Flynn's git server: `git push` over SSH builds and
// deploys apps; see package gitreceive, whose Daemon has its flags.
package main

import (
	"github.com/openflynn/flynn/gitreceive"
	"github.com/openflynn/flynn/pkg/cmdline"
)

func main() { cmdline.Main(gitreceive.Daemon()) }

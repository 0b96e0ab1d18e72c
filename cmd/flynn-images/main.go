// Command flynn-images builds every image the cluster runs (`make images`)
// and writes the manifest bootstrap reads (default bin/images.json); see
// images.Command for its flags.
package main

import (
	"github.com/openflynn/flynn/images"
	"github.com/openflynn/flynn/pkg/cmdline"
)

func main() { cmdline.Main(images.Command()) }

// Command printversion prints version.String(), for version_test's check
// of the linker flag the Makefile uses.
package main

import (
	"fmt"

	"github.com/openflynn/flynn/pkg/version"
)

func main() { fmt.Println(version.String()) }

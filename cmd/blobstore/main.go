// Command blobstore serves Flynn's blob storage (slugs, build caches) over
// HTTP; see package blobstore for the API and blobstore/server for its
// flags.
package main

import (
	"github.com/openflynn/flynn/blobstore/server"
	"github.com/openflynn/flynn/pkg/cmdline"
)

func main() { cmdline.Main(server.Daemon()) }

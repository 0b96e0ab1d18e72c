package client_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net/http/httptest"
	"os"
	"strings"

	"github.com/openflynn/flynn/blobstore/client"
	"github.com/openflynn/flynn/blobstore/fs"
	"github.com/openflynn/flynn/blobstore/server"
)

// Store a blob, then fetch it back.
func Example() {
	url, stop := exampleBlobstore()
	defer stop()
	ctx := context.Background()
	c := client.New(url, "cluster-key")

	info, err := c.Put(ctx, "apps/web/slug.tgz", strings.NewReader("a slug's bytes"))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("stored", info.Path, info.Size, "bytes")

	body, _, err := c.Get(ctx, "apps/web/slug.tgz")
	if err != nil {
		log.Fatal(err)
	}
	defer body.Close()
	data, err := io.ReadAll(body)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("fetched %q\n", data)
	// Output:
	// stored apps/web/slug.tgz 14 bytes
	// fetched "a slug's bytes"
}

// exampleBlobstore serves a blobstore on the filesystem backend in a
// temporary directory; stop removes it all.
func exampleBlobstore() (url string, stop func()) {
	dir, err := os.MkdirTemp("", "blobstore-example-")
	if err != nil {
		log.Fatal(err)
	}
	backend, err := fs.New(dir)
	if err != nil {
		log.Fatal(err)
	}
	srv := httptest.NewServer(server.NewHandler(backend, server.Options{AuthKey: "cluster-key"}, slog.New(slog.DiscardHandler)))
	return srv.URL, func() {
		srv.Close()
		os.RemoveAll(dir)
	}
}

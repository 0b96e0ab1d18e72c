package client_test

import (
	"context"
	"fmt"
	"log"
	"os"

	"github.com/openflynn/flynn/discoverd"
	"github.com/openflynn/flynn/discoverd/client"
	"github.com/openflynn/flynn/discoverd/discoverdtest"
)

// Register two instances of a service, list them, and watch the service
// as its leader leaves.
func Example() {
	url, stop := exampleDiscoverd()
	defer stop()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c := client.New(url, "")

	// Register heartbeats until Deregister or until ctx ends.
	first, err := c.Register(ctx, "web", &discoverd.Instance{Addr: "127.0.0.1:8080", Proto: "http"})
	if err != nil {
		log.Fatal(err)
	}
	list, err := c.Instances(ctx, "web")
	if err != nil {
		log.Fatal(err)
	}
	for _, inst := range list {
		fmt.Println("instance", inst.Addr)
	}

	// The stream starts with the instances up now, then "current"; then
	// it follows changes.
	events, err := c.Watch(ctx, "web")
	if err != nil {
		log.Fatal(err)
	}
	next := func() {
		e := <-events
		if e.Instance != nil {
			fmt.Println(e.Kind, e.Instance.Addr)
		} else {
			fmt.Println(e.Kind)
		}
	}
	next() // up
	next() // current
	next() // leader
	second, err := c.Register(ctx, "web", &discoverd.Instance{Addr: "127.0.0.1:8081", Proto: "http"})
	if err != nil {
		log.Fatal(err)
	}
	next() // up
	if err := first.Deregister(ctx); err != nil {
		log.Fatal(err)
	}
	next() // down
	next() // leader
	if err := second.Deregister(ctx); err != nil {
		log.Fatal(err)
	}
	// Output:
	// instance 127.0.0.1:8080
	// up 127.0.0.1:8080
	// current
	// leader 127.0.0.1:8080
	// up 127.0.0.1:8081
	// down 127.0.0.1:8080
	// leader 127.0.0.1:8081
}

// exampleDiscoverd runs discoverd in-process on an embedded etcd in a
// temporary directory; stop ends it and removes the directory.
func exampleDiscoverd() (url string, stop func()) {
	dir, err := os.MkdirTemp("", "discoverd-example-")
	if err != nil {
		log.Fatal(err)
	}
	srv, err := discoverdtest.Start(discoverdtest.Options{DataDir: dir})
	if err != nil {
		log.Fatal(err)
	}
	return srv.URL, func() {
		srv.Stop()
		os.RemoveAll(dir)
	}
}

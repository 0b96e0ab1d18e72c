// Package staticconfig serves the router's routes and backends from a JSON
// file instead of the controller and discoverd: for running flynn-router on
// its own (benchmarks, a fixed front proxy). The file is read once.
//
//	{
//	  "routes":   [{"id": "web", "type": "http", "domain": "example.com", "service": "web"}],
//	  "services": {"web": ["127.0.0.1:8080", "127.0.0.1:8081"]}
//	}
package staticconfig

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"

	"github.com/openflynn/flynn/controller"
	"github.com/openflynn/flynn/router"
)

// File is the configuration file's content.
type File struct {
	Routes []*controller.Route `json:"routes"`
	// Services maps a service name to its backends' "host:port" addresses.
	Services map[string][]string `json:"services"`
}

// Source is both a route source and a backend source over a File.
type Source struct {
	file File
}

// Load reads and checks a static configuration file.
func Load(path string) (*Source, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read static config: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var f File
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("parse static config %s: %w", path, err)
	}
	for i, r := range f.Routes {
		if r == nil || r.ID == "" {
			return nil, fmt.Errorf("static config %s: route %d has no id", path, i)
		}
	}
	return &Source{file: f}, nil
}

// Routes returns the file's routes.
func (s *Source) Routes(ctx context.Context) ([]*controller.Route, error) { return s.file.Routes, nil }

// WatchRoutes returns a stream without changes that closes when ctx ends.
func (s *Source) WatchRoutes(ctx context.Context) (<-chan router.RouteEvent, error) {
	ch := make(chan router.RouteEvent)
	context.AfterFunc(ctx, func() { close(ch) })
	return ch, nil
}

// WatchBackends sends the service's backends once; the channel closes when
// ctx ends.
func (s *Source) WatchBackends(ctx context.Context, service string) (<-chan []router.Backend, error) {
	var set []router.Backend
	for _, addr := range s.file.Services[service] {
		set = append(set, router.Backend{ID: addr, Addr: addr})
	}
	ch := make(chan []router.Backend, 1)
	ch <- set
	context.AfterFunc(ctx, func() { close(ch) })
	return ch, nil
}

package staticconfig

import (
	"context"
	"os"
	"path/filepath"
	"testing"
)

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.json")
	os.WriteFile(good, []byte(`{"routes":[{"id":"web","type":"http","domain":"a.test","service":"web"}],"services":{"web":["127.0.0.1:1","127.0.0.1:2"]}}`), 0o600)
	s, err := Load(good)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	routes, _ := s.Routes(ctx)
	if len(routes) != 1 || routes[0].Domain != "a.test" {
		t.Errorf("routes = %+v", routes)
	}
	sets, _ := s.WatchBackends(ctx, "web")
	if set := <-sets; len(set) != 2 || set[1].Addr != "127.0.0.1:2" {
		t.Errorf("backends = %+v", set)
	}
	events, _ := s.WatchRoutes(ctx)
	cancel()
	if _, ok := <-events; ok {
		t.Error("route stream sent an event")
	}
	if _, ok := <-sets; ok {
		t.Error("backend stream still open after cancel")
	}

	for name, content := range map[string]string{
		"unknown field": `{"routez":[]}`,
		"no id":         `{"routes":[{"type":"http"}]}`,
		"not json":      `routes:`,
	} {
		p := filepath.Join(dir, "bad.json")
		os.WriteFile(p, []byte(content), 0o600)
		if _, err := Load(p); err == nil {
			t.Errorf("%s: Load succeeded", name)
		}
	}
}

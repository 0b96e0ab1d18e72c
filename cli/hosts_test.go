package cli

import (
	"encoding/json"
	"testing"

	"github.com/openflynn/flynn/controller"
)

func TestHosts(t *testing.T) {
	h := newHarness(t)
	h.runner.mu.Lock()
	h.runner.hosts = []*controller.Host{
		{ID: "node1", Addr: "10.0.0.1", Status: controller.HostUp, Jobs: 3},
		{ID: "node2", Addr: "10.0.0.2", Status: controller.HostUnreachable, Error: "i/o timeout"},
	}
	h.runner.mu.Unlock()

	want := "ID     ADDRESS   STATUS       JOBS\n" +
		"node1  10.0.0.1  up           3\n" +
		"node2  10.0.0.2  unreachable  -\n"
	if got := h.ok("hosts"); got != want {
		t.Errorf("flynn hosts:\n%s\nwant:\n%s", got, want)
	}
	var hosts []*controller.Host
	if err := json.Unmarshal([]byte(h.ok("hosts", "--json")), &hosts); err != nil || len(hosts) != 2 || hosts[1].Error != "i/o timeout" {
		t.Errorf("flynn hosts --json: %+v, %v; want both hosts, with the unreachable one's error", hosts, err)
	}
}

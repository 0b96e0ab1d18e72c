package hostjob

import (
	"slices"
	"testing"

	"github.com/openflynn/flynn/controller"
	"github.com/openflynn/flynn/host"
)

// TestTargetPortPassedOn: a port's target (an image's own port) reaches
// the host job, whose first port is registered in the type's service.
func TestTargetPortPassedOn(t *testing.T) {
	rel := &controller.Release{ID: "r1", AppID: "a1", Processes: map[string]controller.ProcessType{
		"web": {Ports: []controller.Port{{Target: 6379, Proto: "tcp"}}, Service: "redis-web"},
	}}
	j := ForProcess("h1", "redis", rel, &controller.Artifact{URI: "http://blobstore.discoverd/apps/a1/images/x.tar"}, "web")
	want := []host.Port{{Target: 6379, Proto: "tcp", Service: "redis-web"}}
	if !slices.Equal(j.Config.Ports, want) {
		t.Fatalf("ports = %+v, want %+v", j.Config.Ports, want)
	}
}

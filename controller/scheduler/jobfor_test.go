package scheduler

import (
	"strings"
	"testing"

	"github.com/openflynn/flynn/controller"
	"github.com/openflynn/flynn/host"
)

func TestJobFor(t *testing.T) {
	rel := &controller.Release{
		ID: "r1", AppID: "a1", Version: 3, Env: map[string]string{"A": "release", "B": "release"},
		Processes: map[string]controller.ProcessType{
			"web": {Cmd: []string{"start", "web"}, Env: map[string]string{"B": "type"}},
			"db": {
				Cmd: []string{"postgres"}, Ports: []controller.Port{{Port: 1115, Proto: "tcp"}, {Proto: "http"}}, Service: "pg",
				Volumes:    []controller.Volume{{Name: "pg-data", Target: "/data"}},
				Resources:  &controller.Resources{Memory: 256 << 20, CPU: 500, MaxProcs: 100},
				Persistent: true,
			},
		},
	}
	art := &controller.Artifact{URI: "flynn/slugrunner:abc"}

	web := JobFor("h1", "example", rel, art, "web")
	if !strings.HasPrefix(web.ID, "h1-") || web.Artifact != art.URI || web.Config.Env["B"] != "type" || web.Config.Env["A"] != "release" {
		t.Errorf("web job = %+v", web)
	}
	if len(web.Config.Ports) != 1 || web.Config.Ports[0].Service != "example-web" || web.Config.Ports[0].Proto != "http" {
		t.Errorf("web ports = %+v, want one http port in example-web", web.Config.Ports)
	}
	if web.Metadata[controller.JobMetaType] != "web" || web.Metadata[controller.JobMetaReleaseID] != "r1" || web.Config.Env["FLYNN_JOB_ID"] != web.ID {
		t.Errorf("web metadata %v, env %v", web.Metadata, web.Config.Env)
	}
	if web.Config.Persistent || len(web.Config.Mounts) != 0 {
		t.Errorf("web job is persistent or has mounts: %+v", web.Config)
	}

	db := JobFor("h1", "example", rel, art, "db")
	wantPorts := []host.Port{{Port: 1115, Proto: "tcp", Service: "pg"}, {Proto: "http"}}
	if len(db.Config.Ports) != 2 || db.Config.Ports[0] != wantPorts[0] || db.Config.Ports[1] != wantPorts[1] {
		t.Errorf("db ports = %+v, want %+v", db.Config.Ports, wantPorts)
	}
	if len(db.Config.Mounts) != 1 || db.Config.Mounts[0] != (host.Mount{Type: host.MountVolume, Source: "pg-data", Target: "/data"}) {
		t.Errorf("db mounts = %+v, want the pg-data volume at /data", db.Config.Mounts)
	}
	if !db.Config.Persistent {
		t.Error("db job is not persistent")
	}
	if r := db.Config.Resources; r.Memory != 256<<20 || r.CPUShares != 512 || r.Pids != 100 {
		t.Errorf("db resources = %+v", r)
	}
	if err := db.Validate(); err != nil {
		t.Errorf("db job does not validate: %v", err)
	}
}

package bootstrap

import (
	"strings"
	"testing"
)

// TestManifestWiring checks what lets the platform span nodes and deploy
// one-by-one: no component but discoverd has a fixed port, every URL
// between components names a discoverd service, and each job learns where
// discoverd is from its host, not from the manifest.
func TestManifestWiring(t *testing.T) {
	m := readTestManifest(t)
	apps := 0
	for _, s := range m.Steps {
		var app AppSpec
		switch s.Action {
		case "run-app", "deploy-app", "scale-app":
			var a runApp
			if err := strictDecode(s.Raw, &a); err != nil {
				t.Fatalf("step %s: %v", s.ID, err)
			}
			app = a.AppSpec
		default:
			continue
		}
		if app.App.Name == "" {
			continue // run-app of an earlier scale-app step
		}
		apps++
		for k, v := range app.Release.Env {
			if k == "FLYNN_DISCOVERD_URL" {
				t.Errorf("%s: %s in the release; flynn-host gives every job its node's", app.App.Name, k)
			}
			if strings.Contains(v, "{{external_ip}}") {
				t.Errorf("%s: %s=%s names this node; name a discoverd service instead", app.App.Name, k, v)
			}
			if strings.HasSuffix(k, "_URL") && !strings.Contains(v, ".discoverd") && !strings.Contains(v, "{{domain}}") {
				t.Errorf("%s: %s=%s names no discoverd service", app.App.Name, k, v)
			}
		}
		for typ, pt := range app.Release.Processes {
			for _, p := range pt.Ports {
				if p.Port != 0 && app.App.Name != "discoverd" {
					t.Errorf("%s %s: fixed port %d; take one from the host's range", app.App.Name, typ, p.Port)
				}
			}
			for _, arg := range pt.Cmd {
				if strings.HasSuffix(arg, "-addr") {
					t.Errorf("%s %s: argument %s; the daemon's default follows its node", app.App.Name, typ, arg)
				}
			}
		}
	}
	if apps != 12 {
		t.Errorf("checked %d apps, want the 9 components and 3 appliance apps", apps)
	}
}

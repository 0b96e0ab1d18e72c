package server

import (
	"testing"

	"github.com/openflynn/flynn/controller"
	"github.com/openflynn/flynn/pkg/httpjson"
)

// TestReleasesNoHostRuns checks that a release the schema lets through but
// flynn-host would refuse for every job is refused when it is made, and
// so is an env patch that would make one.
func TestReleasesNoHostRuns(t *testing.T) {
	h := newHarness(t)
	ctx := t.Context()
	app := h.app(t, "runnable")
	art := h.artifact(t)
	tests := []struct {
		name string
		pt   controller.ProcessType
		env  map[string]string
	}{
		{"a check path that is no URL path", controller.ProcessType{Ports: []controller.Port{{Proto: "http", CheckPath: "/%zz"}}}, nil},
		{"a memory limit below the host's least", controller.ProcessType{Resources: &controller.Resources{Memory: 1 << 20}}, nil},
		{"the same fixed port twice", controller.ProcessType{Ports: []controller.Port{{Port: 8080, Proto: "tcp"}, {Port: 8080, Proto: "tcp"}}}, nil},
		{"a service discoverd refuses", controller.ProcessType{Ports: []controller.Port{{Proto: "tcp"}}, Service: "web-"}, nil},
		{"a NUL in an env value", controller.ProcessType{}, map[string]string{"A": "x\x00y"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rel := &controller.Release{AppID: app.ID, ArtifactID: art.ID, Env: tt.env, Processes: map[string]controller.ProcessType{"web": tt.pt}}
			err := h.client.CreateRelease(ctx, rel)
			wantCode(t, err, httpjson.CodeValidation, "")
		})
	}
	ok := h.release(t, app, nil)
	if _, err := h.client.SetAppRelease(ctx, app.ID, ok.ID); err != nil {
		t.Fatal(err)
	}
	_, err := h.client.PatchRelease(ctx, app.ID, controller.ReleasePatch{Env: &controller.EnvPatch{Set: map[string]string{"A": "x\x00y"}}})
	wantCode(t, err, httpjson.CodeValidation, "")
}

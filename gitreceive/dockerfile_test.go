package gitreceive

import (
	"encoding/json"
	"slices"
	"testing"

	"github.com/openflynn/flynn/controller"
)

// TestImageRelease: an image's process types come from its Procfile, but
// for the release type, which is the release phase; a Procfile with no
// other type, or none, leaves the image's command as web.
func TestImageRelease(t *testing.T) {
	art := &controller.Artifact{ID: "a1", Type: controller.ArtifactTypeDockerArchive, Meta: map[string]string{controller.ImageMetaExposedPorts: `["8080/tcp"]`}}
	web := controller.ProcessType{Ports: []controller.Port{{Proto: "http", Target: 8080}}, Service: "example-web"}
	shWeb := web
	shWeb.Cmd = []string{"/bin/sh", "-c", "./serve"}
	tests := []struct {
		name        string
		procfile    map[string]string
		want        map[string]controller.ProcessType
		releaseArgs []string
	}{
		{"no Procfile", nil, map[string]controller.ProcessType{"web": web}, nil},
		{"release alone", map[string]string{"release": "./migrate"}, map[string]controller.ProcessType{"web": web}, []string{"/bin/sh", "-c", "./migrate"}},
		{"web and worker", map[string]string{"web": "./serve", "worker": "./work"},
			map[string]controller.ProcessType{"web": shWeb, "worker": {Cmd: []string{"/bin/sh", "-c", "./work"}}}, nil},
		{"web and release", map[string]string{"web": "./serve", "release": "./migrate"}, map[string]controller.ProcessType{"web": shWeb}, []string{"/bin/sh", "-c", "./migrate"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pp := &pushPatch{}
			res := &buildResult{image: art, procfile: tt.procfile}
			got, err := imageRelease(pp, "example", res)
			if err != nil {
				t.Fatal(err)
			}
			g, _ := json.Marshal(got)
			w, _ := json.Marshal(tt.want)
			if string(g) != string(w) {
				t.Errorf("processes = %s, want %s", g, w)
			}
			if !slices.Equal(pp.releaseArgs, tt.releaseArgs) || pp.artifactID != "a1" || !pp.image || pp.slugURL != "" {
				t.Errorf("patch = %+v, want release args %q, artifact a1, an image", pp, tt.releaseArgs)
			}
			if _, ok := tt.procfile["release"]; ok && len(res.procfile) != len(tt.procfile) {
				t.Errorf("imageRelease changed the build's Procfile")
			}
		})
	}
}

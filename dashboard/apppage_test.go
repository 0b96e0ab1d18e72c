package dashboard

import (
	"testing"

	"github.com/openflynn/flynn/controller"
)

func TestDescribe(t *testing.T) {
	v1 := &controller.Release{Version: 1, ArtifactID: "a1", Env: map[string]string{"A": "1"}}
	for _, tc := range []struct {
		name      string
		rel, prev *controller.Release
		want      string
	}{
		{"first", v1, nil, "first release; env +A"},
		{"env changes", &controller.Release{Version: 2, ArtifactID: "a1", Env: map[string]string{"A": "2", "B": "1"}}, v1, "env ~A +B"},
		{"unset", &controller.Release{Version: 2, ArtifactID: "a1"}, v1, "env −A"},
		{"push", &controller.Release{Version: 2, ArtifactID: "a2", Env: map[string]string{"A": "1", "SLUG_URL": "u"}, Meta: map[string]string{"git": "true", "commit": "0123456789abcdef"}}, v1, "git push 0123456"},
		{"image", &controller.Release{Version: 2, ArtifactID: "a3", Env: map[string]string{"A": "1"}, Meta: map[string]string{"docker_image": "redis:7"}}, v1, "image redis:7"},
		{"new artifact", &controller.Release{Version: 2, ArtifactID: "a4", Env: map[string]string{"A": "1"}}, v1, "new artifact"},
		{"processes", &controller.Release{Version: 2, ArtifactID: "a1", Env: map[string]string{"A": "1"}, Processes: map[string]controller.ProcessType{"web": {}}}, v1, "process types changed"},
		{"nothing", &controller.Release{Version: 2, ArtifactID: "a1", Env: map[string]string{"A": "1"}}, v1, "same as v1"},
	} {
		if got := describe(tc.rel, tc.prev); got != tc.want {
			t.Errorf("%s: describe = %q, want %q", tc.name, got, tc.want)
		}
	}
}

func TestGitRemote(t *testing.T) {
	for host, want := range map[string]string{
		"dashboard.flynn.test":     "ssh://git@dashboard.flynn.test:2222/web.git",
		"dashboard.flynn.test:443": "ssh://git@dashboard.flynn.test:2222/web.git",
		"[::1]:443":                "ssh://git@[::1]:2222/web.git",
	} {
		if got := gitRemote(host, 2222, "web"); got != want {
			t.Errorf("gitRemote(%q) = %q, want %q", host, got, want)
		}
	}
}

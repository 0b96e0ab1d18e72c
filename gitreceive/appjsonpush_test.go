package gitreceive_test

import (
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/openflynn/flynn/gitreceive"
)

// postdeployJobs are the postdeploy script jobs run so far: their
// arguments.
func (h *harness) postdeployJobs() [][]string {
	var jobs [][]string
	for _, s := range h.runner.appJobs() {
		if s.Job.Meta[gitreceive.PushMetaPhase] == "postdeploy" {
			jobs = append(jobs, s.Job.Args)
		}
	}
	return jobs
}

const appJSON = `{
  "name": "example",
  "env": {
    "GREETING": "hello",
    "KEEP": {"value": "default"},
    "SECRET_KEY": {"description": "signs cookies", "generator": "secret"},
    "OPTIONAL": {"required": false},
    "API_TOKEN": {"description": "the API's token", "required": true}
  },
  "scripts": {"postdeploy": "echo \"seeded for $GREETING\""},
  "formation": {"web": {"quantity": 2}},
  "addons": ["heroku-postgresql"]
}
`

// TestAppJSON: on an app's first deploy, app.json's env gives the app the
// variables it lacks (values, generated secrets) before the build, and
// its postdeploy script runs once after the deploy; later pushes ignore
// the file.
func TestAppJSON(t *testing.T) {
	h := newHarness(t)
	app := h.createApp("example")
	ctx := t.Context()
	h.setEnv(app, map[string]string{"KEEP": "mine", "API_TOKEN": "t0k3n"})
	w := h.newWorkdir("example")
	w.commit("first", map[string]string{"Procfile": "web: ./web\n", "app.json": appJSON})
	out := w.pushOK(t, "main")
	expectLines(t, out,
		"remote: -----> app.json: using env and scripts.postdeploy; ignoring: addons, formation",
		"remote: =====> Application deployed",
		"remote: -----> Running postdeploy script (app.json)...",
		"remote: seeded for hello",
	)
	if strings.Index(out, "Running postdeploy") < strings.Index(out, "Application deployed") {
		t.Errorf("postdeploy ran before the deploy:\n%s", out)
	}
	rel, err := h.client.AppRelease(ctx, app.ID)
	if err != nil {
		t.Fatal(err)
	}
	env := rel.Env
	if env["GREETING"] != "hello" || env["KEEP"] != "mine" || env["API_TOKEN"] != "t0k3n" || !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(env["SECRET_KEY"]) {
		t.Fatalf("env after the first push = %v; want GREETING from app.json, KEEP and API_TOKEN kept, a generated SECRET_KEY", env)
	}
	if _, ok := env["OPTIONAL"]; ok {
		t.Errorf("OPTIONAL, with no value, was set: %v", env)
	}
	if build := h.runner.lastBuild(); build.Env["GREETING"] != "hello" || build.Env["SECRET_KEY"] != env["SECRET_KEY"] {
		t.Errorf("the build did not get app.json's env: %v", build.Env)
	}
	if jobs := h.postdeployJobs(); !slices.EqualFunc(jobs, [][]string{{`echo "seeded for $GREETING"`}}, slices.Equal) {
		t.Fatalf("postdeploy jobs = %q, want the script once, as one command line", jobs)
	}

	// Later pushes ignore app.json.
	w.commit("second", map[string]string{"app.json": strings.Replace(appJSON, `"hello"`, `"changed"`, 1)})
	out, _, err = w.push("main")
	if err != nil {
		t.Fatalf("second push: %v\n%s", err, out)
	}
	if strings.Contains(out, "app.json") || strings.Contains(out, "postdeploy") {
		t.Errorf("the second push used app.json:\n%s", out)
	}
	rel2, err := h.client.AppRelease(ctx, app.ID)
	if err != nil {
		t.Fatal(err)
	}
	if rel2.Env["GREETING"] != "hello" || rel2.Env["SECRET_KEY"] != env["SECRET_KEY"] {
		t.Errorf("the second push changed app.json's variables: %v", rel2.Env)
	}
	if n := len(h.postdeployJobs()); n != 1 {
		t.Errorf("postdeploy ran %d times, want once", n)
	}
}

// TestAppJSONRefused: a malformed app.json, or one that needs a variable
// the app lacks, fails the first push before its build.
func TestAppJSONRefused(t *testing.T) {
	h := newHarness(t)
	tests := []struct {
		name, appJSON string
		want          []string
	}{
		{
			name:    "required variable",
			appJSON: appJSON,
			want:    []string{"remote:  !     app.json needs API_TOKEN (the API's token); set it with `flynn env set API_TOKEN=…`"},
		},
		{
			name:    "malformed",
			appJSON: "{\n  \"env\": {\n    \"A\": \"1\",\n  }\n}\n",
			want:    []string{"remote:  !     app.json: line 4: invalid character '}' looking for beginning of object key string"},
		},
		{
			name:    "unknown generator",
			appJSON: `{"env": {"A": {"generator": "uuid"}}}`,
			want:    []string{`remote:  !     app.json: env.A: unknown generator "uuid" (the one generator is "secret")`},
		},
		{
			name:    "too large",
			appJSON: `{"description": "` + strings.Repeat("x", 1<<20) + `"}`,
			want:    []string{"remote:  !     app.json: larger than 1 MiB"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			name := strings.ReplaceAll(tt.name, " ", "-")
			h.createApp(name)
			w := h.newWorkdir(name)
			w.commit("first", map[string]string{"Procfile": "web: ./web\n", "app.json": tt.appJSON})
			builds, _, _, _, _ := h.runner.stats()
			out, _, err := w.push("main")
			if err == nil {
				t.Fatalf("push succeeded:\n%s", out)
			}
			expectLines(t, out, tt.want...)
			if now, _, _, _, _ := h.runner.stats(); now != builds || strings.Contains(out, "Building") {
				t.Errorf("the push built (%d jobs before, %d after):\n%s", builds, now, out)
			}
		})
	}
}

// TestPostdeployFailure: a failing postdeploy script fails the push with
// its output, but the deploy stays and no later push runs the script.
func TestPostdeployFailure(t *testing.T) {
	h := newHarness(t)
	app := h.createApp("example")
	w := h.newWorkdir("example")
	w.commit("first", map[string]string{"Procfile": "web: ./web\n", "app.json": `{"scripts": {"postdeploy": "echo 'no seed file' >&2; exit 4"}}`})
	out, _, err := w.push("main")
	if err == nil {
		t.Fatalf("push with a failing postdeploy succeeded:\n%s", out)
	}
	expectLines(t, out,
		"remote: =====> Application deployed",
		"remote: no seed file",
		"remote:  !     postdeploy script failed (exit status 4); v1 stays deployed and later pushes do not run the script again",
	)
	if rel, err := h.client.AppRelease(t.Context(), app.ID); err != nil || rel.Version != 1 || rel.ArtifactID == "" {
		t.Fatalf("release after the failed postdeploy = %+v, %v; want v1 deployed", rel, err)
	}
	out, _, err = w.push("main")
	if err != nil || strings.Contains(out, "postdeploy") {
		t.Fatalf("the next push: %v\n%s", err, out)
	}
}

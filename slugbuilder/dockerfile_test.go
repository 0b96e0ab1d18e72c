package slugbuilder

import (
	"bytes"
	"maps"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/openflynn/flynn/pkg/tartest"
)

// TestRunDockerfileFallback checks when a build hands the app over to its
// Dockerfile: only when nothing else builds it, and then it ends with the
// marker line, uploads nothing and exits cleanly.
func TestRunDockerfileFallback(t *testing.T) {
	const dockerfile = "FROM flynn/stack\nCMD [\"true\"]\n"
	tests := []struct {
		name           string
		files          map[string]string
		buildpackURL   string
		wantDockerfile bool
		wantPacks      []string
		wantErr        string
	}{
		{name: "Dockerfile alone", files: map[string]string{"Dockerfile": dockerfile, "server.py": "x"}, wantDockerfile: true},
		{name: "Dockerfile and package.json", files: map[string]string{"Dockerfile": dockerfile, "package.json": "{}"}, wantPacks: []string{"Fake Node"}},
		// The Procfile buildpack matches any Procfile, but leaves an app
		// with a Dockerfile to it: the Procfile names the image's types.
		{name: "Dockerfile and Procfile", files: map[string]string{"Dockerfile": dockerfile, "Procfile": "web: ./run\nrelease: ./migrate\n"}, wantDockerfile: true},
		{name: "BUILDPACK_URL wins over a Dockerfile", files: map[string]string{"Dockerfile": dockerfile, "Procfile": "web: ./run\n"}, buildpackURL: "fake-procfile", wantPacks: []string{"fake-procfile"}},
		{name: ".buildpacks wins over a Dockerfile", files: map[string]string{"Dockerfile": dockerfile, ".buildpacks": "fake-procfile\n"}, wantPacks: []string{"fake-procfile"}},
		{name: "Dockerfile in a subdirectory", files: map[string]string{"docker/Dockerfile": dockerfile}, wantErr: "add a Dockerfile"},
		{name: "no Dockerfile", files: map[string]string{"README": "hi"}, wantErr: "no buildpack can build this app"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			blobs := &fakeBlobstore{blobs: map[string][]byte{}}
			srv := httptest.NewServer(blobs)
			defer srv.Close()
			var out bytes.Buffer
			cfg := testConfig(t, &out)
			cfg.BuildpackURL = tt.buildpackURL
			cfg.SlugPutURL = srv.URL + "/slug.tgz"
			cfg.CacheURL = srv.URL + "/cache.tgz"
			cfg.CachePutURL = srv.URL + "/cache.tgz"
			res, err := Run(t.Context(), cfg, bytes.NewReader(tartest.Map(t, tt.files, 0o644)), discard())
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one containing %q\n%s", err, tt.wantErr, out.String())
				}
				if strings.Contains(out.String(), DockerfileLine) {
					t.Errorf("a failed build printed the Dockerfile line:\n%s", out.String())
				}
				return
			}
			if err != nil {
				t.Fatalf("Run: %v\n%s", err, out.String())
			}
			lines := strings.Split(strings.TrimSpace(out.String()), "\n")
			last := lines[len(lines)-1]
			if got := ParseDockerfileLine(last); got != tt.wantDockerfile || res.Dockerfile != tt.wantDockerfile {
				t.Fatalf("last line %q is the Dockerfile line: %v, Result.Dockerfile %v; want %v\n%s", last, got, res.Dockerfile, tt.wantDockerfile, out.String())
			}
			if !tt.wantDockerfile {
				if strings.Join(res.Buildpacks, ",") != strings.Join(tt.wantPacks, ",") {
					t.Errorf("buildpacks = %q, want %q", res.Buildpacks, tt.wantPacks)
				}
				if _, ok := ParseProcessTypesLine(last); !ok || blobs.get("/slug.tgz") == nil {
					t.Errorf("a buildpack build: last line %q, slug uploaded %v", last, blobs.get("/slug.tgz") != nil)
				}
				return
			}
			if want := "-----> No buildpack matches; building the Dockerfile\n"; !strings.Contains(out.String(), want) {
				t.Errorf("output lacks %q:\n%s", want, out.String())
			}
			if strings.Contains(out.String(), ProcessTypesPrefix) {
				t.Errorf("a Dockerfile build printed process types:\n%s", out.String())
			}
			if blobs.get("/slug.tgz") != nil || blobs.get("/cache.tgz") != nil {
				t.Errorf("a Dockerfile build uploaded: slug %v, cache %v", blobs.get("/slug.tgz") != nil, blobs.get("/cache.tgz") != nil)
			}
			if len(res.Buildpacks) != 0 || len(res.ProcessTypes) != 0 || res.SlugSize != 0 {
				t.Errorf("Result = %+v, want only Dockerfile", res)
			}
		})
	}
}

// TestDockerfileNotRegular checks that only a regular file counts: a
// symlink named Dockerfile could point outside the tree.
func TestDockerfileNotRegular(t *testing.T) {
	for name, mk := range map[string]func(path string) error{
		"symlink":   func(p string) error { return os.Symlink("/etc/passwd", p) },
		"directory": func(p string) error { return os.Mkdir(p, 0o755) },
	} {
		t.Run(name, func(t *testing.T) {
			var out bytes.Buffer
			cfg := testConfig(t, &out)
			writeApp(t, cfg.BuildDir, map[string]string{"README": "hi"})
			if err := mk(filepath.Join(cfg.BuildDir, "Dockerfile")); err != nil {
				t.Fatal(err)
			}
			res, err := Build(t.Context(), cfg, discard())
			if err == nil || !strings.Contains(err.Error(), "no buildpack can build this app") {
				t.Fatalf("Build = %+v, %v; want the no-buildpack error", res, err)
			}
		})
	}
}

// TestBundledBuildpacksLeaveDockerfileApps runs the detection of the real
// bundled buildpacks (../buildpacks): the sample Dockerfile app matches
// none of them, and a Dockerfile does not stop a buildpack that matches.
func TestBundledBuildpacksLeaveDockerfileApps(t *testing.T) {
	sample, err := os.ReadDir("../test/apps/dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	sampleFiles := map[string]string{}
	for _, e := range sample {
		sampleFiles[e.Name()] = readFile(t, filepath.Join("../test/apps/dockerfile", e.Name()))
	}
	withDockerfile := func(extra map[string]string) map[string]string {
		files := map[string]string{"Dockerfile": "FROM flynn/stack\n"}
		maps.Copy(files, extra)
		return files
	}
	tests := []struct {
		name           string
		files          map[string]string
		wantDockerfile bool
		wantPack       string
	}{
		{"the sample app", sampleFiles, true, ""},
		{"Dockerfile and Procfile", withDockerfile(map[string]string{"Procfile": "web: ./run\n"}), true, ""},
		{"Dockerfile and package.json", withDockerfile(map[string]string{"package.json": "{}"}), false, "Node.js"},
		{"Dockerfile and go.mod", withDockerfile(map[string]string{"go.mod": "module x\n"}), false, "Go"},
		{"Dockerfile and requirements.txt", withDockerfile(map[string]string{"requirements.txt": ""}), false, "Python"},
		{"Dockerfile and index.html", withDockerfile(map[string]string{"index.html": "<p>hi</p>"}), false, "Static HTML"},
		{"Procfile without a Dockerfile", map[string]string{"Procfile": "web: ./run\n"}, false, "Procfile"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig(t, &bytes.Buffer{})
			bundle, err := filepath.Abs("../buildpacks")
			if err != nil {
				t.Fatal(err)
			}
			cfg.BuildpacksDir = bundle
			writeApp(t, cfg.BuildDir, tt.files)
			packs, dockerfile, err := selectBuildpacks(t.Context(), cfg.withDefaults(), discard())
			if err != nil {
				t.Fatal(err)
			}
			var got string
			if len(packs) > 0 {
				got = packs[0].Name
			}
			if dockerfile != tt.wantDockerfile || got != tt.wantPack {
				t.Errorf("selected %q, Dockerfile %v; want %q, %v", got, dockerfile, tt.wantPack, tt.wantDockerfile)
			}
		})
	}
}

func TestParseDockerfileLine(t *testing.T) {
	tests := []struct {
		line string
		want bool
	}{
		{DockerfileLine, true},
		{DockerfileLine + "\n", true},
		{DockerfileLine + "\r\n", true},
		{"remote: " + DockerfileLine, false},
		{DockerfileLine + " x", false},
		{ProcessTypesPrefix + "{}", false},
		{"", false},
	}
	for _, tt := range tests {
		if got := ParseDockerfileLine(tt.line); got != tt.want {
			t.Errorf("ParseDockerfileLine(%q) = %v, want %v", tt.line, got, tt.want)
		}
	}
}

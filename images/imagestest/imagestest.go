// Package imagestest gives integration tests real Flynn images: the shared
// base images (flynn/base, flynn/stack, flynn/build, built once and then reused by their
// content tags, exactly as `make images` does) and component images made
// from freshly compiled binaries under a repository prefix unique to the
// test, removed when it ends.
package imagestest

import (
	"context"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/image"
	"github.com/openflynn/flynn/images"
	"github.com/openflynn/flynn/pkg/random"
	"github.com/openflynn/flynn/pkg/stacks"
	"github.com/openflynn/flynn/pkg/testdeps"
)

// Env is what Build made.
type Env struct {
	// Manifest has the base images and the requested components.
	Manifest images.Manifest
	// Docker is a connected engine client, closed when the test ends.
	Docker *images.Docker
	// Repo is the repository root.
	Repo string
	// Images and Builder made Manifest; building them again must be a no-op.
	Images  []images.Image
	Builder *images.Builder
}

// Build makes the images of the named components (keys of
// images.Components) and their bases. It stops the test through testdeps
// when Docker, mmdebstrap or go is missing.
func Build(t testing.TB, components ...string) *Env {
	t.Helper()
	testdeps.Short(t)
	testdeps.LookPath(t, "mmdebstrap")
	goBin := testdeps.LookPath(t, "go")
	docker, err := images.NewDocker()
	if err != nil {
		testdeps.Missing(t, "docker", err)
	}
	t.Cleanup(func() { docker.Close() })
	pingCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := docker.Client().Ping(pingCtx); err != nil {
		testdeps.Missing(t, "docker engine", err)
	}
	out, err := exec.Command(goBin, "list", "-m", "-f", "{{.Dir}}").Output()
	if err != nil {
		t.Fatalf("find the repository: %v", err)
	}
	repo := strings.TrimSpace(string(out))
	goRoot, err := exec.Command(goBin, "env", "GOROOT").Output()
	if err != nil {
		t.Fatalf("go env GOROOT: %v", err)
	}

	bin := t.TempDir()
	var pkgs []string
	want := map[string]bool{}
	for _, key := range components {
		want[key] = true
	}
	var defs []images.Image
	st, _ := stacks.Lookup(stacks.Default)
	defs = append(defs, images.StackImages("flynn/", strings.TrimSpace(string(goRoot)), st)...)
	prefix := "flynn-test-" + random.Hex(4) + "/"
	for _, c := range images.Components {
		if !want[c.Key] {
			continue
		}
		delete(want, c.Key)
		pkgs = append(pkgs, "./cmd/"+c.Binary)
		img := images.ComponentImage(prefix, bin, c)
		img.Optional = false
		if c.Key == "slugbuilder" {
			img.Files = append(img.Files, images.File{Source: filepath.Join(repo, "buildpacks"), Dest: "/buildpacks"})
		}
		defs = append(defs, img)
	}
	for key := range want {
		t.Fatalf("imagestest: unknown component %q", key)
	}
	if len(pkgs) > 0 {
		cmd := exec.Command(goBin, append([]string{"build", "-trimpath", "-o", bin + "/"}, pkgs...)...)
		cmd.Dir = repo
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go build %v: %v\n%s", pkgs, err, out)
		}
	}
	defs = images.Select(defs, components)

	ctx, cancelBuild := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancelBuild()
	b := &images.Builder{Engine: docker, RootFS: &images.Mmdebstrap{}, Log: slog.New(slog.NewTextHandler(testWriter{t}, nil))}
	m, err := b.Build(ctx, defs)
	if err != nil {
		t.Fatalf("build images: %v", err)
	}
	t.Cleanup(func() {
		for _, key := range components {
			name := strings.TrimSuffix(m[key].Ref, ":"+tagOf(m[key].Ref))
			for _, ref := range []string{m[key].Ref, name + ":latest"} {
				if _, err := docker.Client().ImageRemove(context.Background(), ref, image.RemoveOptions{PruneChildren: true}); err != nil {
					t.Logf("remove test image %s: %v", ref, err)
				}
			}
		}
	})
	return &Env{Manifest: m, Docker: docker, Repo: repo, Images: defs, Builder: b}
}

func tagOf(ref string) string { return ref[strings.LastIndex(ref, ":")+1:] }

// testWriter sends the builder's log lines to the test log.
type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

package images_test

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/pkg/stdcopy"
	"github.com/openflynn/flynn/images"
	"github.com/openflynn/flynn/images/imagestest"
	"github.com/openflynn/flynn/pkg/tartest"
)

// TestImagesIntegration builds the stack image (or finds it by its content
// tag) and a slugrunner image on it, checks that building again changes
// nothing, and runs slugrunner in the image against a slug served from the
// test.
func TestImagesIntegration(t *testing.T) {
	env := imagestest.Build(t, "slugrunner")
	start := time.Now()
	again, err := env.Builder.Build(t.Context(), env.Images)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("rebuild took %s", time.Since(start))
	for key, built := range env.Manifest {
		if again[key] != built {
			t.Errorf("rebuild of %s: %+v, first build %+v", key, again[key], built)
		}
	}
	for _, key := range []string{"stack", "slugrunner"} {
		ref := env.Manifest[key].Ref
		info, err := env.Docker.Client().ImageInspect(t.Context(), ref)
		if err != nil {
			t.Fatalf("inspect %s: %v", ref, err)
		}
		if tag := ref[strings.LastIndex(ref, ":")+1:]; info.Config.Labels[images.LabelContent] != tag {
			t.Errorf("%s: label %s = %q, want the tag", ref, images.LabelContent, info.Config.Labels[images.LabelContent])
		}
	}

	slug := tartest.Gzip(t, tartest.Map(t, map[string]string{
		"Procfile":           "web: echo \"$GREETING port=$PORT home=$HOME user=$(id -un)\"\n",
		".profile.d/test.sh": "export GREETING=hello-from-the-stack\n",
	}, 0o644))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(slug) }))
	defer srv.Close()
	out := runContainer(t, env, env.Manifest["slugrunner"].Ref, []string{"SLUG_URL=" + srv.URL + "/slug.tgz", "PORT=5999"}, "start", "web")
	if want := "hello-from-the-stack port=5999 home=/app user=root\n"; out != want {
		t.Errorf("slugrunner printed %q, want %q", out, want)
	}
}

func runContainer(t *testing.T, env *imagestest.Env, ref string, vars []string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	c := env.Docker.Client()
	created, err := c.ContainerCreate(ctx,
		&container.Config{Image: ref, Cmd: args, Env: vars, Labels: map[string]string{"org.openflynn.test": "images"}},
		&container.HostConfig{NetworkMode: "host"}, nil, nil, "")
	if err != nil {
		t.Fatal(err)
	}
	defer c.ContainerRemove(context.Background(), created.ID, container.RemoveOptions{Force: true})
	waitc, errc := c.ContainerWait(ctx, created.ID, container.WaitConditionNextExit)
	if err := c.ContainerStart(ctx, created.ID, container.StartOptions{}); err != nil {
		t.Fatal(err)
	}
	var status int64
	select {
	case w := <-waitc:
		status = w.StatusCode
	case err := <-errc:
		t.Fatal(err)
	}
	logs, err := c.ContainerLogs(ctx, created.ID, container.LogsOptions{ShowStdout: true, ShowStderr: true})
	if err != nil {
		t.Fatal(err)
	}
	defer logs.Close()
	var stdout, stderr bytes.Buffer
	if _, err := stdcopy.StdCopy(&stdout, &stderr, logs); err != nil {
		t.Fatal(err)
	}
	if status != 0 {
		t.Fatalf("container exited %d\nstdout: %s\nstderr: %s", status, stdout.String(), stderr.String())
	}
	return stdout.String()
}

// Package hosttest builds flynn-host's test image without a registry: it
// compiles host/testdata/testjob as a static binary and `docker import`s a
// tar holding just that binary, tagged by the binary's hash so repeated
// runs reuse it.
package hosttest

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/client"

	"github.com/openflynn/flynn/pkg/testdeps"
)

// Label marks images and containers made by tests, for cleanup.
const Label = "flynn.test"

// Docker returns a Docker client, or stops the test through testdeps when
// no engine answers.
func Docker(t testing.TB) *client.Client {
	t.Helper()
	testdeps.Short(t)
	c, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		testdeps.Missing(t, "docker", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := c.Ping(ctx); err != nil {
		testdeps.Missing(t, "docker", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// Build returns the reference of the test image, building it when needed.
// Its entrypoint is the testjob binary: a job's args pick the mode.
func Build(t testing.TB, c *client.Client) string {
	t.Helper()
	goBin := testdeps.LookPath(t, "go")
	_, file, _, _ := runtime.Caller(0)
	src := filepath.Join(filepath.Dir(file), "..", "testdata", "testjob")
	out := filepath.Join(t.TempDir(), "testjob")
	cmd := exec.Command(goBin, "build", "-trimpath", "-ldflags=-s -w", "-o", out, ".")
	cmd.Dir = src
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build testjob: %v\n%s", err, b)
	}
	bin, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(bin)
	ref := "flynn-testjob:" + hex.EncodeToString(sum[:])[:16]

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if _, err := c.ImageInspect(ctx, ref); err == nil {
		return ref
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, dir := range []string{"tmp/", "data/"} {
		_ = tw.WriteHeader(&tar.Header{Name: dir, Typeflag: tar.TypeDir, Mode: 0o1777})
	}
	if err := tw.WriteHeader(&tar.Header{Name: "testjob", Mode: 0o755, Size: int64(len(bin)), Typeflag: tar.TypeReg}); err != nil {
		t.Fatal(err)
	}
	_, _ = tw.Write(bin)
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	rc, err := c.ImageImport(ctx, image.ImportSource{Source: &buf, SourceName: "-"}, ref, image.ImportOptions{
		Changes: []string{`ENTRYPOINT ["/testjob"]`, "LABEL " + Label + "=true"},
	})
	if err != nil {
		t.Fatalf("import test image: %v", err)
	}
	_, _ = io.Copy(io.Discard, rc)
	rc.Close()
	if _, err := c.ImageInspect(ctx, ref); err != nil {
		t.Fatalf("test image %s missing after import: %v", ref, err)
	}
	return ref
}

// Package hosttest builds flynn-host's test image without a registry: it
// compiles host/testdata/testjob as a static binary and `docker import`s a
// tar holding just that binary, tagged by the binary's hash so repeated
// runs reuse it. It also names an app network of a test's own
// (NewAppNetwork), so that test daemons never touch a cluster's.
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
	"strings"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/client"

	"github.com/openflynn/flynn/host/firewall"
	"github.com/openflynn/flynn/pkg/poll"
	"github.com/openflynn/flynn/pkg/random"
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

// AppNetwork names an app network, its bridge and its firewall chain.
type AppNetwork struct {
	Network, Bridge, Chain string
}

// NewAppNetwork names an app network and firewall chain of one test's own,
// apart from a running cluster's (flynn-apps on flynnapps0, FLYNN-APPS)
// and from other tests', for the daemon under test to create; when the
// test ends it removes them: the containers left on the network, the
// network, and the chains with INPUT's and DOCKER-USER's jumps to them
// (the daemon's default forward chain is Chain + firewall.ForwardSuffix).
// Register it before the daemon's own cleanup, so that it runs after it.
func NewAppNetwork(t testing.TB, c *client.Client) AppNetwork {
	t.Helper()
	id := random.Hex(3)
	n := AppNetwork{Network: "flynn-apps-t" + id, Bridge: "fat" + id + "0", Chain: "FLYNN-T" + strings.ToUpper(id)}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		// A container the daemon was still removing can hold an endpoint
		// on the network a moment after it left the network's list
		// ("has active endpoints"): look again until the network goes.
		err := poll.Wait(ctx, 30*time.Second, func() error {
			info, err := c.NetworkInspect(ctx, n.Network, network.InspectOptions{})
			if cerrdefs.IsNotFound(err) {
				return nil
			}
			if err != nil {
				return err
			}
			for id := range info.Containers {
				_ = c.ContainerRemove(ctx, id, container.RemoveOptions{Force: true})
			}
			return c.NetworkRemove(ctx, n.Network)
		})
		if err != nil {
			t.Errorf("remove test network %s: %v", n.Network, err)
		}
		if Firewall() {
			if err := firewall.Remove(ctx, firewall.Exec{}, firewall.Rules{Bridge: n.Bridge, Chain: n.Chain}); err != nil {
				t.Errorf("remove test firewall chain %s: %v", n.Chain, err)
			}
			fwd := firewall.Forward{Bridge: n.Bridge, Chain: n.Chain + firewall.ForwardSuffix}
			if err := firewall.RemoveForward(ctx, firewall.Exec{}, fwd); err != nil {
				t.Errorf("remove test firewall chain %s: %v", fwd.Chain, err)
			}
		}
	})
	return n
}

// Firewall reports whether tests can install iptables rules here (as
// root, with iptables); where they cannot, test daemons run without a
// firewall and the tests of the firewall are skipped.
func Firewall() bool {
	if os.Geteuid() != 0 {
		return false
	}
	_, err := exec.LookPath("iptables-restore")
	return err == nil
}

// TinyImage imports an image of one file, /hello, changed by changes
// (Dockerfile instructions: "EXPOSE 6379", "USER 1000"), under a name of
// the test's own, which it removes when the test ends. It is for tests of
// what moves images around (`docker save` archives), not of what runs.
func TinyImage(t testing.TB, c *client.Client, changes ...string) string {
	t.Helper()
	ref := "flynn-test-tiny:" + random.Hex(6)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	_ = tw.WriteHeader(&tar.Header{Name: "hello", Mode: 0o644, Size: 6, Typeflag: tar.TypeReg})
	_, _ = tw.Write([]byte("hello\n"))
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	rc, err := c.ImageImport(ctx, image.ImportSource{Source: &buf, SourceName: "-"}, ref, image.ImportOptions{
		Changes: append([]string{"LABEL " + Label + "=true"}, changes...),
	})
	if err != nil {
		t.Fatalf("import tiny image: %v", err)
	}
	_, _ = io.Copy(io.Discard, rc)
	rc.Close()
	t.Cleanup(func() {
		_, _ = c.ImageRemove(context.Background(), ref, image.RemoveOptions{Force: true, PruneChildren: true})
	})
	return ref
}

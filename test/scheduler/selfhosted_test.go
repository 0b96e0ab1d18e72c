package scheduler_test

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/docker/docker/api/types/image"

	"github.com/openflynn/flynn/bootstrap"
	ctrlclient "github.com/openflynn/flynn/controller/client"
	"github.com/openflynn/flynn/discoverd"
	discoverdclient "github.com/openflynn/flynn/discoverd/client"
	"github.com/openflynn/flynn/host/hosttest"
	"github.com/openflynn/flynn/pkg/pgtest"
	"github.com/openflynn/flynn/pkg/testdeps"
)

// selfHostedManifest is the controller's part of bootstrap/manifest.json,
// on a Postgres the test registers itself: the controller's first job
// started directly on the host, then recorded as an app of its own
// controller, with its route. %s are the database URL and discoverd's.
const selfHostedManifest = `{
  "controller": {"service": "controller", "key": "{{cluster_key}}"},
  "steps": [
    {
      "id": "controller", "action": "run-app", "app": {"name": "controller"}, "image": "controller",
      "release": {
        "env": {
          "FLYNN_DATABASE_URL": %q,
          "FLYNN_DISCOVERD_URL": %q,
          "FLYNN_CONTROLLER_KEY": "{{cluster_key}}",
          "FLYNN_CLUSTER_KEY": "{{cluster_key}}"
        },
        "processes": {
          "api": {"ports": [{"proto": "http"}], "service": "controller", "omni": true, "persistent": true, "host_network": true}
        }
      },
      "processes": {"api": 1}
    },
    {"id": "controller-wait", "action": "wait", "service": "controller", "path": "/apps", "status": 401, "timeout": "60s"},
    {"id": "controller-inception", "action": "add-app", "from_steps": ["controller"]},
    {"id": "controller-route", "action": "add-route", "app_step": "controller",
     "route": {"type": "http", "service": "controller", "domain": "controller.test"}}
  ]
}`

// bootstrapController brings the controller up as bootstrap does and
// returns a client that reaches it by name through discoverd.
func (c *cluster) bootstrapController(dc *discoverdclient.Client, pg *pgtest.Server, dbURL string) *ctrlclient.Client {
	t := c.t
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	ref := binaryImage(t, c, "flynn-controller")

	// Postgres, found as the cluster's is: leader.postgres.discoverd.
	// The registration heartbeats until its context ends: the test's.
	reg, err := dc.Register(context.Background(), "postgres", &discoverd.Instance{Addr: "127.0.0.1:" + strconv.Itoa(pg.Port()), Proto: "tcp"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		dctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = reg.Deregister(dctx)
	})
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	u.Host = "leader.postgres.discoverd"

	m, err := bootstrap.ParseManifest([]byte(fmt.Sprintf(selfHostedManifest, u.String(), dc.URL())))
	if err != nil {
		t.Fatal(err)
	}
	hc := discoverdclient.HTTPClient(dc)
	t.Cleanup(hc.CloseIdleConnections)
	var out bytes.Buffer
	_, err = bootstrap.Run(ctx, bootstrap.Config{
		Host:      c.host,
		Discoverd: dc,
		NewController: func(url, key string) bootstrap.Controller {
			return ctrlclient.NewWithHTTPClient(url, key, hc)
		},
		HTTPClient: hc,
		Images:     map[string]string{"controller": ref},
		ClusterKey: key,
		Out:        &out,
	}, m, c.logger.With("component", "bootstrap"))
	if err != nil {
		t.Fatalf("bootstrap: %v\n%s", err, out.String())
	}
	t.Logf("bootstrap:\n%s", out.String())
	return ctrlclient.NewWithHTTPClient("http://controller.discoverd", key, hc)
}

// binaryImage returns an image holding one of this module's commands as
// its entrypoint, built without a registry as hosttest builds its test
// image: a static binary `docker import`ed alone, tagged by its hash so
// repeated runs reuse it.
func binaryImage(t testing.TB, c *cluster, command string) string {
	t.Helper()
	goBin := testdeps.LookPath(t, "go")
	_, file, _, _ := runtime.Caller(0)
	root := filepath.Join(filepath.Dir(file), "..", "..")
	out := filepath.Join(t.TempDir(), command)
	cmd := exec.Command(goBin, "build", "-trimpath", "-ldflags=-s -w", "-o", out, "./cmd/"+command)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build %s: %v\n%s", command, err, b)
	}
	bin, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(bin)
	ref := "flynn-test-" + command + ":" + hex.EncodeToString(sum[:])[:16]
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if _, err := c.docker.ImageInspect(ctx, ref); err == nil {
		return ref
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	_ = tw.WriteHeader(&tar.Header{Name: "tmp/", Typeflag: tar.TypeDir, Mode: 0o1777})
	if err := tw.WriteHeader(&tar.Header{Name: command, Mode: 0o755, Size: int64(len(bin)), Typeflag: tar.TypeReg}); err != nil {
		t.Fatal(err)
	}
	_, _ = tw.Write(bin)
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	entrypoint, _ := json.Marshal([]string{"/" + command})
	rc, err := c.docker.ImageImport(ctx, image.ImportSource{Source: &buf, SourceName: "-"}, ref, image.ImportOptions{
		Changes: []string{"ENTRYPOINT " + string(entrypoint), "LABEL " + hosttest.Label + "=true"},
	})
	if err != nil {
		t.Fatalf("import %s: %v", ref, err)
	}
	_, _ = io.Copy(io.Discard, rc)
	rc.Close()
	return ref
}

package hostrunner_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"

	"github.com/openflynn/flynn/controller"
	"github.com/openflynn/flynn/controller/client"
	"github.com/openflynn/flynn/controller/controllertest"
	"github.com/openflynn/flynn/controller/hostrunner"
	"github.com/openflynn/flynn/discoverd/discoverdtest"
	"github.com/openflynn/flynn/host"
	hostclient "github.com/openflynn/flynn/host/client"
	"github.com/openflynn/flynn/host/daemon"
	"github.com/openflynn/flynn/host/hosttest"
	hostserver "github.com/openflynn/flynn/host/server"
	"github.com/openflynn/flynn/pkg/httpjson"
	"github.com/openflynn/flynn/pkg/pgtest"
	"github.com/openflynn/flynn/pkg/poll"
	"github.com/openflynn/flynn/pkg/random"
	"github.com/openflynn/flynn/pkg/testdeps"
)

const clusterKey = "test-cluster-key"

// stack is a real controller (on pgtest Postgres) whose runner places jobs
// on a real flynn-host (Docker) found through a real discoverd.
type stack struct {
	client *client.Client
	host   *hostclient.Client
	hostID string
	image  string
}

func newStack(t *testing.T) *stack {
	t.Helper()
	testdeps.Short(t)
	dc := hosttest.Docker(t)
	image := hosttest.Build(t, dc)
	if _, err := pgtest.BinDir(); err != nil {
		testdeps.Missing(t, "postgresql server", err)
	}
	logger := slog.New(slog.DiscardHandler)

	disc := discoverdtest.New(t, discoverdtest.Options{Key: clusterKey})

	hostID := "hr" + random.Hex(4)
	addr, err := discoverdtest.FreeAddr()
	if err != nil {
		t.Fatal(err)
	}
	lo := 30000 + rand.IntN(27)*100 // below the ephemeral range; see host/server's harness
	// An app network and firewall chain of the test's own; registered
	// before the daemon's cleanup, so they go after it.
	appNet := hosttest.NewAppNetwork(t, dc)
	hctx, stopHost := context.WithCancel(context.Background())
	hostDone := make(chan error, 1)
	go func() {
		hostDone <- hostserver.Run(hctx, hostserver.Config{
			Daemon: daemon.Config{
				HostID: hostID, ExternalIP: "127.0.0.1", PortMin: lo, PortMax: lo + 99,
				StateDir: t.TempDir(), Labels: map[string]string{hosttest.Label: "true"},
				AppNetwork: appNet.Network, AppBridge: appNet.Bridge, FirewallChain: appNet.Chain, NoFirewall: !hosttest.Firewall(),
			},
			Listen: addr, ClusterKey: clusterKey, DiscoverdURL: disc.URL,
		}, logger)
	}()
	t.Cleanup(func() {
		stopHost()
		<-hostDone
		list, _ := dc.ContainerList(context.Background(), container.ListOptions{All: true,
			Filters: filters.NewArgs(filters.Arg("label", daemon.LabelHostID+"="+hostID))})
		for _, c := range list {
			_ = dc.ContainerRemove(context.Background(), c.ID, container.RemoveOptions{Force: true})
		}
	})

	runner := hostrunner.New(disc.Client(), clusterKey, logger)
	ctrl := controllertest.New(t, pgtest.New(t).NewDatabase(t), controllertest.Options{Key: clusterKey, Logger: logger, Runner: runner})
	s := &stack{client: ctrl.Client(), host: hostclient.New("http://"+addr, clusterKey), hostID: hostID, image: image}

	// Wait until the host has registered itself.
	poll.UntilNil(t, 30*time.Second, "flynn-host registers in discoverd", func() error {
		insts, err := disc.Client().Instances(t.Context(), hostrunner.HostService)
		if err == nil && len(insts) == 0 {
			err = fmt.Errorf("no instances")
		}
		return err
	})
	return s
}

// app creates an app whose release runs the test image.
func (s *stack) app(t *testing.T) *controller.App {
	t.Helper()
	ctx := t.Context()
	app := &controller.App{Name: "hr-" + random.Hex(3)}
	if err := s.client.CreateApp(ctx, app); err != nil {
		t.Fatal(err)
	}
	art := &controller.Artifact{Type: controller.ArtifactTypeDocker, URI: s.image}
	if err := s.client.CreateArtifact(ctx, art); err != nil {
		t.Fatal(err)
	}
	rel := &controller.Release{AppID: app.ID, ArtifactID: art.ID, Env: map[string]string{"GREETING": "hello"}}
	if err := s.client.CreateRelease(ctx, rel); err != nil {
		t.Fatal(err)
	}
	if _, err := s.client.SetAppRelease(ctx, app.ID, rel.ID); err != nil {
		t.Fatal(err)
	}
	return app
}

func TestOneOffJobOnRealHost(t *testing.T) {
	s := newStack(t)
	app := s.app(t)
	ctx := t.Context()

	job, err := s.client.RunJob(ctx, app.Name, &controller.NewJob{Args: []string{"env", "GREETING", "EXTRA"}, Env: map[string]string{"EXTRA": "x"}})
	if err != nil {
		t.Fatal(err)
	}
	if job.HostID != s.hostID || !strings.HasPrefix(job.ID, s.hostID+"-") {
		t.Fatalf("job %s on host %q, want host %s", job.ID, job.HostID, s.hostID)
	}
	// The host runs it with the app's metadata but no process type.
	aj, err := s.host.GetJob(ctx, job.ID)
	if err != nil {
		t.Fatal(err)
	}
	if aj.Job.Metadata[controller.JobMetaAppID] != app.ID || aj.Job.Metadata[controller.JobMetaType] != "" {
		t.Errorf("host job metadata = %v", aj.Job.Metadata)
	}

	// Follow the log through the controller: it ends when the job does.
	stream, err := s.client.JobLog(ctx, app.Name, job.ID, client.JobLogOptions{Follow: true})
	if err != nil {
		t.Fatal(err)
	}
	var got strings.Builder
	for {
		l, err := stream.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got.WriteString(l.Data)
	}
	stream.Close()
	if want := "GREETING=hello\nEXTRA=x\n"; got.String() != want {
		t.Fatalf("followed log = %q, want %q", got.String(), want)
	}

	// tail=1 gives the last line only.
	stream, err = s.client.JobLog(ctx, app.Name, job.ID, client.JobLogOptions{Tail: 1})
	if err != nil {
		t.Fatal(err)
	}
	l, err := stream.Next()
	stream.Close()
	if err != nil || l.Data != "EXTRA=x\n" {
		t.Fatalf("tail=1 first line = %q, %v; want %q", l.Data, err, "EXTRA=x\n")
	}

	// A job of another app is not found through this one.
	other := s.app(t)
	if _, err := s.client.JobLog(ctx, other.Name, job.ID, client.JobLogOptions{}); err == nil {
		t.Fatal("log of another app's job was served")
	}
}

func TestAttachedJobOnRealHost(t *testing.T) {
	s := newStack(t)
	app := s.app(t)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()

	aj, err := s.client.RunJobAttached(ctx, app.Name, &controller.NewJob{Args: []string{"cat"}})
	if err != nil {
		t.Fatal(err)
	}
	defer aj.Close()
	if !strings.HasPrefix(aj.JobID, s.hostID+"-") {
		t.Fatalf("job id %q", aj.JobID)
	}
	input := bytes.Repeat([]byte("line of input\n"), 2000) // more than one frame's worth of pipe buffer
	go func() {
		_ = host.WriteFrame(aj, host.FrameStdin, input)
		_ = host.WriteFrame(aj, host.FrameStdinEOF, nil)
	}()
	var out bytes.Buffer
	status := -1
	for status < 0 {
		f, err := host.ReadFrame(aj)
		if err != nil {
			t.Fatalf("read frame: %v (got %d bytes)", err, out.Len())
		}
		switch f.Type {
		case host.FrameStdout:
			out.Write(f.Payload)
		case host.FrameExit:
			status, _ = host.ParseExit(f.Payload)
		case host.FrameError:
			t.Fatalf("attach error: %s", f.Payload)
		}
	}
	if status != 0 || !bytes.Equal(out.Bytes(), input) {
		t.Fatalf("exit %d, echoed %d bytes of %d", status, out.Len(), len(input))
	}
	j, err := s.client.Job(ctx, app.Name, aj.JobID)
	if err != nil {
		t.Fatalf("attached job not recorded: %v", err)
	}
	if j.HostID != s.hostID {
		t.Errorf("recorded host %q, want %s", j.HostID, s.hostID)
	}
}

func TestDetachStopsAttachedJob(t *testing.T) {
	s := newStack(t)
	app := s.app(t)
	ctx := t.Context()
	aj, err := s.client.RunJobAttached(ctx, app.Name, &controller.NewJob{Args: []string{"sleep"}})
	if err != nil {
		t.Fatal(err)
	}
	f, err := host.ReadFrame(aj) // "sleeping": the job runs
	if err != nil || f.Type != host.FrameStdout {
		t.Fatalf("first frame %v %q, %v", f.Type, f.Payload, err)
	}
	aj.Close()
	poll.Until(t, 30*time.Second, "the job ends after the client detached", func() bool {
		j, err := s.host.GetJob(ctx, aj.JobID)
		return err == nil && j.State.Terminal()
	})
}

func TestStopJobOnRealHost(t *testing.T) {
	s := newStack(t)
	app := s.app(t)
	ctx := t.Context()
	job, err := s.client.RunJob(ctx, app.Name, &controller.NewJob{Args: []string{"sleep"}})
	if err != nil {
		t.Fatal(err)
	}
	other := s.app(t)
	if err := s.client.StopJob(ctx, other.Name, job.ID); !httpjson.IsNotFound(err) {
		t.Fatalf("stopping through another app: %v, want not_found", err)
	}
	if err := s.client.StopJob(ctx, app.Name, job.ID); err != nil {
		t.Fatal(err)
	}
	// The host confirmed before the call returned: the job has ended.
	aj, err := s.host.GetJob(ctx, job.ID)
	if err != nil {
		t.Fatal(err)
	}
	if aj.State != host.StateDown {
		t.Errorf("job after StopJob: %s, want down", aj.State)
	}
}

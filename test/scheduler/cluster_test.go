// Package scheduler_test runs the scheduler against real components: a
// flynn-host daemon on the real Docker engine, discoverd on embedded etcd,
// the controller on Postgres and the router, all in this process on
// loopback.
package scheduler_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	dockerclient "github.com/docker/docker/client"

	"github.com/openflynn/flynn/controller"
	ctrlclient "github.com/openflynn/flynn/controller/client"
	"github.com/openflynn/flynn/controller/controllertest"
	"github.com/openflynn/flynn/controller/scheduler"
	"github.com/openflynn/flynn/discoverd/discoverdtest"
	"github.com/openflynn/flynn/host"
	hostclient "github.com/openflynn/flynn/host/client"
	"github.com/openflynn/flynn/host/daemon"
	"github.com/openflynn/flynn/host/hosttest"
	hostserver "github.com/openflynn/flynn/host/server"
	"github.com/openflynn/flynn/pkg/pgtest"
	"github.com/openflynn/flynn/pkg/poll"
	"github.com/openflynn/flynn/router/controllerroutes"
	"github.com/openflynn/flynn/router/discoverdbackends"
	routerserver "github.com/openflynn/flynn/router/server"
)

const key = "cluster-key"

// cluster is a one-host cluster running in the test process.
type cluster struct {
	t      testing.TB
	docker *dockerclient.Client
	image  string
	hostID string
	host   *hostclient.Client
	ctrl   *ctrlclient.Client
	router string // http://127.0.0.1:port
	logger *slog.Logger
}

func logger(t testing.TB) *slog.Logger {
	if os.Getenv("FLYNN_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

func freePort(t testing.TB) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// background runs fn until the test ends, then cancels it and waits.
func background(t testing.TB, fn func(ctx context.Context) error) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- fn(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil && ctx.Err() == nil {
			t.Errorf("background component: %v", err)
		}
	})
}

func newCluster(t testing.TB, schedCfg scheduler.Config) *cluster {
	return startCluster(t, clusterOptions{Scheduler: schedCfg})
}

// clusterOptions shape a test cluster.
type clusterOptions struct {
	Scheduler scheduler.Config
	// SelfHosted runs the controller as bootstrap/manifest.json does: as
	// jobs on flynn-host (an image of cmd/flynn-controller) on a Postgres
	// found as leader.postgres.discoverd, started by bootstrap and made an
	// app of itself, so the scheduler deploys it like any app. The
	// scheduler and the router reach it as http://controller.discoverd.
	// Without it the controller runs in this process.
	SelfHosted bool
}

func startCluster(t testing.TB, opts clusterOptions) *cluster {
	docker := hosttest.Docker(t)
	c := &cluster{t: t, docker: docker, image: hosttest.Build(t, docker), logger: logger(t)}
	ctx := context.Background()

	// discoverd
	d := discoverdtest.New(t, discoverdtest.Options{Key: key})
	dc := d.Client()

	// controller on a fresh Postgres, in this process unless self-hosted
	pg := pgtest.New(t)
	dbURL := pg.NewDatabase(t)
	if !opts.SelfHosted {
		ctrl := controllertest.New(t, dbURL, controllertest.Options{Key: key, Logger: c.logger})
		c.ctrl = ctrl.Client()
	}

	// flynn-host on Docker, with a port range of its own
	c.hostID = fmt.Sprintf("schedtest%d", os.Getpid())
	apiAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	base := 10000 + (os.Getpid()%100)*50 // below the ephemeral range, apart from the other tests' ranges
	state := t.TempDir()
	appNet := hosttest.NewAppNetwork(t, docker) // removed after the containers
	t.Cleanup(c.removeContainers)               // runs last: after the daemon stopped
	background(t, func(ctx context.Context) error {
		return hostserver.Run(ctx, hostserver.Config{
			Daemon: daemon.Config{
				HostID: c.hostID, ExternalIP: "127.0.0.1", StateDir: state,
				DiscoverdURL: d.URL, // the node's discoverd, which jobs are given
				PortMin:      base, PortMax: base + 49,
				Labels:        map[string]string{hosttest.Label: "true"},
				CheckInterval: 50 * time.Millisecond,
				AppNetwork:    appNet.Network, AppBridge: appNet.Bridge, FirewallChain: appNet.Chain, NoFirewall: !hosttest.Firewall(),
			},
			Listen: apiAddr, ClusterKey: key, DiscoverdURL: d.URL, DiscoverdTTL: 3 * time.Second,
		}, c.logger.With("component", "host"))
	})
	c.host = hostclient.New("http://"+apiAddr, key)
	t.Cleanup(c.stopJobs) // runs before the daemon stops
	poll.Until(t, 20*time.Second, "host registered and answering", func() bool {
		_, err := c.host.Status(ctx)
		return err == nil
	})
	if opts.SelfHosted {
		c.ctrl = c.bootstrapController(dc, pg, dbURL)
	}

	// router: routes from the controller, backends from discoverd
	rt, err := routerserver.New(routerserver.Config{HTTPAddrs: []string{"127.0.0.1:0"}},
		controllerroutes.New(c.ctrl, c.logger), discoverdbackends.New(dc), c.logger.With("component", "router"))
	if err != nil {
		t.Fatal(err)
	}
	background(t, rt.Run)
	c.router = "http://" + rt.HTTPAddr().String()

	// scheduler, leading alone
	background(t, func(ctx context.Context) error {
		hosts, err := scheduler.WatchHosts(ctx, dc, key, c.logger)
		if err != nil {
			return err
		}
		return scheduler.New(opts.Scheduler, c.ctrl, hosts, c.logger.With("component", "scheduler")).Run(ctx)
	})
	return c
}

// stopJobs stops every job on the host, so nothing outlives the test.
func (c *cluster) stopJobs() {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	jobs, err := c.host.ListJobs(ctx)
	if err != nil {
		return
	}
	var wg sync.WaitGroup
	for _, j := range jobs {
		if !j.State.Terminal() {
			wg.Add(1)
			go func() { defer wg.Done(); _, _ = c.host.StopJob(ctx, j.Job.ID) }()
		}
	}
	wg.Wait()
}

// removeContainers removes the containers of this test's host.
func (c *cluster) removeContainers() {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	list, err := c.docker.ContainerList(ctx, container.ListOptions{All: true, Filters: filters.NewArgs(filters.Arg("label", daemon.LabelHostID+"="+c.hostID))})
	if err != nil {
		return
	}
	for _, ct := range list {
		_ = c.docker.ContainerRemove(ctx, ct.ID, container.RemoveOptions{Force: true})
	}
}

// app creates an app with a route and returns it with its first release.
func (c *cluster) app(name string) (*controller.App, *controller.Artifact) {
	ctx := context.Background()
	app := &controller.App{Name: name}
	must(c.t, c.ctrl.CreateApp(ctx, app))
	art := &controller.Artifact{Type: controller.ArtifactTypeDocker, URI: c.image}
	must(c.t, c.ctrl.CreateArtifact(ctx, art))
	must(c.t, c.ctrl.CreateRoute(ctx, app.ID, &controller.Route{Type: "http", Domain: name + ".test", Service: name + "-web"}))
	return app, art
}

func (c *cluster) release(app *controller.App, art *controller.Artifact, cmd []string, env map[string]string) *controller.Release {
	rel := &controller.Release{AppID: app.ID, ArtifactID: art.ID, Env: env,
		Processes: map[string]controller.ProcessType{"web": {Cmd: cmd}}}
	must(c.t, c.ctrl.CreateRelease(context.Background(), rel))
	return rel
}

// upJobs returns the host's live jobs of a release that are up.
func (c *cluster) upJobs(rel *controller.Release) []*host.ActiveJob {
	jobs, err := c.host.ListJobs(context.Background())
	if err != nil {
		return nil
	}
	var up []*host.ActiveJob
	for _, j := range jobs {
		if j.State == host.StateUp && j.Job.Metadata[controller.JobMetaReleaseID] == rel.ID {
			up = append(up, j)
		}
	}
	return up
}

// liveJobs returns the host's jobs of a release that have not ended.
func (c *cluster) liveJobs(rel *controller.Release) []*host.ActiveJob {
	jobs, err := c.host.ListJobs(context.Background())
	if err != nil {
		return []*host.ActiveJob{nil} // unknown: not none
	}
	var live []*host.ActiveJob
	for _, j := range jobs {
		if !j.State.Terminal() && j.Job.Metadata[controller.JobMetaReleaseID] == rel.ID {
			live = append(live, j)
		}
	}
	return live
}

// get asks the router for the app and returns status and body.
func (c *cluster) get(domain string) (int, string, error) {
	req, _ := http.NewRequest("GET", c.router+"/", nil)
	req.Host = domain
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(b)), nil
}

func (c *cluster) latestDeployment(app *controller.App) *controller.Deployment {
	ds, err := c.ctrl.Deployments(context.Background(), app.ID)
	if err != nil || len(ds) == 0 {
		return nil
	}
	latest := ds[0]
	for _, d := range ds[1:] {
		if d.CreatedAt.After(latest.CreatedAt) {
			latest = d
		}
	}
	return latest
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

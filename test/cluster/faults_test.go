package cluster

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/openflynn/flynn/controller"
	"github.com/openflynn/flynn/controller/client"
	"github.com/openflynn/flynn/host"
	hostclient "github.com/openflynn/flynn/host/client"
	"github.com/openflynn/flynn/pkg/poll"
)

// TestFaults kills the platform's parts one after another, with SIGKILL,
// while a loop of requests runs through the router to an app of two web
// processes and a loop of env changes deploys it again and again:
// postgres, discoverd, the controller, the scheduler (their containers)
// and flynn-host (the daemon; its jobs keep running). Afterwards every env
// change the controller acknowledged is in the app's latest release, the
// formation is whole, and no job beyond it runs; the request loop may
// fail only for requests in flight on a backend being replaced. A change
// counts as acknowledged as `flynn env set` counts it: the controller took
// the patch and its deployment completed (a deployment that fails puts
// the app back at the release before, and the CLI says so).
func TestFaults(t *testing.T) {
	repo := clusterRepo(t)
	_, statErr := os.Stat("/var/lib/flynn/cluster-add")
	if statErr != nil {
		downAtEnd(t, repo)
	}
	script(t, repo, 25*time.Minute, "script/cluster", "up")
	key := readClusterAdd(t, repo).key
	ctx := t.Context()
	api := controllerClient(key)
	hosts := hostclient.New("http://127.0.0.1:1113", clusterKey(t))

	app := deployWeb(t, api, repo, "faults", 2)
	domain := "faults." + domain
	if err := api.CreateRoute(ctx, app.ID, &controller.Route{Type: controller.RouteTypeHTTP, Service: app.Name + "-web", Domain: domain}); err != nil {
		t.Fatal(err)
	}
	poll.UntilNil(t, time.Minute, "the app answers through the router", func() error { return get("127.0.0.1", domain) })

	requests := startRequests("127.0.0.1", domain, 2)
	changes := startEnvChanges(api, app.ID)

	// After each fault, the platform deploys an env change again before
	// the next one.
	deploysAgain := func(after string) {
		t.Helper()
		before := changes.deployed.Load()
		poll.Until(t, 2*time.Minute, "an env change deployed after "+after, func() bool { return changes.deployed.Load() > before })
	}
	deploysAgain("the start")
	// failedDuring prints how many requests failed during a phase.
	failedBefore := requests.fails.Load()
	failedDuring := func(phase string) {
		now := requests.fails.Load()
		fmt.Printf("BENCH faults: %d requests failed during %s\n", now-failedBefore, phase)
		failedBefore = now
	}
	for _, part := range []string{"postgres", "discoverd", "controller", "scheduler"} {
		id := killComponent(t, ctx, hosts, part)
		back := poll.UntilNil(t, 2*time.Minute, part+" running again and the controller answering", func() error {
			if err := componentUp(ctx, hosts, part, id); err != nil {
				return err
			}
			_, err := api.Apps(ctx)
			return err
		})
		fmt.Printf("BENCH fault: %s killed (job %s); running again and the controller answering after %s\n", part, id, back.Round(time.Millisecond))
		deploysAgain(part + " was killed")
		failedDuring("the loss of " + part)
	}
	killHostDaemon(t, repo)
	poll.UntilNil(t, 2*time.Minute, "flynn-host and the controller answering again", func() error {
		if _, err := hosts.ListJobs(ctx); err != nil {
			return err
		}
		_, err := api.Apps(ctx)
		return err
	})
	deploysAgain("flynn-host was killed")
	failedDuring("the loss of flynn-host")

	patched, refused := changes.stop()
	reqs, failed := requests.stop()

	// Every acknowledged change is in the latest release.
	var rel *controller.Release
	poll.UntilNil(t, 2*time.Minute, "the last deployment finished", func() error {
		ds, err := api.Deployments(ctx, app.ID)
		if err != nil {
			return err
		}
		for _, d := range ds {
			if d.Status == controller.DeploymentPending || d.Status == controller.DeploymentRunning {
				return fmt.Errorf("deployment %s is %s", d.ID, d.Status)
			}
		}
		rel, err = api.AppRelease(ctx, app.ID)
		return err
	})
	var acked, lost []string
	deployFailed := 0
	for _, p := range patched {
		d, err := api.Deployment(ctx, app.ID, p.deployment)
		if err != nil {
			t.Fatalf("deployment of %s: %v", p.name, err)
		}
		switch d.Status {
		case controller.DeploymentComplete:
			acked = append(acked, p.name)
			if rel.Env[p.name] == "" {
				lost = append(lost, p.name)
			}
		case controller.DeploymentFailed:
			deployFailed++
		default:
			t.Errorf("deployment of %s is %s after the last one finished", p.name, d.Status)
		}
	}
	fmt.Printf("BENCH faults: %d env changes acknowledged (deployed); %d taken whose deployment failed; %d refused while parts were down; %d of %d requests failed\n",
		len(acked), deployFailed, refused, failed, reqs)
	if len(acked) < 5 {
		t.Errorf("only %d env changes were acknowledged: the loop did not run through the faults", len(acked))
	}
	if len(lost) > 0 {
		t.Errorf("%d acknowledged env changes are not in the latest release (v%d): %v", len(lost), rel.Version, lost)
	}

	// The formation is whole, and no job beyond it runs.
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		ds, _ := api.Deployments(context.Background(), app.ID)
		for _, d := range ds {
			t.Logf("deployment %s: %s → %s %s %v %s", d.ID, d.OldReleaseID, d.NewReleaseID, d.Status, d.Processes, d.Error)
		}
		fs, _ := api.Formations(context.Background(), app.ID)
		for _, f := range fs {
			t.Logf("formation of %s: %v", f.ReleaseID, f.Processes)
		}
		t.Logf("current release %s", rel.ID)
	})
	poll.UntilNil(t, 2*time.Minute, "web=2 of the latest release up, nothing else", func() error {
		jobs, err := api.ActiveJobs(ctx, app.ID)
		if err != nil {
			return err
		}
		var up, other []string
		for _, j := range jobs {
			if j.Type == "web" && j.State == controller.JobStateUp && j.ReleaseID == rel.ID {
				up = append(up, j.ID)
			} else {
				other = append(other, j.ID+" "+string(j.State))
			}
		}
		if len(up) != 2 || len(other) > 0 {
			return fmt.Errorf("up %v, others %v", up, other)
		}
		running, err := hosts.ListJobs(ctx)
		if err != nil {
			return err
		}
		var onHost []string
		for _, j := range running {
			if j.Job.Metadata[controller.JobMetaAppID] == app.ID && !j.State.Terminal() {
				onHost = append(onHost, j.Job.ID)
			}
		}
		slices.Sort(onHost)
		slices.Sort(up)
		if !slices.Equal(onHost, up) {
			return fmt.Errorf("the host runs %v of the app, the controller has %v up", onHost, up)
		}
		return nil
	})
	// Only requests in flight on a backend being replaced may fail: at
	// most one per worker and deploy.
	if failed > int64(2*max(len(patched), 1)) {
		t.Errorf("%d of %d requests failed", failed, reqs)
	}
	if err := get("127.0.0.1", domain); err != nil {
		t.Errorf("the app after the faults: %v", err)
	}
}

// envChanges sets a new variable (FAULT_<n>) through the controller's env
// patch and waits for its deployment to finish, as `flynn env set` does,
// one change after another, recording the ones the controller took with
// their deployments.
type envChanges struct {
	done    chan struct{}
	wg      sync.WaitGroup
	mu      sync.Mutex
	patched []patched
	refused atomic.Int64
	// deployed counts the changes whose deployment completed.
	deployed atomic.Int64
}

// patched is an env change the controller took, and its deployment.
type patched struct{ name, deployment string }

func startEnvChanges(api *client.Client, appID string) *envChanges {
	c := &envChanges{done: make(chan struct{})}
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		tick := time.NewTicker(200 * time.Millisecond)
		defer tick.Stop()
		for n := 1; ; n++ {
			select {
			case <-c.done:
				return
			case <-tick.C:
			}
			name := "FAULT_" + strconv.Itoa(n)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			out, err := api.PatchRelease(ctx, appID, controller.ReleasePatch{Env: &controller.EnvPatch{Set: map[string]string{name: strconv.Itoa(n)}}})
			cancel()
			if err != nil || out.Deployment == nil {
				c.refused.Add(1)
				continue
			}
			c.mu.Lock()
			c.patched = append(c.patched, patched{name, out.Deployment.ID})
			c.mu.Unlock()
			c.waitDeployment(api, appID, out.Deployment.ID)
		}
	}()
	return c
}

// waitDeployment waits up to a minute, or until the loop stops, for a
// deployment to finish; its outcome is read at the end.
func (c *envChanges) waitDeployment(api *client.Client, appID, id string) {
	deadline := time.Now().Add(time.Minute)
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for time.Now().Before(deadline) {
		select {
		case <-c.done:
			return
		case <-tick.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		d, err := api.Deployment(ctx, appID, id)
		cancel()
		if err == nil && (d.Status == controller.DeploymentComplete || d.Status == controller.DeploymentFailed) {
			if d.Status == controller.DeploymentComplete {
				c.deployed.Add(1)
			}
			return
		}
	}
}

func (c *envChanges) stop() (taken []patched, refused int64) {
	close(c.done)
	c.wg.Wait()
	return c.patched, c.refused.Load()
}

// killComponent SIGKILLs the container of the platform app's running job
// on node 1 and returns the job's id.
func killComponent(t *testing.T, ctx context.Context, hosts *hostclient.Client, appName string) string {
	t.Helper()
	jobs, err := hosts.ListJobs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, j := range jobs {
		if j.Job.Metadata[controller.JobMetaAppName] == appName && j.State == host.StateUp {
			if out, err := exec.Command("docker", "kill", "--signal", "KILL", "flynn-"+j.Job.ID).CombinedOutput(); err != nil {
				t.Fatalf("docker kill %s's job %s: %v\n%s", appName, j.Job.ID, err, out)
			}
			return j.Job.ID
		}
	}
	t.Fatalf("no running job of %s on node 1", appName)
	return ""
}

// componentUp reports whether another job of the platform app than the
// killed one is up on node 1.
func componentUp(ctx context.Context, hosts *hostclient.Client, appName, killed string) error {
	jobs, err := hosts.ListJobs(ctx)
	if err != nil {
		return err
	}
	for _, j := range jobs {
		if j.Job.Metadata[controller.JobMetaAppName] == appName && j.State == host.StateUp && j.Job.ID != killed {
			return nil
		}
	}
	return fmt.Errorf("no job of %s up but the killed %s", appName, killed)
}

// killHostDaemon SIGKILLs node 1's flynn-host (not its jobs) and starts it
// again the way install-flynn does.
func killHostDaemon(t *testing.T, repo string) {
	t.Helper()
	if _, err := os.Stat("/run/systemd/system"); err == nil {
		if out, err := exec.Command("systemctl", "kill", "--signal=KILL", "flynn-host").CombinedOutput(); err != nil {
			t.Fatalf("systemctl kill flynn-host: %v\n%s", err, out)
		}
		startHost(t, repo)
		return
	}
	pid, err := os.ReadFile("/run/flynn-host.pid")
	if err != nil {
		t.Fatalf("flynn-host pid: %v", err)
	}
	p := strings.TrimSpace(string(pid))
	if out, err := exec.Command("kill", "-KILL", p).CombinedOutput(); err != nil {
		t.Fatalf("kill -KILL flynn-host: %v\n%s", err, out)
	}
	poll.Until(t, 30*time.Second, "flynn-host (pid "+p+") gone", func() bool {
		return exec.Command("kill", "-0", p).Run() != nil
	})
	startHost(t, repo)
}

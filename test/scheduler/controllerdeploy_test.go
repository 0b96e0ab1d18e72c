package scheduler_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/openflynn/flynn/controller"
	"github.com/openflynn/flynn/controller/scheduler"
	hostclient "github.com/openflynn/flynn/host/client"
	"github.com/openflynn/flynn/pkg/poll"
)

// TestControllerDeployOneByOne deploys a new release of the controller
// itself, which runs as jobs on flynn-host with a port from the host's
// range and is found through discoverd, one by one, while clients loop
// GET /apps through the router: not one request may fail. The scheduler
// carrying the deployment out talks to the very controller it replaces.
func TestControllerDeployOneByOne(t *testing.T) {
	c := startCluster(t, clusterOptions{Scheduler: scheduler.Config{DeployTimeout: 60 * time.Second}, SelfHosted: true})
	ctx := context.Background()
	app, err := c.ctrl.App(ctx, "controller")
	if err != nil {
		t.Fatal(err)
	}
	v1, err := c.ctrl.AppRelease(ctx, app.ID)
	if err != nil {
		t.Fatal(err)
	}
	poll.Until(t, 30*time.Second, "the scheduler to adopt the bootstrapped controller", func() bool {
		jobs, err := c.ctrl.ActiveJobs(ctx, app.ID)
		return err == nil && len(jobs) == 1 && jobs[0].State == controller.JobStateUp
	})
	poll.Until(t, 10*time.Second, "GET /apps through the router", func() bool { return c.getApps() == nil })

	var (
		stop     atomic.Bool
		requests atomic.Int64
		mu       sync.Mutex
		failures []string
		wg       sync.WaitGroup
	)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				err := c.getApps()
				requests.Add(1)
				if err != nil {
					mu.Lock()
					failures = append(failures, err.Error())
					mu.Unlock()
				}
			}
		}()
	}
	v2 := &controller.Release{AppID: app.ID, ArtifactID: v1.ArtifactID, Env: maps.Clone(v1.Env), Processes: v1.Processes}
	v2.Env["VERSION"] = "2"
	must(t, c.ctrl.CreateRelease(ctx, v2))
	poll.Until(t, 10*time.Second, "the request loop to run", func() bool { return requests.Load() > 50 })
	before := requests.Load()
	start := time.Now()
	if _, err := c.ctrl.SetAppRelease(ctx, app.ID, v2.ID); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, 90*time.Second, "the controller's deployment to complete", func() bool {
		d := c.latestDeployment(app)
		return d != nil && d.NewReleaseID == v2.ID && (d.Status == controller.DeploymentComplete || d.Status == controller.DeploymentFailed)
	})
	took := time.Since(start)
	if d := c.latestDeployment(app); d.Status != controller.DeploymentComplete {
		t.Fatalf("deployment %s: %s\n%s", d.Status, d.Error, c.endedJobLogs(app.ID))
	}
	poll.Until(t, 30*time.Second, "the old controller's job to end", func() bool { return len(c.liveJobs(v1)) == 0 && len(c.upJobs(v2)) == 1 })
	during := requests.Load() - before
	replaced := time.Since(start)
	// Requests go on a moment after the old controller is gone.
	after := requests.Load()
	poll.Until(t, 10*time.Second, "requests after the deployment", func() bool { return requests.Load() > after+50 })
	stop.Store(true)
	wg.Wait()
	t.Logf("one-by-one deployment of the controller: complete after %s, old job gone after %s; %d requests from the deploy to the old job's end, %d in all, %d failed",
		took.Round(time.Millisecond), replaced.Round(time.Millisecond), during, requests.Load(), len(failures))
	if len(failures) > 0 {
		t.Errorf("%d of %d requests failed during the deployment, e.g. %q", len(failures), requests.Load(), failures[0])
	}
	if during < 50 {
		t.Errorf("only %d requests ran during the deployment; the loop did not exercise it", during)
	}
	// The new controller serves the scheduler and the router: a change
	// made now reaches both.
	probe, art := c.app("probe")
	rel := c.release(probe, art, []string{"serve"}, nil)
	if _, err := c.ctrl.SetAppRelease(ctx, probe.ID, rel.ID); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, 30*time.Second, "an app deployed after the controller's deployment to answer", func() bool {
		status, _, err := c.get("probe.test")
		return err == nil && status == http.StatusOK
	})
}

// getApps asks the controller for its apps through the router, as the
// CLI does, and fails on anything but 200.
func (c *cluster) getApps() error {
	req, _ := http.NewRequest(http.MethodGet, c.router+"/apps", nil)
	req.Host = "controller.test"
	req.SetBasicAuth("", key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("GET /apps: read: %w", err)
	}
	var apps []*controller.App
	if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &apps) != nil || len(apps) == 0 {
		return fmt.Errorf("GET /apps: %s %q, want 200 and the apps", resp.Status, body)
	}
	return nil
}

// endedJobLogs returns the output of an app's jobs that ended, for a
// failure message.
func (c *cluster) endedJobLogs(appID string) string {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	jobs, err := c.host.ListJobs(ctx)
	if err != nil {
		return err.Error()
	}
	var b strings.Builder
	for _, j := range jobs {
		if !j.State.Terminal() || j.Job.Metadata[controller.JobMetaAppID] != appID {
			continue
		}
		fmt.Fprintf(&b, "job %s (%s):\n", j.Job.ID, j.State)
		logs, err := c.host.Log(ctx, j.Job.ID, hostclient.LogOptions{})
		if err != nil {
			fmt.Fprintf(&b, "  %v\n", err)
			continue
		}
		for {
			l, err := logs.Next()
			if err != nil {
				break
			}
			fmt.Fprintf(&b, "  %s", l.Data)
		}
		logs.Close()
	}
	return b.String()
}

package bootstrap

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/openflynn/flynn/controller"
	"github.com/openflynn/flynn/host"
)

// teardown stops the jobs of the cluster already on this host (the
// schedulers first, so that nothing starts them again) and removes the
// volumes the manifest's run-app steps mount, so that a forced run starts
// from empty databases.
func (r *run) teardown(ctx context.Context) error {
	stopper, ok := r.cfg.Host.(JobStopper)
	if !ok {
		return errors.New("force: this host client cannot stop jobs")
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	for {
		jobs, err := r.bootstrappedJobs(ctx)
		if err != nil {
			return err
		}
		if len(jobs) == 0 {
			break
		}
		// While a scheduler lives it restarts what is stopped: stop it
		// first, everything else once it is gone.
		var schedulers, others []*host.ActiveJob
		for _, j := range jobs {
			if j.Job.Metadata[controller.JobMetaAppName] == "scheduler" {
				schedulers = append(schedulers, j)
			} else {
				others = append(others, j)
			}
		}
		victims := others
		if len(schedulers) > 0 {
			victims = schedulers
		}
		for _, j := range victims {
			if j.State == host.StateStopping {
				continue
			}
			if _, err := stopper.StopJob(ctx, j.Job.ID); err != nil {
				return fmt.Errorf("force: stop job %s: %w", j.Job.ID, err)
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("force: %d jobs still running", len(jobs))
		case <-time.After(r.cfg.PollInterval):
		}
	}
	if r.cfg.RemoveVolume == nil {
		return nil
	}
	for _, name := range manifestVolumes(r.m) {
		if err := r.cfg.RemoveVolume(name); err != nil {
			return fmt.Errorf("force: remove volume %s: %w", name, err)
		}
	}
	return nil
}

// manifestVolumes lists the named volumes the manifest's releases mount.
func manifestVolumes(m *Manifest) []string {
	var out []string
	for _, s := range m.Steps {
		if s.Action != "run-app" {
			continue
		}
		var a runApp
		if strictDecode(s.Raw, &a) != nil {
			continue
		}
		procs := a.Release.Processes
		for _, typ := range slices.Sorted(maps.Keys(procs)) {
			for _, v := range procs[typ].Volumes {
				out = append(out, v.Name)
			}
		}
	}
	return out
}

package daemon

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"time"

	"github.com/openflynn/flynn/host"
	"github.com/openflynn/flynn/host/logbuf"
)

// adopt rebuilds the daemon's jobs from the job records and the containers
// a previous daemon left: running containers are supervised again with
// their ports kept, containers that exited meanwhile are recorded with
// their exit status, and records whose container vanished become failed.
// Nothing is started here; persistent jobs that ended are listed in
// d.revive for Start.
func (d *Daemon) adopt(ctx context.Context) error {
	records, err := loadRecords(d.cfg.StateDir)
	if err != nil {
		return err
	}
	containers, err := d.backend.List(ctx, map[string]string{LabelHostID: d.cfg.HostID})
	if err != nil {
		return err
	}
	seen := map[string]bool{}
	for _, c := range containers {
		id := c.Labels[LabelJobID]
		if id == "" || seen[id] {
			continue
		}
		rec := records[id]
		var jb *host.Job
		if raw := c.Labels[LabelJob]; raw != "" {
			var parsed host.Job
			if json.Unmarshal([]byte(raw), &parsed) == nil && parsed.ID == id {
				jb = &parsed
			}
		}
		if jb == nil && rec != nil {
			jb = rec.Job
		}
		if jb == nil {
			d.log.Warn("container without a readable job; leaving it alone", "container_id", short(c.ID), "job_id", id)
			continue
		}
		if c.HostNetwork && !jb.Config.HostNetwork {
			// Started before app jobs had a network of their own: it is
			// what it always was, and if persistent starts again as such.
			jb.Config.HostNetwork = true
			d.log.Info("adopted job runs on the host network", "job_id", id)
		}
		seen[id] = true
		if rec != nil && rec.State.Terminal() {
			if err := d.addFinished(rec); err != nil {
				return err
			}
			continue
		}
		a := &host.ActiveJob{Job: jb, HostID: d.cfg.HostID, CreatedAt: c.StartedAt, StartedAt: c.StartedAt}
		if rec != nil {
			a.CreatedAt = rec.CreatedAt
		}
		a.ContainerID = c.ID
		if err := d.adoptContainer(ctx, a, c, rec != nil && rec.State == host.StateStopping); err != nil {
			return err
		}
	}
	for id, rec := range records {
		if seen[id] {
			continue
		}
		if !rec.State.Terminal() {
			rec.State = host.StateFailed
			rec.Error = "container vanished while flynn-host was down"
			rec.EndedAt = time.Now().UTC()
			if rec.Job != nil && rec.Job.Config.Persistent {
				d.revive = append(d.revive, rec)
			}
		}
		if err := d.addFinished(rec); err != nil {
			return err
		}
	}
	d.collect()
	return nil
}

// adoptContainer takes over one container of an unfinished job.
func (d *Daemon) adoptContainer(ctx context.Context, a *host.ActiveJob, c Container, wasStopping bool) error {
	id := a.Job.ID
	lg, err := logbuf.Open(filepath.Join(logsDir(d.cfg.StateDir), id), d.cfg.LogSegmentSize)
	if err != nil {
		return fmt.Errorf("open log of job %s: %w", id, err)
	}
	j := &job{id: id, log: lg, done: make(chan struct{}), active: *a, stopping: wasStopping}
	if !c.Running {
		// It ended while no daemon watched: keep the output it wrote meanwhile.
		if err := d.backend.Logs(ctx, c.ID, lg.LastTime(), lg.Write); err != nil {
			d.log.Warn("read logs of exited job", "job_id", id, "err", err)
		}
		_ = lg.Finish()
		code := c.ExitCode
		j.active.ExitStatus = &code
		j.active.EndedAt = c.FinishedAt.UTC()
		j.active.State = host.StateCrashed
		if code == 0 || wasStopping {
			j.active.State = host.StateDown
		}
		close(j.done)
		d.mu.Lock()
		d.jobs[id] = j
		d.persistLocked(j)
		d.mu.Unlock()
		d.log.Info("job ended while the daemon was down", "job_id", id, "exit_status", code)
		if a.Job.Config.Persistent && !wasStopping {
			ended := j.active
			d.revive = append(d.revive, &ended)
		}
		return nil
	}
	var fixed []int
	for _, p := range a.Job.Config.Ports {
		fixed = append(fixed, p.Port)
	}
	if err := d.ports.Reserve(id, fixed...); err != nil {
		d.log.Error("re-adopted job's ports are taken", "job_id", id, "err", err)
	}
	j.active.State = host.StateStarting
	if wasStopping {
		j.active.State = host.StateStopping
	}
	d.mu.Lock()
	d.jobs[id] = j
	d.persistLocked(j)
	d.mu.Unlock()
	d.log.Info("re-adopted running job", "job_id", id, "container_id", short(c.ID))
	d.supervise(j, lg.LastTime())
	if wasStopping {
		d.wg.Add(1)
		go func() {
			defer d.wg.Done()
			d.terminate(j)
		}()
	}
	return nil
}

// addFinished records a job that had ended before this daemon started.
func (d *Daemon) addFinished(a *host.ActiveJob) error {
	lg, err := logbuf.Open(filepath.Join(logsDir(d.cfg.StateDir), a.Job.ID), d.cfg.LogSegmentSize)
	if err != nil {
		return fmt.Errorf("open log of job %s: %w", a.Job.ID, err)
	}
	_ = lg.Finish()
	j := &job{id: a.Job.ID, log: lg, done: make(chan struct{}), active: *a}
	close(j.done)
	d.mu.Lock()
	d.jobs[j.id] = j
	d.persistLocked(j)
	d.mu.Unlock()
	return nil
}

package daemon

import (
	"context"
	"maps"
	"slices"
	"time"

	"github.com/openflynn/flynn/host"
	"github.com/openflynn/flynn/pkg/random"
)

// persistentUpTimeout bounds the wait for a revived persistent job to come
// up before the next one starts anyway.
const persistentUpTimeout = 2 * time.Minute

// revivePersistent starts again, under new ids, the persistent jobs that
// ended while no daemon ran, oldest first, each once the one before is up
// (or has given up), so discoverd runs before what registers in it and
// postgres before the controller. The scheduler then finds its components
// running (their metadata is kept) and starts the rest of every formation.
func (d *Daemon) revivePersistent(ended []*host.ActiveJob) {
	ctx, cancel := d.lifetime()
	defer cancel()
	slices.SortStableFunc(ended, func(a, b *host.ActiveJob) int { return a.CreatedAt.Compare(b.CreatedAt) })
	for _, old := range ended {
		jb := cloneJob(old.Job)
		jb.ID = d.cfg.HostID + "-" + random.UUID()
		log := d.log.With("job_id", jb.ID, "ended_job_id", old.Job.ID)
		events, unsubscribe := d.Subscribe(jb.ID)
		if _, err := d.AddJob(ctx, jb); err != nil {
			unsubscribe()
			log.Error("start persistent job again", "err", err)
			continue
		}
		log.Info("persistent job started again after the daemon restarted")
		d.waitUpOrEnded(ctx, jb.ID, events)
		unsubscribe()
		if ctx.Err() != nil {
			return
		}
	}
}

// reviveCrashed starts a persistent job that crashed while the daemon runs
// again, under a new id, when ReviveDelay later no live job of this host
// has the same metadata (the same app, release and process type): the
// scheduler starts replacements within a second, but the scheduler may be
// what crashed, and on a node of its own nothing else would start it, nor
// the controller's Postgres while the controller cannot answer it.
func (d *Daemon) reviveCrashed(ended *host.ActiveJob) {
	ctx, cancel := d.lifetime()
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		defer cancel()
		timer := time.NewTimer(d.cfg.ReviveDelay)
		defer timer.Stop()
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		for _, a := range d.Jobs() {
			if !a.State.Terminal() && maps.Equal(a.Job.Metadata, ended.Job.Metadata) {
				return // replaced
			}
		}
		jb := cloneJob(ended.Job)
		jb.ID = d.cfg.HostID + "-" + random.UUID()
		log := d.log.With("job_id", jb.ID, "ended_job_id", ended.Job.ID)
		if _, err := d.AddJob(ctx, jb); err != nil {
			log.Error("start crashed persistent job again", "err", err)
			return
		}
		log.Info("persistent job started again: it crashed and nothing replaced it", "after", d.cfg.ReviveDelay)
	}()
}

// waitUpOrEnded waits until job id is up or has ended, for at most
// persistentUpTimeout.
func (d *Daemon) waitUpOrEnded(ctx context.Context, id string, events <-chan *host.Event) {
	settled := func(s host.JobState) bool { return s == host.StateUp || s.Terminal() }
	if a, err := d.Job(id); err != nil || settled(a.State) {
		return
	}
	timeout := time.NewTimer(persistentUpTimeout)
	defer timeout.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timeout.C:
			d.log.Warn("persistent job not up in time; going on", "job_id", id, "after", persistentUpTimeout)
			return
		case e, ok := <-events:
			if !ok || settled(e.State) {
				return
			}
		}
	}
}

package daemon

import (
	"context"
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

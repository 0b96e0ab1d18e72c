package daemon

import (
	"maps"
	"slices"
	"time"

	"github.com/openflynn/flynn/host"
	"github.com/openflynn/flynn/pkg/random"
)

// revivePersistent starts again, under new ids, the persistent jobs that
// ended while no daemon ran, oldest first, without waiting for one to be
// up before the next: each waits for what it needs (the controller for
// its Postgres, Postgres for etcd through discoverd, flynn-host's
// registrations for discoverd), and one that gives up is revived by
// reviveCrashed. Creation order is no dependency order: on a node whose
// discoverd was replaced after its controller started, waiting for the
// controller to come up first kept discoverd down for minutes. The
// scheduler then finds its components running (their metadata is kept)
// and starts the rest of every formation.
func (d *Daemon) revivePersistent(ended []*host.ActiveJob) {
	ctx, cancel := d.lifetime()
	defer cancel()
	slices.SortStableFunc(ended, func(a, b *host.ActiveJob) int { return a.CreatedAt.Compare(b.CreatedAt) })
	for _, old := range ended {
		jb := cloneJob(old.Job)
		jb.ID = d.cfg.HostID + "-" + random.UUID()
		log := d.log.With("job_id", jb.ID, "ended_job_id", old.Job.ID)
		if _, err := d.AddJob(ctx, jb); err != nil {
			if ctx.Err() != nil {
				return
			}
			log.Error("start persistent job again", "err", err)
			continue
		}
		log.Info("persistent job started again after the daemon restarted")
	}
}

// reviveCrashed starts a persistent job that crashed while the daemon runs
// again, under a new id, when ReviveDelay later no live job of this host
// has the same metadata (the same app, release and process type): the
// scheduler starts replacements within a second, but the scheduler may be
// what crashed, and on a node of its own nothing else would start it, nor
// the controller's Postgres while the controller cannot answer it. A
// start that fails (the port of the killed job not yet free, say) is
// tried again, at growing intervals up to reviveRetryMax, until one
// succeeds, something else replaces the job, or the daemon closes: after
// discoverd was killed, one failed start kept it down for good, and the
// scheduler cannot start it without discoverd.
func (d *Daemon) reviveCrashed(ended *host.ActiveJob) {
	ctx, cancel := d.lifetime()
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		defer cancel()
		timer := time.NewTimer(d.cfg.ReviveDelay)
		defer timer.Stop()
		for delay := d.cfg.ReviveDelay; ; {
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
			_, err := d.AddJob(ctx, jb)
			if err == nil {
				log.Info("persistent job started again: it crashed and nothing replaced it", "after", d.cfg.ReviveDelay)
				return
			}
			if ctx.Err() != nil {
				return
			}
			delay = min(2*delay, reviveRetryMax)
			log.Error("start crashed persistent job again; trying again", "err", err, "in", delay)
			timer.Reset(delay)
		}
	}()
}

// reviveRetryMax bounds the interval between tries to start a crashed
// persistent job again.
const reviveRetryMax = 30 * time.Second

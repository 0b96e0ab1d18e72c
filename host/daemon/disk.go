package daemon

import (
	"context"
	"time"
)

// watchDisk measures what a job with a disk limit has written to its own
// filesystem every DiskCheckInterval and kills it once that is past the
// limit; the job then ends failed (see finish). Jobs without a limit have
// no watcher. A job may write past its limit for up to one interval
// before it is caught: the limit protects the node's disk from a job
// filling it, not to the byte.
func (d *Daemon) watchDisk(ctx context.Context, j *job, cid string, limit int64) {
	t := time.NewTicker(d.cfg.DiskCheckInterval)
	defer t.Stop()
	warned := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		used, err := d.backend.DiskUsage(ctx, cid, limit)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			// Logged once: it is the same error every few seconds.
			if !warned {
				d.log.Warn("measure job disk use; its disk limit is not enforced while this fails", "job_id", j.id, "err", err)
				warned = true
			}
			continue
		}
		if used <= limit {
			continue
		}
		d.mu.Lock()
		if j.active.State.Terminal() {
			d.mu.Unlock()
			return
		}
		j.diskUsed = used
		stopChecks := j.stopChecks
		d.mu.Unlock()
		d.log.Warn("job wrote past its disk limit; killing it", "job_id", j.id, "used", used, "limit", limit)
		if stopChecks != nil {
			stopChecks()
		}
		d.deregister(j)
		if err := d.backend.Signal(ctx, cid, "SIGKILL"); err != nil {
			d.log.Warn("kill job past its disk limit", "job_id", j.id, "err", err)
		}
		return
	}
}

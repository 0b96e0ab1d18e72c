package daemon

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/openflynn/flynn/host"
	"github.com/openflynn/flynn/pkg/httpjson"
)

// maxCPUWindow is the longest time a job's CPU percentage is measured
// over: a rate over a longer time says little about the job now, so a
// job whose last reading is older is read twice.
const maxCPUWindow = time.Minute

// statsConcurrency bounds the stats reads in flight for one list or
// scrape. It is high because Docker 20.10 answers a read only at its
// collector's next tick, once a second, whatever the number waiting:
// reads in batches of a few would take a second a batch, 64 read a
// hundred jobs in two ticks.
const statsConcurrency = 64

// statsTarget is what reading a running job's stats takes, copied out of
// the lock.
type statsTarget struct {
	id        string
	container string
	started   time.Time
	memLimit  int64
	meta      map[string]string
}

// running reports whether the job's container runs, and what reading its
// stats takes. Call with d.mu held.
func (j *job) running() (statsTarget, bool) {
	a := &j.active
	if !a.State.Running() || a.ContainerID == "" {
		return statsTarget{}, false
	}
	return statsTarget{id: j.id, container: a.ContainerID, started: a.StartedAt, memLimit: a.Job.Config.Resources.Memory, meta: a.Job.Metadata}, true
}

// runningJobs returns the jobs whose containers run.
func (d *Daemon) runningJobs() []statsTarget {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []statsTarget
	for _, j := range d.jobs {
		if t, ok := j.running(); ok {
			out = append(out, t)
		}
	}
	return out
}

// JobStats reads a running job's CPU and memory use; a job that does not
// run is a conflict.
func (d *Daemon) JobStats(ctx context.Context, id string) (*host.JobStats, error) {
	d.mu.Lock()
	j, ok := d.jobs[id]
	var t statsTarget
	var runs bool
	var state host.JobState
	if ok {
		t, runs = j.running()
		state = j.active.State
	}
	d.mu.Unlock()
	if !ok {
		return nil, httpjson.NotFound("job %s not found", id)
	}
	if !runs {
		return nil, httpjson.Errorf(httpjson.CodeConflict, "job %s is %s: only a running job has stats", id, state)
	}
	return d.readStats(ctx, t)
}

// JobsWithStats is Jobs with each running job's Stats, read concurrently;
// a job whose stats could not be read before ctx ended has none.
func (d *Daemon) JobsWithStats(ctx context.Context) []*host.ActiveJob {
	jobs := d.Jobs()
	var mu sync.Mutex
	stats := map[string]*host.JobStats{}
	forEachJob(ctx, d.runningJobs(), func(t statsTarget) {
		s, err := d.readStats(ctx, t)
		if err != nil {
			d.log.Debug("read job stats", "job_id", t.id, "err", err)
			return
		}
		mu.Lock()
		stats[t.id] = s
		mu.Unlock()
	})
	for _, j := range jobs {
		j.Stats = stats[j.Job.ID]
	}
	return jobs
}

// readStats reads a job's stats, twice when it has no recent reading to
// measure its CPU use against.
func (d *Daemon) readStats(ctx context.Context, t statsTarget) (*host.JobStats, error) {
	s, err := d.backend.Stats(ctx, t.container)
	if err != nil {
		return nil, statsError(t.id, err)
	}
	pct, ok := d.cpu.observe(t.id, s.Read, s.CPU)
	if !ok {
		timer := time.NewTimer(d.cfg.CPUWindow)
		select {
		case <-ctx.Done():
		case <-timer.C:
			if again, err := d.backend.Stats(ctx, t.container); err == nil {
				s = again
				pct, ok = d.cpu.observe(t.id, s.Read, s.CPU)
			}
		}
		timer.Stop()
	}
	if !ok {
		pct = lifetimeCPU(s, t.started)
	}
	out := &host.JobStats{CPUPercent: pct, CPUSeconds: s.CPU.Seconds(), MemoryBytes: s.Memory, Time: s.Read}
	if t.memLimit > 0 {
		out.MemoryLimitBytes = s.MemoryLimit
	}
	return out, nil
}

// statsError words a failed read: a job that ended meanwhile is a
// conflict, like one that had ended before.
func statsError(id string, err error) error {
	if errors.Is(err, ErrNotRunning) || errors.Is(err, ErrContainerNotFound) {
		return httpjson.Errorf(httpjson.CodeConflict, "job %s is not running", id)
	}
	return fmt.Errorf("read stats of job %s: %w", id, err)
}

// lifetimeCPU is the job's CPU use in percent of one CPU, averaged over
// its life so far.
func lifetimeCPU(s ContainerStats, started time.Time) float64 {
	life := s.Read.Sub(started)
	if started.IsZero() || life <= 0 {
		return 0
	}
	return percent(s.CPU, life)
}

func percent(cpu, over time.Duration) float64 {
	return float64(cpu) / float64(over) * 100
}

// forEachJob calls fn for each target, statsConcurrency at a time, and
// returns once every call has returned; the targets not begun when ctx
// ends are skipped.
func forEachJob(ctx context.Context, targets []statsTarget, fn func(statsTarget)) {
	work := make(chan statsTarget)
	var wg sync.WaitGroup
	for range min(len(targets), statsConcurrency) {
		wg.Go(func() {
			for t := range work {
				fn(t)
			}
		})
	}
feed:
	for _, t := range targets {
		select {
		case work <- t:
		case <-ctx.Done():
			break feed
		}
	}
	close(work)
	wg.Wait()
}

// cpuMeter turns readings of the jobs' cumulative CPU time into rates,
// each over the time since the job's previous reading: the runtime's
// one-shot readings carry no rate of their own.
type cpuMeter struct {
	min, max time.Duration

	mu   sync.Mutex
	jobs map[string]cpuReading
}

// cpuReading is a job's last reading that a rate was measured from, and
// that rate.
type cpuReading struct {
	at      time.Time
	cpu     time.Duration
	percent float64
	rated   bool // percent holds a rate measured up to at
}

func newCPUMeter(minWindow, maxWindow time.Duration) *cpuMeter {
	return &cpuMeter{min: minWindow, max: maxWindow, jobs: map[string]cpuReading{}}
}

// observe records job id's reading of cpu taken at at, and returns the
// job's CPU use in percent of one CPU over the window since its previous
// reading. It returns false when there is no rate to give: no previous
// reading within the longest window, or one closer than the shortest
// with no rate measured up to it; a reading a moment later then gives
// one.
func (m *cpuMeter) observe(id string, at time.Time, cpu time.Duration) (float64, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	prev, ok := m.jobs[id]
	window := at.Sub(prev.at)
	switch {
	case ok && window >= m.min && window <= m.max:
		used := max(cpu-prev.cpu, 0) // a counter that went back: the container restarted
		pct := percent(used, window)
		m.jobs[id] = cpuReading{at: at, cpu: cpu, percent: pct, rated: true}
		return pct, true
	case ok && window >= 0 && window < m.min:
		// Too close to the last reading for a rate of its own (two
		// readers at once, or one tick of the runtime's): the last rate
		// is as recent as any, and the last reading stays the base so
		// that the next window is long enough.
		return prev.percent, prev.rated
	}
	m.jobs[id] = cpuReading{at: at, cpu: cpu}
	return 0, false
}

// forget drops a job that ended.
func (m *cpuMeter) forget(id string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.jobs, id)
}

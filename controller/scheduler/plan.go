package scheduler

import (
	"cmp"
	"slices"

	"github.com/openflynn/flynn/host"
)

// Key names one process type of one release of an app: the unit the
// scheduler counts jobs by.
type Key struct {
	AppID     string
	ReleaseID string
	Type      string
}

// Want is the desired count of one Key. For an omni type Count is per host.
type Want struct {
	Key   Key
	Count int
	Omni  bool
}

// Job is a job as the scheduler sees it on a host.
type Job struct {
	ID     string
	HostID string
	Key    Key
	State  host.JobState
	// ExitStatus is set once the job has exited.
	ExitStatus *int
	// Error is why a failed job did not start, as its host said.
	Error string
}

// Host is a host the scheduler may place jobs on, with the jobs it runs.
type Host struct {
	ID   string
	Jobs []*Job
	// Knowledge is how far Jobs can be trusted; the zero value, Current,
	// is a host whose event stream is up.
	Knowledge Knowledge
}

// Knowledge is how much a round knows of a host's jobs.
type Knowledge int

const (
	// Current: the host's event stream is up, so Jobs are what it runs.
	Current Knowledge = iota
	// Stale: the stream is down (reconnecting). Jobs are the last ones
	// known; the host may still run them, or may have lost them.
	Stale
	// Blind: the host was never listed since the scheduler began to
	// follow it, so it may run any job at all.
	Blind
)

// Snapshot is the read-only state one planning round works from.
type Snapshot struct {
	Hosts []*Host
	Wants []Want
	// Held are keys that may not start jobs now (crash backoff, or a
	// stop-first deployment moving its formations); their surplus jobs
	// are still stopped, but not the unwanted jobs they replace.
	Held map[Key]bool
}

// Start asks for one job of Key on HostID.
type Start struct {
	Key    Key
	HostID string
}

// Stop asks for a job to be stopped.
type Stop struct {
	Job    *Job
	Reason string
}

// Plan is what a round decides: jobs to start and jobs to stop.
type Plan struct {
	Starts []Start
	Stops  []Stop
}

// Empty reports whether the plan changes nothing.
func (p *Plan) Empty() bool { return len(p.Starts) == 0 && len(p.Stops) == 0 }

// live reports whether a job counts towards its formation: it runs or is
// about to.
func live(s host.JobState) bool {
	return s == host.StatePending || s == host.StateStarting || s == host.StateUp
}

// Compute decides how to make the hosts run exactly what the wants ask.
// It is pure: the same snapshot always yields the same plan.
//
// Placement spreads a process type over hosts: each new job goes to the
// host with the fewest jobs of that type, then the fewest jobs overall,
// then the lowest id. Surplus jobs are stopped from the host with the
// most jobs of the type, jobs that are not up yet first. Jobs whose key is
// wanted by no formation are stopped.
//
// Only Current hosts get starts and stops: the others cannot be reached
// or cannot be trusted. A host that is not Current must neither make the
// scheduler start duplicates of its jobs elsewhere nor hold up the other
// hosts' keys, so:
//   - a Stale host's last known live jobs still count towards their
//     formations, as if they ran (starting replacements for jobs that may
//     well run would duplicate them; if the host really lost them, they
//     are replaced once it reconnects or leaves discoverd). Keys without a
//     job there are planned as usual.
//   - a surplus is stopped only while the Current hosts alone keep the
//     wanted count, so that a scale-down never leaves a key resting on
//     jobs that may be gone: with web=1 wanted, one job on a Stale host and
//     one on a Current host, neither stops until the Stale host is back.
//   - while any host is Blind, no key starts jobs except omni ones (whose
//     count is per host): any other start could duplicate a job the Blind
//     host runs, as a restarted scheduler would if it planned before every
//     host answered. Stops follow the rule above, which holds for them too.
func Compute(s *Snapshot) *Plan {
	plan := &Plan{}
	hosts := slices.Clone(s.Hosts)
	slices.SortFunc(hosts, func(a, b *Host) int { return cmp.Compare(a.ID, b.ID) })
	var current []*Host // the hosts the plan may act on
	blind := false
	for _, h := range hosts {
		switch h.Knowledge {
		case Current:
			current = append(current, h)
		case Blind:
			blind = true
		}
	}
	isCurrent := map[string]bool{}
	for _, h := range current {
		isCurrent[h.ID] = true
	}

	// Live jobs by key and host, and each host's load.
	byKey := map[Key]map[string][]*Job{}
	load := map[string]int{}
	for _, h := range hosts {
		for _, j := range h.Jobs {
			if !live(j.State) {
				continue
			}
			load[h.ID]++
			if byKey[j.Key] == nil {
				byKey[j.Key] = map[string][]*Job{}
			}
			byKey[j.Key][h.ID] = append(byKey[j.Key][h.ID], j)
		}
	}

	wanted := map[Key]bool{}
	wants := slices.Clone(s.Wants)
	slices.SortFunc(wants, func(a, b Want) int { return compareKeys(a.Key, b.Key) })
	for _, w := range wants {
		wanted[w.Key] = true
		perHost := byKey[w.Key]
		if w.Omni {
			for _, h := range current {
				have := perHost[h.ID]
				for i := len(have); i < w.Count && !s.Held[w.Key]; i++ {
					plan.Starts = append(plan.Starts, Start{Key: w.Key, HostID: h.ID})
					load[h.ID]++
				}
				for _, j := range surplus(have, w.Count) {
					plan.Stops = append(plan.Stops, Stop{Job: j, Reason: "more than the omni count on its host"})
				}
			}
			continue
		}
		total, onCurrent := 0, 0
		counts := map[string]int{}
		for hostID, jobs := range perHost {
			counts[hostID] = len(jobs)
			total += len(jobs)
			if isCurrent[hostID] {
				onCurrent += len(jobs)
			}
		}
		for ; total < w.Count && !s.Held[w.Key] && !blind && len(current) > 0; total++ {
			best := current[0].ID
			for _, h := range current[1:] {
				if counts[h.ID] < counts[best] || (counts[h.ID] == counts[best] && load[h.ID] < load[best]) {
					best = h.ID
				}
			}
			plan.Starts = append(plan.Starts, Start{Key: w.Key, HostID: best})
			counts[best]++
			load[best]++
		}
		for ; total > w.Count && onCurrent > w.Count; total, onCurrent = total-1, onCurrent-1 {
			var victimHost string
			for _, h := range current {
				if counts[h.ID] > 0 && (victimHost == "" || counts[h.ID] > counts[victimHost]) {
					victimHost = h.ID
				}
			}
			jobs := perHost[victimHost]
			j := surplus(jobs, len(jobs)-1)[0]
			perHost[victimHost] = slices.DeleteFunc(jobs, func(x *Job) bool { return x == j })
			counts[victimHost]--
			plan.Stops = append(plan.Stops, Stop{Job: j, Reason: "scaled down"})
		}
	}

	// Jobs nothing wants any more: a removed formation or a deleted app.
	// Those on hosts that are not Current go once their host is back. A
	// job whose replacement (a wanted key of its app and type) is held
	// stays until a round may start that: a stop-first deployment moves
	// both formations while the new key is held, and a round that lists
	// them before the hold ends must not stop the old jobs, discoverd's
	// say, without starting the new ones, which the next round, with
	// discoverd gone, might not be able to list.
	type appType struct{ app, typ string }
	heldTypes := map[appType]bool{}
	for _, w := range s.Wants {
		if s.Held[w.Key] {
			heldTypes[appType{w.Key.AppID, w.Key.Type}] = true
		}
	}
	for _, h := range current {
		for _, j := range h.Jobs {
			if live(j.State) && !wanted[j.Key] && !heldTypes[appType{j.Key.AppID, j.Key.Type}] {
				plan.Stops = append(plan.Stops, Stop{Job: j, Reason: "no formation wants it"})
			}
		}
	}
	return plan
}

// surplus returns the jobs to stop so that keep remain: jobs that are not
// up yet go first, then the newest (by id order, a stable stand-in).
func surplus(jobs []*Job, keep int) []*Job {
	if len(jobs) <= keep {
		return nil
	}
	sorted := slices.Clone(jobs)
	slices.SortStableFunc(sorted, func(a, b *Job) int {
		ua, ub := a.State == host.StateUp, b.State == host.StateUp
		if ua != ub {
			if ua {
				return 1
			}
			return -1
		}
		return cmp.Compare(b.ID, a.ID)
	})
	return sorted[:len(jobs)-keep]
}

func compareKeys(a, b Key) int {
	return cmp.Or(cmp.Compare(a.AppID, b.AppID), cmp.Compare(a.ReleaseID, b.ReleaseID), cmp.Compare(a.Type, b.Type))
}

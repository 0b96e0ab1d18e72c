package scheduler

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/openflynn/flynn/controller"
	"github.com/openflynn/flynn/host"
	"github.com/openflynn/flynn/pkg/httpjson"
	"github.com/openflynn/flynn/pkg/retry"
)

// pendingDeployment returns the deployment an event announces when it is
// one for the scheduler to carry out.
func pendingDeployment(e *controller.Event) *controller.Deployment {
	if e.ObjectType != "deployment" || e.Op != "create" {
		return nil
	}
	var d controller.Deployment
	if err := json.Unmarshal(e.Data, &d); err != nil || d.Status != controller.DeploymentPending {
		return nil
	}
	return &d
}

// deploy replaces the old release's jobs with the new release's by the
// deployment's strategy, moving formations and letting rounds start and
// stop jobs. A new job that does not come up within DeployTimeout rolls
// the formations back and fails the deployment with the reason.
func (s *Scheduler) deploy(ctx context.Context, d *controller.Deployment) {
	log := s.log.With("deployment.id", d.ID, "app.id", d.AppID, "old_release.id", d.OldReleaseID, "new_release.id", d.NewReleaseID, "strategy", d.Strategy)
	// report gives the deployment's end: complete or failed.
	report := func(status, reason string) {
		s.cfg.Metrics.deployment(status)
		if err := s.untilAnswered(ctx, log, "report deployment "+status, func(ctx context.Context) error {
			_, err := s.ctrl.UpdateDeployment(ctx, d.AppID, d.ID, controller.DeploymentUpdate{Status: status, Error: reason})
			return err
		}); err != nil {
			log.Warn("report deployment status failed", "status", status, "err", err)
		}
	}
	if _, err := s.ctrl.UpdateDeployment(ctx, d.AppID, d.ID, controller.DeploymentUpdate{Status: controller.DeploymentRunning}); err != nil {
		if httpjson.IsCode(err, httpjson.CodePreconditionFailed) {
			return // finished already (seen both in the start-up scan and as an event)
		}
		log.Warn("report deployment running failed", "err", err)
	}

	rel, err := s.ctrl.Release(ctx, d.NewReleaseID)
	if err != nil {
		report(controller.DeploymentFailed, fmt.Sprintf("read new release: %v", err))
		return
	}
	oldID, old, counts := s.deploymentBase(ctx, d)
	target := map[string]int{}
	for typ, n := range counts {
		if _, ok := rel.Processes[typ]; ok && n > 0 {
			target[typ] = n
		}
	}
	log.Info("deployment started", "target", target, "replaces", oldID)

	var step func() error
	// A deployment taken over from a leader that died goes on from where
	// the new release's formation stands.
	newF := map[string]int{}
	if f, err := s.ctrl.Formation(ctx, d.AppID, d.NewReleaseID); err == nil {
		maps.Copy(newF, f.Processes)
	}
	// putNew raises the new release's formation to newF. A count already
	// above it stays: someone scaled the new release while it deployed
	// (`flynn scale` from another terminal), and the deployment must not
	// undo that; the controller merges in one statement.
	putNew := func() error {
		return s.untilAnswered(ctx, log, "raise new formation", func(ctx context.Context) error {
			return s.ctrl.RaiseFormation(ctx, &controller.Formation{AppID: d.AppID, ReleaseID: d.NewReleaseID, Processes: maps.Clone(newF)})
		})
	}
	putOld := func() error {
		if oldID == "" {
			return nil
		}
		return s.untilAnswered(ctx, log, "lower old formation", func(ctx context.Context) error {
			return s.ctrl.PutFormation(ctx, &controller.Formation{AppID: d.AppID, ReleaseID: oldID, Processes: maps.Clone(old)})
		})
	}
	original := maps.Clone(old)
	// swap puts newF and old, which move jobs of types (exclusive ones,
	// whose old and new jobs must not run at once on a host) from the old
	// release to the new, in a single round: while starts of the new keys
	// are held, it raises the new formation and lowers the old, so the first round to
	// see either sees both, and stops each old job on its host before it
	// starts the new one there (a round that sees both while the hold
	// lasts leaves the old jobs alone: Compute keeps what a held key
	// replaces). Both changes are made while the old jobs
	// still run: the controller may need them (its Postgres, discoverd).
	swap := func(types []string) error {
		keys := make([]Key, 0, len(types))
		for _, typ := range types {
			k := Key{d.AppID, d.NewReleaseID, typ}
			s.holdStarts(k)
			keys = append(keys, k)
		}
		err := putNew()
		if err == nil {
			err = putOld()
		}
		for _, k := range keys {
			s.releaseStarts(k)
		}
		s.Trigger()
		return err
	}
	rollback := func(reason string) {
		log.Warn("deployment failed; rolling back", "reason", reason)
		old = original
		if err := putOld(); err != nil {
			log.Warn("rollback: restore old formation failed", "err", err)
		}
		if err := s.ctrl.DeleteFormation(ctx, d.AppID, d.NewReleaseID); err != nil {
			log.Warn("rollback: remove new formation failed", "err", err)
		}
		report(controller.DeploymentFailed, reason)
	}

	types := slices.Sorted(maps.Keys(target))
	if d.Strategy == controller.StrategyAllAtOnce {
		step = func() error {
			maps.Copy(newF, target)
			var exclusive []string
			for _, typ := range types {
				if rel.Processes[typ].Exclusive() && old[typ] > 0 {
					exclusive = append(exclusive, typ)
					old[typ] = 0
				}
			}
			if len(exclusive) > 0 {
				if err := swap(exclusive); err != nil {
					return err
				}
			} else if err := putNew(); err != nil {
				return err
			}
			for _, typ := range types {
				if err := s.waitUp(ctx, Key{d.AppID, d.NewReleaseID, typ}, controller.ReleaseVersion(rel.Version), target[typ]); err != nil {
					return err
				}
			}
			return nil
		}
	} else {
		step = func() error {
			for _, typ := range types {
				for newF[typ] < target[typ] {
					newF[typ]++
					if rel.Processes[typ].Exclusive() && old[typ] > 0 {
						old[typ]--
						if err := swap([]string{typ}); err != nil {
							return err
						}
						if err := s.waitUp(ctx, Key{d.AppID, d.NewReleaseID, typ}, controller.ReleaseVersion(rel.Version), newF[typ]); err != nil {
							return err
						}
						continue
					}
					if err := putNew(); err != nil {
						return err
					}
					if err := s.waitUp(ctx, Key{d.AppID, d.NewReleaseID, typ}, controller.ReleaseVersion(rel.Version), newF[typ]); err != nil {
						return err
					}
					if old[typ] > 0 {
						old[typ]--
						if err := putOld(); err != nil {
							return err
						}
					}
				}
			}
			return nil
		}
	}
	if err := step(); err != nil {
		if ctx.Err() != nil {
			return // shutting down: the next leader sees a running deployment
		}
		rollback(err.Error())
		return
	}
	// Whatever the old release still runs (types the new one dropped, or
	// all of it with all-at-once) goes now, and so does any other
	// release's formation of the app: the new release is the app's.
	var all []*controller.Formation
	if err := s.untilAnswered(ctx, log, "list formations", func(ctx context.Context) (err error) {
		all, err = s.ctrl.AllFormations(ctx)
		return err
	}); err == nil {
		for _, f := range all {
			if f.AppID != d.AppID || f.ReleaseID == d.NewReleaseID {
				continue
			}
			if err := s.ctrl.DeleteFormation(ctx, d.AppID, f.ReleaseID); err != nil && !httpjson.IsNotFound(err) {
				log.Warn("remove old formation failed", "release.id", f.ReleaseID, "err", err)
			}
		}
	} else {
		log.Warn("list formations to remove the old ones failed", "err", err)
	}
	log.Info("deployment complete")
	report(controller.DeploymentComplete, "")
}

// untilAnswered calls fn, a call to the controller, until it answers, for
// up to DeployTimeout: a deployment of the controller, of its Postgres or
// of discoverd leaves the controller unreachable for a few seconds, which
// must neither fail the deployment nor leave it running for ever. An
// answer that refuses (4xx) is final.
func (s *Scheduler) untilAnswered(ctx context.Context, log *slog.Logger, what string, fn func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.DeployTimeout)
	defer cancel()
	return retry.Until(ctx, log, what, func(ctx context.Context) error {
		err := fn(ctx)
		if httpjson.IsRefusal(err) {
			return retry.Permanent(err)
		}
		return err
	})
}

// deploymentBase returns the release a deployment replaces, that
// release's formation, and the counts the new release is to reach.
//
// A deployment taken over from a leader that died (it is running) goes on
// with the counts it was made with. A fresh one starts from the app's
// formations as they stand now, not as they stood when it was made: the
// app's deployments run one after another, and one made while the one
// before still ran saw that one's new formation before it existed (no
// counts: it would deploy nothing) or half-way; and when the one before
// failed, its release's formation is gone and the release before it runs
// again, which is the one to replace. Without any formation (the app's
// first deploy) the counts the controller chose stand (web=1).
func (s *Scheduler) deploymentBase(ctx context.Context, d *controller.Deployment) (oldID string, old, counts map[string]int) {
	old, counts = map[string]int{}, maps.Clone(d.Processes)
	if d.Status == controller.DeploymentRunning {
		if d.OldReleaseID != "" {
			if f, err := s.ctrl.Formation(ctx, d.AppID, d.OldReleaseID); err == nil {
				maps.Copy(old, f.Processes)
			}
		}
		return d.OldReleaseID, old, counts
	}
	all, err := s.ctrl.AllFormations(ctx)
	if err != nil {
		s.log.Warn("list formations for a deployment failed; using its own counts", "deployment.id", d.ID, "err", err)
		if d.OldReleaseID != "" {
			if f, err := s.ctrl.Formation(ctx, d.AppID, d.OldReleaseID); err == nil {
				maps.Copy(old, f.Processes)
			}
		}
		return d.OldReleaseID, old, counts
	}
	var base *controller.Formation
	for _, f := range all {
		if f.AppID != d.AppID || f.ReleaseID == d.NewReleaseID {
			continue
		}
		switch {
		case base == nil, f.ReleaseID == d.OldReleaseID && base.ReleaseID != d.OldReleaseID:
			base = f
		case base.ReleaseID == d.OldReleaseID:
		case total(f.Processes) > total(base.Processes), total(f.Processes) == total(base.Processes) && f.UpdatedAt.After(base.UpdatedAt):
			base = f
		}
	}
	if base == nil || total(base.Processes) == 0 {
		return d.OldReleaseID, old, counts
	}
	maps.Copy(old, base.Processes)
	return base.ReleaseID, old, maps.Clone(base.Processes)
}

func total(counts map[string]int) int {
	n := 0
	for _, c := range counts {
		n += c
	}
	return n
}

// waitUp waits until n jobs of key (of release version) are up. It fails when DeployTimeout
// passes, or as soon as every job this wait needed has crashed once (as
// Flynn's deployer did): a process that exits at once fails its deploy in
// a second, not a minute, and the reason names its exit status.
func (s *Scheduler) waitUp(ctx context.Context, key Key, version string, n int) error {
	s.Trigger()
	deadline := time.NewTimer(s.cfg.DeployTimeout)
	defer deadline.Stop()
	jobs, next := s.jobsOf(key)
	earlier := map[string]bool{} // jobs that ended before this wait: not its own
	up := 0
	for _, j := range jobs {
		if j.State.Terminal() {
			earlier[j.ID] = true
		} else if j.State == host.StateUp {
			up++
		}
	}
	needed := max(n-up, 1)
	for {
		up, crashed := 0, []*Job(nil)
		for _, j := range jobs {
			switch {
			case j.State == host.StateUp:
				up++
			case (j.State == host.StateCrashed || j.State == host.StateFailed) && !earlier[j.ID]:
				crashed = append(crashed, j)
			}
		}
		if up >= n {
			return nil
		}
		if len(crashed) >= needed {
			return fmt.Errorf("%s process of release %s crashed before it was up (%s)", key.Type, version, crashSummary(crashed))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-deadline.C:
			return fmt.Errorf("%s process of release %s: %d of %d jobs up after %s", key.Type, version, up, n, s.cfg.DeployTimeout)
		case <-next:
		}
		jobs, next = s.jobsOf(key)
	}
}

// crashSummary says how crashed jobs ended: "job h1-…: exit status 1".
func crashSummary(jobs []*Job) string {
	parts := make([]string, 0, len(jobs))
	for _, j := range jobs {
		how := string(j.State)
		switch {
		case j.ExitStatus != nil:
			how = fmt.Sprintf("exit status %d", *j.ExitStatus)
		case j.Error != "":
			how = "failed to start: " + j.Error
		}
		parts = append(parts, fmt.Sprintf("job %s: %s", j.ID, how))
	}
	return strings.Join(parts, "; ")
}

package scheduler

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/openflynn/flynn/discoverd"
	"github.com/openflynn/flynn/discoverd/client"
)

// LeaderService is the discoverd service schedulers register in; its
// leader (the oldest live instance) is the one that acts.
const LeaderService = "flynn-scheduler"

// Registrar is the part of the discoverd client leadership needs.
type Registrar interface {
	Register(ctx context.Context, service string, inst *discoverd.Instance) (*client.Registration, error)
	Watch(ctx context.Context, service string) (<-chan *discoverd.Event, error)
}

// deregisterTimeout bounds the deregistration when RunLeader ends.
const deregisterTimeout = 5 * time.Second

// RunLeader registers this scheduler as inst and runs work while inst
// leads the LeaderService, cancelling work's context (and waiting for work
// to return) when it stops leading. It returns when ctx ends, after work
// has returned and before the instance leaves discoverd, so that the next
// leader starts only once this one has stopped.
//
// Leadership is fenced by the registration's lease: work runs only while
// discoverd's last word on the leader names this registration as it stands
// (the same instance at the same index: one registered anew after it
// expired lost its place), and only until a quarter of the TTL before the
// lease could run out (see fenceAt). A scheduler cut off from discoverd,
// whose heartbeats go unconfirmed and whose watch may be silent, thus stops
// before discoverd can drop its instance, so before any other scheduler can
// be told it leads; it resumes once a heartbeat is confirmed again and
// discoverd names it leader.
func RunLeader(ctx context.Context, d Registrar, inst *discoverd.Instance, logger *slog.Logger, work func(context.Context) error) error {
	// The registration outlives ctx by a little: it is deregistered only
	// once work has returned (below). While Register runs, ctx ends it.
	regCtx, endRegistration := context.WithCancel(context.WithoutCancel(ctx))
	defer endRegistration()
	detach := context.AfterFunc(ctx, endRegistration)
	reg, err := d.Register(regCtx, LeaderService, inst)
	if !detach() {
		if err == nil {
			<-reg.Done()
		}
		return ctx.Err()
	}
	if err != nil {
		return fmt.Errorf("scheduler: register for leadership: %w", err)
	}
	self := reg.Instance().ID
	w := &leaderWork{logger: logger, work: work}
	defer func() {
		w.stop()
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), deregisterTimeout)
		defer cancel()
		_ = reg.Deregister(dctx)
	}()
	events, err := d.Watch(ctx, LeaderService)
	if err != nil {
		return fmt.Errorf("scheduler: watch leadership: %w", err)
	}

	var leader *discoverd.Instance // discoverd's last word
	fence := time.NewTimer(time.Hour)
	defer fence.Stop()
	for {
		lease := reg.Lease()
		now := time.Now()
		switch leading := leads(leader, lease, now); {
		case leading && !w.running():
			logger.Info("leading: scheduling starts", "instance", self, "index", lease.Instance.Index)
			w.start(ctx)
		case !leading && w.running():
			if leader == nil || leader.ID != self || leader.Index != lease.Instance.Index {
				logger.Info("no longer leading: scheduling stops", "leader", leaderID(leader))
			} else {
				logger.Warn("leadership unconfirmed: discoverd confirmed no heartbeat in time; scheduling stops until it does",
					"renewed", lease.Renewed, "ttl", lease.TTL)
			}
			w.stop()
		}
		fence.Stop()
		if w.running() {
			fence.Reset(fenceAt(lease).Sub(now))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-reg.Renewed():
		case <-fence.C:
		case e, ok := <-events:
			if !ok {
				return ctx.Err()
			}
			if e.Kind != discoverd.EventLeader || e.Instance == nil {
				continue
			}
			if e.Instance.ID != self && leaderID(leader) != e.Instance.ID {
				logger.Info("standing by", "leader", e.Instance.ID)
			}
			leader = e.Instance
		}
	}
}

// leads reports whether a scheduler holding lease may act at now, with
// leader discoverd's last word on the service's leader: the leader must be
// the lease's instance at the lease's index, and the lease must hold past
// the fence. The instance at that index cannot have left discoverd (it
// would have come back at another index), so no other instance can have
// become the oldest, whatever discoverd said since that this scheduler has
// not heard.
func leads(leader *discoverd.Instance, lease client.Lease, now time.Time) bool {
	return leader != nil && lease.Instance != nil &&
		leader.ID == lease.Instance.ID && leader.Index == lease.Instance.Index &&
		now.Before(fenceAt(lease))
}

// fenceAt is when a leader whose lease was not renewed since stops acting:
// a quarter of the TTL before the lease could run out in discoverd, which
// leaves the leader that long to wind down (cancel its calls and wait for
// its goroutines) before another could be named. With heartbeats every
// third of the TTL, it fences after one heartbeat fails or is slow.
func fenceAt(lease client.Lease) time.Time {
	return lease.Until().Add(-lease.TTL / 4)
}

func leaderID(inst *discoverd.Instance) string {
	if inst == nil {
		return ""
	}
	return inst.ID
}

// leaderWork runs work while this scheduler leads.
type leaderWork struct {
	logger *slog.Logger
	work   func(context.Context) error
	cancel context.CancelFunc
	done   chan struct{}
}

func (w *leaderWork) running() bool { return w.cancel != nil }

func (w *leaderWork) start(ctx context.Context) {
	ctx, w.cancel = context.WithCancel(ctx)
	w.done = make(chan struct{})
	go func() {
		defer close(w.done)
		if err := w.work(ctx); err != nil && ctx.Err() == nil {
			w.logger.Error("scheduler stopped", "err", err)
		}
	}()
}

func (w *leaderWork) stop() {
	if w.cancel != nil {
		w.cancel()
		<-w.done
		w.cancel = nil
	}
}

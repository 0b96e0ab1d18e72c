package scheduler

import (
	"context"
	"fmt"
	"log/slog"

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

// RunLeader registers this scheduler as inst and runs work while inst
// leads the LeaderService, cancelling work's context when it stops
// leading. It returns when ctx ends.
func RunLeader(ctx context.Context, d Registrar, inst *discoverd.Instance, logger *slog.Logger, work func(context.Context) error) error {
	reg, err := d.Register(ctx, LeaderService, inst)
	if err != nil {
		return fmt.Errorf("scheduler: register for leadership: %w", err)
	}
	self := reg.Instance().ID
	events, err := d.Watch(ctx, LeaderService)
	if err != nil {
		return fmt.Errorf("scheduler: watch leadership: %w", err)
	}
	w := &leaderWork{logger: logger, work: work}
	defer w.stop()
	for e := range events {
		if e.Kind != discoverd.EventLeader || e.Instance == nil {
			continue
		}
		leading := e.Instance.ID == self
		switch {
		case leading && !w.running():
			logger.Info("leading: scheduling starts", "instance", self)
			w.start(ctx)
		case !leading && w.running():
			logger.Info("no longer leading: scheduling stops", "leader", e.Instance.ID)
			w.stop()
		case !leading:
			logger.Info("standing by", "leader", e.Instance.ID)
		}
	}
	return ctx.Err()
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

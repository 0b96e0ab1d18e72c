package server

import (
	"context"
	"time"
)

// DefaultEventRetention is how long the flynn-controller command keeps
// events by default (--event-retention): long enough for any follower that
// was away to catch up, short enough that the log does not grow forever.
const DefaultEventRetention = 7 * 24 * time.Hour

// defaultEventPruneInterval is how often old events are looked for, unless
// Options.EventPruneInterval says otherwise.
const defaultEventPruneInterval = time.Hour

// pruneEvents deletes the events older than Options.EventRetention, at
// start and then every Options.EventPruneInterval, until ctx ends. Every
// controller of a cluster does; the store makes concurrent prunes safe. A
// failure is logged and tried again at the next tick.
func (s *Server) pruneEvents(ctx context.Context) {
	tick := time.NewTicker(s.opts.EventPruneInterval)
	defer tick.Stop()
	for {
		s.pruneEventsOnce(ctx)
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// pruneEventsOnce deletes the events older than the retention once.
func (s *Server) pruneEventsOnce(ctx context.Context) {
	n, err := s.store.Events.Prune(ctx, time.Now().Add(-s.opts.EventRetention))
	switch {
	case err != nil && ctx.Err() == nil:
		s.logger.Warn("cannot delete old events; trying again later", "err", err, "deleted", n, "retention", s.opts.EventRetention)
	case n > 0:
		s.logger.Info("deleted old events", "deleted", n, "retention", s.opts.EventRetention)
	}
}

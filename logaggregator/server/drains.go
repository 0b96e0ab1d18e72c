package server

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/julienschmidt/httprouter"

	"github.com/openflynn/flynn/controller"
	"github.com/openflynn/flynn/logaggregator"
	"github.com/openflynn/flynn/logaggregator/drain"
	"github.com/openflynn/flynn/pkg/httpjson"
)

// DrainSource is where the aggregator learns every app's log drains: the
// controller, whose client is one.
type DrainSource interface {
	LogDrains(ctx context.Context) ([]*controller.LogDrain, error)
	StreamEvents(ctx context.Context, filter controller.EventFilter) (<-chan *controller.Event, error)
}

// DefaultDrainResync is how often the drains are listed again even when
// no event said they changed.
const DefaultDrainResync = time.Minute

// ProcessTypeAggregator is the process type of the lines the aggregator
// writes into an app's log itself (a drain's drops).
const ProcessTypeAggregator = "logaggregator"

// newDrains returns the manager of the apps' drains; what it drops is
// told in the app's own log, as Heroku's logplex does.
func newDrains(store *Store, logger *slog.Logger) *drain.Manager {
	var m *drain.Manager
	m = drain.NewManager(drain.Options{
		Logger: logger,
		OnDrop: func(appID, drainID string, n uint64) {
			l := logaggregator.Line{
				Time: time.Now(), AppID: appID, ProcessType: ProcessTypeAggregator, Stream: logaggregator.StreamStderr,
				Data: fmt.Sprintf("Error L10 (output buffer overflow): drain %s dropped %d lines; its receiver is slower than the app or unreachable\n", drainID, n),
			}
			store.Append([]logaggregator.Line{l})
			m.Send(&l)
		},
	})
	return m
}

// syncDrains keeps m's drains those of src until ctx ends: it lists them
// when a log_drain event says they changed, and every resync anyway, in
// case the event stream missed one. The stream opens before the first
// listing, so no change falls between them.
func syncDrains(ctx context.Context, src DrainSource, m *drain.Manager, resync time.Duration, logger *slog.Logger) {
	var events <-chan *controller.Event
	backoff := time.Second
	for events == nil {
		ch, err := src.StreamEvents(ctx, controller.EventFilter{ObjectTypes: []string{controller.ObjectTypeLogDrain}})
		if err == nil {
			events = ch
			break
		}
		logger.Debug("drains: controller events not reachable yet", "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 30*time.Second)
	}
	sync := func() bool {
		drains, err := src.LogDrains(ctx)
		if err != nil {
			if ctx.Err() == nil {
				logger.Warn("drains: list from the controller", "err", err)
			}
			return false
		}
		list := make([]controller.LogDrain, 0, len(drains))
		for _, d := range drains {
			list = append(list, *d)
		}
		if err := m.Sync(list); err != nil {
			logger.Warn("drains: some drains could not start", "err", err)
		}
		return true
	}
	synced := sync()
	t := time.NewTicker(resync)
	defer t.Stop()
	retry := time.NewTimer(time.Second)
	defer retry.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case _, ok := <-events:
			if !ok {
				return
			}
			synced = sync()
		case <-t.C:
			synced = sync()
		case <-retry.C:
			if !synced {
				synced = sync()
			}
			retry.Reset(5 * time.Second)
		}
	}
}

// drainStats serves GET /drains/stats: what each drain sent and dropped
// (logaggregator.DrainStats), for `flynn log drain list`.
func (h *Handler) drainStats(w http.ResponseWriter, _ *http.Request, _ httprouter.Params) {
	stats := []logaggregator.DrainStats{}
	if h.drains != nil {
		stats = h.drains.Stats()
	}
	httpjson.Write(w, http.StatusOK, stats)
}

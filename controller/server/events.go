package server

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/julienschmidt/httprouter"

	"github.com/openflynn/flynn/controller"
	"github.com/openflynn/flynn/controller/postgres"
	"github.com/openflynn/flynn/pkg/httpjson"
	"github.com/openflynn/flynn/pkg/sse"
)

// eventBatch is how many events one read of the log fetches.
const eventBatch = 500

// streamEvents sends the event log as Server-Sent Events. It reads the log
// itself after every notification (rather than trusting notification
// payloads), so a resumed or slow stream sees every event once, in order.
// A resume from before an event the stream would carry but the log has
// deleted as too old (see pruneEvents) is refused, precondition_failed on
// "since": the client must read the state afresh and stream from now.
func (s *Server) streamEvents(w http.ResponseWriter, r *http.Request, _ httprouter.Params) error {
	ctx := r.Context()
	q := r.URL.Query()
	query := postgres.EventQuery{Limit: eventBatch}
	if appID := q.Get("app_id"); appID != "" {
		app, err := s.store.Apps.Get(ctx, appID)
		switch {
		case err == nil:
			query.AppID = app.ID
		case errors.Is(err, postgres.ErrNotFound) && postgres.IsUUID(appID):
			query.AppID = appID // a deleted app's events are still in the log
		default:
			return err
		}
	}
	for _, t := range strings.Split(q.Get("object_types"), ",") {
		if t = strings.TrimSpace(t); t != "" {
			query.ObjectTypes = append(query.ObjectTypes, t)
		}
	}
	since := r.Header.Get("Last-Event-Id")
	if since == "" {
		since = q.Get("since")
	}
	wake, unsubscribe := s.notifier.Subscribe()
	defer unsubscribe()
	if since != "" {
		n, err := strconv.ParseInt(since, 10, 64)
		if err != nil || n < 0 {
			return httpjson.ValidationError("since", "must be an event id")
		}
		query.After = n
	} else {
		last, err := s.store.Events.LastID(ctx)
		if err != nil {
			return err
		}
		query.After = last
	}

	// The first read comes before the stream starts, so that a resume the
	// log can no longer serve whole (events after since were deleted as
	// too old) is refused with an error rather than streamed with a gap.
	events, err := s.store.Events.List(ctx, query)
	if err != nil {
		return err
	}
	// The starting point goes out as a header, so a client that asked for
	// "from now" can resume from the right place if it reconnects before
	// any event arrives.
	w.Header().Set(controller.StreamStartHeader, strconv.FormatInt(query.After, 10))
	stream, err := sse.NewWriter(w)
	if err != nil {
		return err
	}
	keepAlive := time.NewTicker(s.opts.KeepAlive)
	defer keepAlive.Stop()
	view := s.releaseView(ctx)
	for {
		for _, e := range events {
			if e, err = view.event(ctx, e); err != nil {
				if ctx.Err() == nil {
					s.logger.Error("event stream: check a release event", "err", err)
				}
				return nil // the client reconnects
			}
			data, err := json.Marshal(e)
			if err != nil {
				return nil
			}
			if err := stream.Send(sse.Event{ID: strconv.FormatInt(e.ID, 10), Name: e.ObjectType, Data: data}); err != nil {
				return nil
			}
			query.After = e.ID
		}
		if len(events) < eventBatch {
			select {
			case <-ctx.Done():
				return nil
			case <-wake:
			case <-keepAlive.C:
				if err := stream.Comment("keep-alive"); err != nil {
					return nil
				}
			}
		}
		if events, err = s.store.Events.List(ctx, query); err != nil {
			// The stream has started: the client reconnects and resumes,
			// and hears then why if the log cannot serve its resume.
			if ctx.Err() == nil && !errors.Is(err, postgres.ErrPrecondition) {
				s.logger.Error("event stream: read events", "err", err)
			}
			return nil
		}
	}
}

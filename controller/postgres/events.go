package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/openflynn/flynn/controller"
)

// EventChannel is the LISTEN/NOTIFY channel every event is announced on; the
// payload is the event id.
const EventChannel = "controller_events"

// eventLock is the advisory lock that makes event ids commit in order: a
// transaction takes it just before writing its events and holds it until
// it commits, so no reader can see event n+1 before event n. Without it a
// stream that resumes "after n+1" could skip n for good.
const eventLock int64 = 0x666c796e6e657674

// change is an event about to be written.
type change struct {
	appID      string
	objectType string
	objectID   string
	op         string
	data       any
}

// emit writes events for changes in tx and announces them. Call it last in
// a transaction: it takes eventLock, which is held until commit.
func emit(ctx context.Context, tx pgx.Tx, changes ...change) error {
	if len(changes) == 0 {
		return nil
	}
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, eventLock); err != nil {
		return fmt.Errorf("lock events: %w", err)
	}
	var last int64
	for _, c := range changes {
		data, err := json.Marshal(c.data)
		if err != nil {
			return fmt.Errorf("encode %s event: %w", c.objectType, err)
		}
		if data, err = redact(c.objectType, data); err != nil {
			return fmt.Errorf("redact %s event: %w", c.objectType, err)
		}
		var appID *string
		if c.appID != "" {
			appID = &c.appID
		}
		if err := tx.QueryRow(ctx, `INSERT INTO events (app_id, object_type, object_id, op, data)
			VALUES ($1, $2, $3, $4, $5) RETURNING id`,
			appID, c.objectType, c.objectID, c.op, data).Scan(&last); err != nil {
			return fmt.Errorf("insert %s event: %w", c.objectType, err)
		}
	}
	// One notification per transaction is enough: listeners re-read
	// everything after the last id they have seen.
	if _, err := tx.Exec(ctx, `SELECT pg_notify($1, $2)`, EventChannel, strconv.FormatInt(last, 10)); err != nil {
		return fmt.Errorf("notify events: %w", err)
	}
	return nil
}

// EventRepo reads the event log and prunes it (see Prune).
type EventRepo struct{ db *db }

// EventQuery selects events after an id.
type EventQuery struct {
	// After returns only events with a greater id.
	After int64
	// AppID keeps one app's events; "" keeps all.
	AppID       string
	ObjectTypes []string
	// Limit caps the rows returned; 0 means DefaultPageSize.
	Limit int
}

// List returns the events matching q in id order. When q.After is not 0
// and Prune has deleted an event matching q with a greater id, the events
// after q.After are no longer whole, and List refuses with an
// ErrPrecondition naming the field "since" rather than return what is
// left: a stream resumed there would miss changes without knowing it.
func (r *EventRepo) List(ctx context.Context, q EventQuery) ([]*controller.Event, error) {
	limit := Page{Limit: q.Limit}.limit()
	var appID *string
	if q.AppID != "" {
		if !IsUUID(q.AppID) {
			return nil, nil
		}
		appID = &q.AppID
	}
	types := q.ObjectTypes
	if types == nil {
		types = []string{}
	}
	if q.After <= 0 {
		return listEvents(ctx, r.db.pool, q.After, appID, types, limit)
	}
	// The check and the read see one snapshot, so a prune cannot fall
	// between them unnoticed.
	tx, err := r.db.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return nil, fmt.Errorf("list events: begin: %w", err)
	}
	defer tx.Rollback(ctx)
	var through int64
	if err := tx.QueryRow(ctx, `SELECT coalesce(max(through), 0) FROM events_pruned
		WHERE through > $1 AND ($2::text IS NULL OR app_id = $2) AND (cardinality($3::text[]) = 0 OR object_type = ANY($3))`,
		q.After, appID, types).Scan(&through); err != nil {
		return nil, fmt.Errorf("list events: check pruned: %w", err)
	}
	if through > 0 {
		return nil, &Error{Err: ErrPrecondition, Field: "since", Message: fmt.Sprintf(
			"the event log no longer holds every event after %d (events up to %d were deleted as too old); read the current state and stream from now",
			q.After, through)}
	}
	events, err := listEvents(ctx, tx, q.After, appID, types, limit)
	if err != nil {
		return nil, err
	}
	return events, tx.Commit(ctx)
}

// listEvents reads the events after id after that match appID (nil: any)
// and types (empty: any).
func listEvents(ctx context.Context, db querier, after int64, appID *string, types []string, limit int) ([]*controller.Event, error) {
	rows, err := db.Query(ctx, `SELECT id, coalesce(app_id::text, ''), object_type, object_id, op, data, created_at
		FROM events
		WHERE id > $1 AND ($2::uuid IS NULL OR app_id = $2) AND (cardinality($3::text[]) = 0 OR object_type = ANY($3))
		ORDER BY id LIMIT $4`, after, appID, types, limit)
	if err != nil {
		return nil, fmt.Errorf("list events: %w", err)
	}
	events, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (*controller.Event, error) {
		var e controller.Event
		var data []byte
		err := row.Scan(&e.ID, &e.AppID, &e.ObjectType, &e.ObjectID, &e.Op, &data, &e.CreatedAt)
		e.Data = data
		return &e, err
	})
	if err != nil {
		return nil, fmt.Errorf("list events: %w", err)
	}
	return events, nil
}

// LastID returns the id of the newest event, or 0 when there never was
// one. An event Prune deleted counts, so that a stream starting "from
// now" never starts below what was pruned.
func (r *EventRepo) LastID(ctx context.Context) (int64, error) {
	var id int64
	if err := r.db.pool.QueryRow(ctx, `SELECT greatest(
		(SELECT coalesce(max(id), 0) FROM events),
		(SELECT coalesce(max(through), 0) FROM events_pruned))`).Scan(&id); err != nil {
		return 0, fmt.Errorf("last event id: %w", err)
	}
	return id, nil
}

// pruneBatch bounds the events one statement of Prune deletes, so that a
// first prune of a long log does not hold one huge transaction.
const pruneBatch = 5000

// Prune deletes the events created before before and returns how many it
// deleted. It records, for each app and object type, the newest id it
// deleted (in events_pruned, in the same statement), so that List can tell
// a stream resumed from before that id that it missed events. Several
// controllers may prune at once.
func (r *EventRepo) Prune(ctx context.Context, before time.Time) (int64, error) {
	var total int64
	for {
		var n int64
		err := r.db.pool.QueryRow(ctx, `WITH gone AS (
				DELETE FROM events WHERE id IN (SELECT id FROM events WHERE created_at < $1 LIMIT $2)
				RETURNING coalesce(app_id::text, '') AS app_id, object_type, id
			), marked AS (
				INSERT INTO events_pruned (app_id, object_type, through)
				SELECT app_id, object_type, max(id) FROM gone GROUP BY app_id, object_type
				ON CONFLICT (app_id, object_type) DO UPDATE SET through = greatest(events_pruned.through, excluded.through)
			)
			SELECT count(*) FROM gone`, before, pruneBatch).Scan(&n)
		if err != nil {
			return total, fmt.Errorf("prune events: %w", err)
		}
		total += n
		if n < pruneBatch {
			return total, nil
		}
	}
}

// Notifier wakes subscribers whenever events are committed, by LISTENing on
// EventChannel over one dedicated connection. Subscribers then read the log
// themselves, so a missed or merged notification costs nothing but latency.
type Notifier struct {
	store  *Store
	logger *slog.Logger

	mu   sync.Mutex
	subs map[chan struct{}]struct{}

	cancel context.CancelFunc
	done   chan struct{}
}

// NewNotifier starts listening; Close stops it and waits.
func NewNotifier(store *Store, logger *slog.Logger) *Notifier {
	ctx, cancel := context.WithCancel(context.Background())
	n := &Notifier{store: store, logger: logger, subs: make(map[chan struct{}]struct{}), cancel: cancel, done: make(chan struct{})}
	go n.run(ctx)
	return n
}

// Subscribe returns a channel that receives a value after events are
// committed (several commits may merge into one value), and a func that
// unsubscribes.
func (n *Notifier) Subscribe() (<-chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	n.mu.Lock()
	n.subs[ch] = struct{}{}
	n.mu.Unlock()
	return ch, func() {
		n.mu.Lock()
		delete(n.subs, ch)
		n.mu.Unlock()
	}
}

// Close stops listening and waits for the listener to exit.
func (n *Notifier) Close() {
	n.cancel()
	<-n.done
}

func (n *Notifier) wakeAll() {
	n.mu.Lock()
	defer n.mu.Unlock()
	for ch := range n.subs {
		select {
		case ch <- struct{}{}:
		default: // already woken; it will read everything new anyway
		}
	}
}

func (n *Notifier) run(ctx context.Context) {
	defer close(n.done)
	backoff := 50 * time.Millisecond
	for ctx.Err() == nil {
		err := n.listen(ctx)
		if ctx.Err() != nil {
			return
		}
		n.logger.Warn("event listener lost its connection; reconnecting", "err", err, "backoff", backoff)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 5*time.Second)
	}
}

func (n *Notifier) listen(ctx context.Context) error {
	pooled, err := n.store.Pool.Acquire(ctx)
	if err != nil {
		return err
	}
	// The connection stays in LISTEN mode; take it out of the pool and
	// close it rather than hand it back.
	conn := pooled.Hijack()
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "LISTEN "+EventChannel); err != nil {
		return err
	}
	// Anything committed while we were not listening is picked up now.
	n.wakeAll()
	for {
		if _, err := conn.WaitForNotification(ctx); err != nil {
			return err
		}
		n.wakeAll()
	}
}

package daemon

import (
	"github.com/openflynn/flynn/host"
)

// eventBuffer is how many events a subscriber may lag behind before it is
// dropped (its channel closed), so a slow reader never blocks the daemon.
const eventBuffer = 256

// events fans job state changes out to subscribers. Guarded by Daemon.mu.
type events struct {
	nextID uint64
	subs   map[chan *host.Event]string // channel → job id filter ("" = all)
}

func (e *events) closeAll() {
	for ch := range e.subs {
		close(ch)
	}
	e.subs = nil
}

// emitLocked sends the job's current state to subscribers. Called with d.mu held.
func (d *Daemon) emitLocked(j *job) {
	d.events.nextID++
	ev := &host.Event{ID: d.events.nextID, JobID: j.id, State: j.active.State, Job: j.snapshot()}
	for ch, filter := range d.events.subs {
		if filter != "" && filter != j.id {
			continue
		}
		select {
		case ch <- ev:
		default:
			delete(d.events.subs, ch)
			close(ch)
		}
	}
}

// Subscribe returns a channel of job events (for one job when jobID is set)
// and a function to unsubscribe. The channel closes when the daemon closes,
// after unsubscribe, or when the subscriber falls too far behind.
func (d *Daemon) Subscribe(jobID string) (<-chan *host.Event, func()) {
	ch := make(chan *host.Event, eventBuffer)
	d.mu.Lock()
	defer d.mu.Unlock()
	select {
	case <-d.closing:
		close(ch)
		return ch, func() {}
	default:
	}
	if d.events.subs == nil {
		d.events.subs = map[chan *host.Event]string{}
	}
	d.events.subs[ch] = jobID
	return ch, func() {
		d.mu.Lock()
		defer d.mu.Unlock()
		if _, ok := d.events.subs[ch]; ok {
			delete(d.events.subs, ch)
			close(ch)
		}
	}
}

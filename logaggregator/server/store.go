package server

import (
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/openflynn/flynn/logaggregator"
)

// Store keeps the last lines of every app in memory: a ring of at most
// LinesPerApp lines and BytesPerApp bytes of line data each, so its memory
// is bounded per app whatever the apps write. Followers are not queued
// lines: they are woken and read what is new from the ring, so a slow
// follower costs no memory and misses only lines evicted before it read
// them.
type Store struct {
	linesPerApp int
	bytesPerApp int

	mu      sync.Mutex
	apps    map[string]*appLog
	version uint64 // counts Appends that kept lines
}

// Version changes whenever lines are added.
func (s *Store) Version() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.version
}

// appLog is one app's ring of lines.
type appLog struct {
	lines   []logaggregator.Line // ring; len == cap once full
	start   int                  // index of the oldest line
	n       int
	bytes   int
	nextSeq uint64
	// names interns the strings every line repeats (ids, types), so a
	// kept line costs its data and a few words.
	names   map[string]string
	waiters map[chan struct{}]struct{}
	// name is the app's name, as its last named line gave it.
	name string
}

// NewStore returns a store keeping linesPerApp lines and at most
// bytesPerApp bytes of line data per app.
func NewStore(linesPerApp, bytesPerApp int) *Store {
	if linesPerApp <= 0 {
		linesPerApp = logaggregator.DefaultLinesPerApp
	}
	if bytesPerApp <= 0 {
		bytesPerApp = DefaultBytesPerApp
	}
	return &Store{linesPerApp: linesPerApp, bytesPerApp: bytesPerApp, apps: make(map[string]*appLog)}
}

// DefaultBytesPerApp bounds an app's kept line data unless configured.
const DefaultBytesPerApp = 32 << 20

// maxNames bounds an app's intern table; past it the table starts over.
const maxNames = 4096

func (a *appLog) intern(s string) string {
	if s == "" {
		return ""
	}
	if v, ok := a.names[s]; ok {
		return v
	}
	if len(a.names) >= maxNames {
		a.names = make(map[string]string)
	}
	s = strings.Clone(s)
	a.names[s] = s
	return s
}

// Append adds lines, each of which must name its app by id, assigning each
// its app's next Seq, and wakes the app's followers. Data longer than
// logaggregator.MaxLineBytes is cut. A line without the app's name is
// given it, in lines too, when an earlier line named the app. It returns
// how many lines it kept.
func (s *Store) Append(lines []logaggregator.Line) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	kept := 0
	var woken []*appLog
	for i := range lines {
		if lines[i].AppID == "" {
			continue
		}
		a := s.apps[lines[i].AppID]
		if a == nil {
			a = s.newAppLocked(lines[i].AppID)
		}
		// The router knows an app by its id only: its lines get the name
		// the app's jobs' lines carry (here, and for the drains, which
		// are given lines after the store).
		if lines[i].AppName == "" {
			lines[i].AppName = a.name
		} else if lines[i].AppName != a.name {
			a.name = a.intern(lines[i].AppName)
		}
		l := lines[i]
		s.appendLocked(a, l)
		kept++
		if len(a.waiters) > 0 && (len(woken) == 0 || woken[len(woken)-1] != a) {
			woken = append(woken, a)
		}
	}
	if kept > 0 {
		s.version++
	}
	for _, a := range woken {
		for w := range a.waiters {
			select {
			case w <- struct{}{}:
			default: // already woken
			}
		}
	}
	return kept
}

func (s *Store) appendLocked(a *appLog, l logaggregator.Line) {
	if len(l.Data) > logaggregator.MaxLineBytes {
		l.Data = cutUTF8(l.Data, logaggregator.MaxLineBytes)
	}
	if l.Seq == 0 || l.Seq < a.nextSeq {
		l.Seq = a.nextSeq
	}
	a.nextSeq = l.Seq + 1
	l.AppID = a.intern(l.AppID)
	l.AppName = a.intern(l.AppName)
	l.ReleaseID = a.intern(l.ReleaseID)
	l.ProcessType = a.intern(l.ProcessType)
	l.JobID = a.intern(l.JobID)
	l.HostID = a.intern(l.HostID)
	l.Stream = a.intern(l.Stream)
	l.Data = strings.Clone(l.Data) // not a slice of the request's buffer
	for a.n > 0 && (a.n >= s.linesPerApp || a.bytes+len(l.Data) > s.bytesPerApp) {
		a.evictOldest()
	}
	if a.n == len(a.lines) {
		a.grow(s.linesPerApp)
	}
	a.lines[(a.start+a.n)%len(a.lines)] = l
	a.n++
	a.bytes += len(l.Data)
}

func (s *Store) newAppLocked(appID string) *appLog {
	a := &appLog{nextSeq: 1, names: make(map[string]string), waiters: make(map[chan struct{}]struct{})}
	s.apps[appID] = a
	return a
}

// grow doubles a full ring, up to limit lines (which it is below), so an
// app that writes little keeps little.
func (a *appLog) grow(limit int) {
	lines := make([]logaggregator.Line, min(max(2*len(a.lines), 64), limit))
	for i := 0; i < a.n; i++ {
		lines[i] = a.lines[(a.start+i)%len(a.lines)]
	}
	a.lines, a.start = lines, 0
}

func (a *appLog) evictOldest() {
	a.bytes -= len(a.lines[a.start].Data)
	a.lines[a.start] = logaggregator.Line{}
	a.start = (a.start + 1) % len(a.lines)
	a.n--
}

// cutUTF8 cuts s to at most n bytes without splitting a character.
func cutUTF8(s string, n int) string {
	for n > 0 && n < len(s) && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// Read returns the app's kept lines selected by opts (its Lines, last
// first cut, included; Follow ignored), oldest first, and the app's last
// Seq.
func (s *Store) Read(appID string, opts logaggregator.ReadOptions) ([]logaggregator.Line, uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.apps[appID]
	if a == nil {
		return nil, 0
	}
	var out []logaggregator.Line
	for i := 0; i < a.n; i++ {
		l := &a.lines[(a.start+i)%len(a.lines)]
		if opts.Match(l) {
			out = append(out, *l)
		}
	}
	if opts.Lines > 0 && len(out) > opts.Lines {
		out = out[len(out)-opts.Lines:]
	}
	return out, a.nextSeq - 1
}

// Watch returns a channel that receives a value after the app gets new
// lines (coalesced: one value stands for any number), and a function that
// stops the watch.
func (s *Store) Watch(appID string) (<-chan struct{}, func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.apps[appID]
	if a == nil {
		a = s.newAppLocked(appID)
	}
	ch := make(chan struct{}, 1)
	a.waiters[ch] = struct{}{}
	return ch, func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		delete(a.waiters, ch)
	}
}

// Stats are a store's totals.
type Stats struct {
	Apps, Lines, Bytes int
}

// Stats counts the apps, lines and bytes of line data kept.
func (s *Store) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := Stats{Apps: len(s.apps)}
	for _, a := range s.apps {
		st.Lines += a.n
		st.Bytes += a.bytes
	}
	return st
}

// each calls fn with every kept line of every app, app by app, oldest
// first, under the store's lock (for snapshots).
func (s *Store) each(fn func(*logaggregator.Line)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, a := range s.apps {
		for i := 0; i < a.n; i++ {
			fn(&a.lines[(a.start+i)%len(a.lines)])
		}
	}
}

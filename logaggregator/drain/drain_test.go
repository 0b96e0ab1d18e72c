package drain

import (
	"context"
	"crypto/x509"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/openflynn/flynn/controller"
	"github.com/openflynn/flynn/logaggregator"
	"github.com/openflynn/flynn/pkg/poll"
)

// schemes are the drain kinds; every behaviour test runs against each.
var schemes = []string{controller.LogDrainSchemeSyslogTCP, controller.LogDrainSchemeSyslogTLS, controller.LogDrainSchemeHTTPS}

// testOptions are Options for tests: quick retries and batches, the test
// certificate trusted, the logs discarded.
func testOptions(cert *testCert) Options {
	return Options{
		MinBackoff: 10 * time.Millisecond, MaxBackoff: 100 * time.Millisecond,
		BatchWait: 20 * time.Millisecond, Timeout: 5 * time.Second,
		RootCAs: cert.pool,
		Logger:  slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
}

// newManager returns a Manager that the test closes at its end.
func newManager(t *testing.T, opts Options) *Manager {
	t.Helper()
	m := NewManager(opts)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = m.Close(ctx)
	})
	return m
}

// line is line number n of app "app-id" (named "example"), from a web job.
func line(n int) *logaggregator.Line {
	stream := logaggregator.StreamStdout
	if n%7 == 0 {
		stream = logaggregator.StreamStderr
	}
	return &logaggregator.Line{
		Time: time.Date(2025, 6, 1, 12, 0, 0, n*1000, time.UTC), AppID: "app-id", AppName: "example",
		ProcessType: "web", JobID: "host1-job1", Stream: stream, Data: fmt.Sprintf("line %d\n", n),
	}
}

// sendLines sends lines from to to, inclusive.
func sendLines(m *Manager, from, to int) {
	for n := from; n <= to; n++ {
		m.Send(line(n))
	}
}

// lineNumbers returns the numbers of the lines msgs carry, failing the
// test on a message that is not one of line's.
func lineNumbers(t *testing.T, msgs []message) []int {
	t.Helper()
	out := make([]int, 0, len(msgs))
	for _, m := range msgs {
		n, err := strconv.Atoi(strings.TrimPrefix(m.msg, "line "))
		if err != nil {
			t.Fatalf("message %+v is not one of the test's lines", m)
		}
		out = append(out, n)
	}
	return out
}

// statsOf returns the stats of drain id.
func statsOf(m *Manager, id string) logaggregator.DrainStats {
	for _, s := range m.Stats() {
		if s.DrainID == id {
			return s
		}
	}
	return logaggregator.DrainStats{}
}

// waitFor waits until the receiver has n lines and the drain counts them
// sent.
func waitFor(t *testing.T, m *Manager, r *receiver, id string, n int) {
	t.Helper()
	poll.UntilNil(t, 20*time.Second, fmt.Sprintf("%d lines at the receiver", n), func() error {
		if got, sent := len(r.got()), statsOf(m, id).Sent; got < n || sent < uint64(n) {
			return fmt.Errorf("the receiver has %d lines, the drain sent %d", got, sent)
		}
		return nil
	})
}

func TestDrains(t *testing.T) {
	cert := newTestCert(t)
	for _, scheme := range schemes {
		t.Run(scheme, func(t *testing.T) {
			t.Run("in order, nothing lost", func(t *testing.T) { testInOrder(t, scheme, cert) })
			t.Run("receiver down, then up", func(t *testing.T) { testDownThenUp(t, scheme, cert) })
			t.Run("overflow drops the oldest", func(t *testing.T) { testOverflow(t, scheme, cert) })
			t.Run("close sends what is left", func(t *testing.T) { testCloseFlushes(t, scheme, cert) })
			t.Run("close gives up when ctx ends", func(t *testing.T) { testCloseGivesUp(t, scheme, cert) })
			if scheme != controller.LogDrainSchemeSyslogTCP {
				t.Run("the receiver's certificate is checked", func(t *testing.T) { testCertificateChecked(t, scheme, cert) })
			}
		})
	}
}

// testInOrder: thousands of lines sent at once all reach the receiver, in
// order, each as the syslog message it should be.
func testInOrder(t *testing.T, scheme string, cert *testCert) {
	const n = 5000
	r := newReceiver(t, scheme, cert)
	m := newManager(t, testOptions(cert))
	if err := m.Sync([]controller.LogDrain{{ID: "d1", AppID: "app-id", URL: r.url()}}); err != nil {
		t.Fatal(err)
	}
	m.Send(&logaggregator.Line{AppID: "another-app", Data: "not this app's\n"})
	sendLines(m, 1, n)
	waitFor(t, m, r, "d1", n)
	msgs := r.got()
	if got := lineNumbers(t, msgs); !slices.Equal(got, seq(1, n)) {
		t.Fatalf("the receiver got %d lines, not 1 to %d in order (first %v)", len(got), n, got[:min(len(got), 10)])
	}
	for i, msg := range msgs {
		checkMessage(t, line(i+1), msg)
	}
	if st := statsOf(m, "d1"); st.Sent != n || st.Dropped != 0 || st.AppID != "app-id" {
		t.Fatalf("stats = %+v, want %d sent and none dropped", st, n)
	}
}

// testDownThenUp: lines sent while the receiver is down wait in the
// buffer and reach it, in order and once, when it is back.
func testDownThenUp(t *testing.T, scheme string, cert *testCert) {
	r := newReceiver(t, scheme, cert)
	m := newManager(t, testOptions(cert))
	if err := m.Sync([]controller.LogDrain{{ID: "d1", AppID: "app-id", URL: r.url()}}); err != nil {
		t.Fatal(err)
	}
	sendLines(m, 1, 100)
	waitFor(t, m, r, "d1", 100)

	r.stop()
	sendLines(m, 101, 200)
	poll.Until(t, 10*time.Second, "the drain fails while the receiver is down", func() bool { return statsOf(m, "d1").Failures > 0 })
	sendLines(m, 201, 300)
	if st := statsOf(m, "d1"); st.Sent != 100 || st.LastError == "" || st.LastErrorAt.IsZero() {
		t.Fatalf("stats while the receiver is down = %+v, want 100 sent and the last error", st)
	}

	r.start()
	waitFor(t, m, r, "d1", 300)
	if got := lineNumbers(t, r.got()); !slices.Equal(got, seq(1, 300)) {
		t.Fatalf("the receiver got %v, want 1 to 300 in order, once each", got)
	}
	if st := statsOf(m, "d1"); st.Dropped != 0 {
		t.Fatalf("stats = %+v, want nothing dropped", st)
	}
}

// dropRecorder records OnDrop's calls.
type dropRecorder struct {
	mu    sync.Mutex
	calls []dropCall
}

type dropCall struct {
	appID, drainID string
	n              uint64
	at             time.Time
}

func (d *dropRecorder) onDrop(appID, drainID string, n uint64) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.calls = append(d.calls, dropCall{appID, drainID, n, time.Now()})
}

func (d *dropRecorder) get() []dropCall {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]dropCall(nil), d.calls...)
}

// testOverflow: a receiver that is down makes the buffer overflow; the
// oldest lines are dropped and counted, OnDrop hears of it once per
// interval, and the receiver gets the newest lines when it is back.
func testOverflow(t *testing.T, scheme string, cert *testCert) {
	r := newReceiver(t, scheme, cert)
	r.stop()
	var drops dropRecorder
	opts := testOptions(cert)
	opts.BufferLines, opts.BatchLines = 100, 10
	opts.OnDrop, opts.DropReportInterval = drops.onDrop, time.Hour
	m := newManager(t, opts)
	if err := m.Sync([]controller.LogDrain{{ID: "d1", AppID: "app-id", URL: r.url()}}); err != nil {
		t.Fatal(err)
	}
	sendLines(m, 1, 250)
	if st := statsOf(m, "d1"); st.Dropped != 150 || st.Sent != 0 {
		t.Fatalf("stats = %+v, want 150 dropped (250 lines, room for 100)", st)
	}
	poll.Until(t, 10*time.Second, "OnDrop is called", func() bool { return len(drops.get()) > 0 })
	sendLines(m, 251, 300)
	poll.Holds(t, 200*time.Millisecond, "OnDrop is called once in its interval", func() bool { return len(drops.get()) == 1 })
	if c := drops.get()[0]; c.appID != "app-id" || c.drainID != "d1" || c.n < 1 || c.n > 150 {
		t.Fatalf("OnDrop(%q, %q, %d), want app-id, d1 and 1 to 150 lines", c.appID, c.drainID, c.n)
	}

	r.start()
	waitFor(t, m, r, "d1", 100)
	got := lineNumbers(t, r.got())
	if len(got) != 100 || !slices.IsSorted(got) || got[len(got)-1] != 300 || slices.Compact(slices.Clone(got)) == nil {
		t.Fatalf("the receiver got %v, want 100 lines in order ending with the last", got)
	}
	if st := statsOf(m, "d1"); st.Dropped != 200 || st.Sent != 100 {
		t.Fatalf("stats = %+v, want 200 dropped and 100 sent", st)
	}
}

// testCloseFlushes: Close sends what is buffered before it returns,
// without waiting for a batch to fill.
func testCloseFlushes(t *testing.T, scheme string, cert *testCert) {
	r := newReceiver(t, scheme, cert)
	opts := testOptions(cert)
	opts.BatchWait = time.Hour
	m := NewManager(opts)
	if err := m.Sync([]controller.LogDrain{{ID: "d1", AppID: "app-id", URL: r.url()}}); err != nil {
		t.Fatal(err)
	}
	sendLines(m, 1, 1234)
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	if err := m.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
	m.Send(line(1235)) // after Close: let go
	if st := statsOf(m, "d1"); st.Sent != 1234 {
		t.Fatalf("stats after Close = %+v, want 1234 sent", st)
	}
	// A syslog receiver may still be reading what was written.
	waitFor(t, m, r, "d1", 1234)
	if got := lineNumbers(t, r.got()); !slices.Equal(got, seq(1, 1234)) {
		t.Fatalf("after Close the receiver has %d lines, want 1 to 1234 in order", len(got))
	}
}

// testCloseGivesUp: with the receiver down, Close returns when its ctx
// ends, saying how many lines it left.
func testCloseGivesUp(t *testing.T, scheme string, cert *testCert) {
	r := newReceiver(t, scheme, cert)
	r.stop()
	m := NewManager(testOptions(cert))
	if err := m.Sync([]controller.LogDrain{{ID: "d1", AppID: "app-id", URL: r.url()}}); err != nil {
		t.Fatal(err)
	}
	sendLines(m, 1, 10)
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := m.Close(ctx)
	if err == nil || !strings.Contains(err.Error(), "10 lines left unsent") {
		t.Fatalf("Close = %v, want 10 lines left unsent", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("Close took %s after its ctx ended", d)
	}
}

// testCertificateChecked: a receiver whose certificate no root vouches for
// gets nothing, and the drain says why.
func testCertificateChecked(t *testing.T, scheme string, cert *testCert) {
	r := newReceiver(t, scheme, cert)
	opts := testOptions(cert)
	opts.RootCAs = x509.NewCertPool()
	m := newManager(t, opts)
	if err := m.Sync([]controller.LogDrain{{ID: "d1", AppID: "app-id", URL: r.url()}}); err != nil {
		t.Fatal(err)
	}
	sendLines(m, 1, 10)
	poll.Until(t, 10*time.Second, "the drain fails", func() bool { return statsOf(m, "d1").Failures > 0 })
	if st := statsOf(m, "d1"); !strings.Contains(st.LastError, "certificate") || st.Sent != 0 {
		t.Fatalf("stats = %+v, want a certificate error and nothing sent", st)
	}
	if got := r.got(); len(got) != 0 {
		t.Fatalf("the receiver got %d lines", len(got))
	}
}

// TestHTTPSRetry: a POST answered with an error is sent again, the same
// batch under the same frame id, until the receiver takes it; the URL's
// userinfo goes as basic auth, and no error shows the URL's secrets.
func TestHTTPSRetry(t *testing.T) {
	cert := newTestCert(t)
	r := newReceiver(t, controller.LogDrainSchemeHTTPS, cert)
	r.user = "user:SECRET@"
	r.mu.Lock()
	r.fail = 2
	r.mu.Unlock()
	opts := testOptions(cert)
	opts.BatchLines = 1000
	m := newManager(t, opts)
	if err := m.Sync([]controller.LogDrain{{ID: "d1", AppID: "app-id", URL: r.url()}}); err != nil {
		t.Fatal(err)
	}
	sendLines(m, 1, 50)
	waitFor(t, m, r, "d1", 50)
	if got := lineNumbers(t, r.got()); !slices.Equal(got, seq(1, 50)) {
		t.Fatalf("the receiver got %v, want 1 to 50 once each", got)
	}
	r.mu.Lock()
	frameIDs, posts, auth := r.frameIDs, r.posts, r.authSeen
	r.mu.Unlock()
	if len(frameIDs) != 1 || posts != 3 {
		t.Fatalf("%d POSTs with frame ids %v, want 3 POSTs of one batch", posts, frameIDs)
	}
	if len(auth) != 3 || auth[0] != "user:SECRET" {
		t.Fatalf("basic auth seen: %v, want user:SECRET", auth)
	}
	st := statsOf(m, "d1")
	if st.Failures != 2 || !strings.Contains(st.LastError, "503") {
		t.Fatalf("stats = %+v, want 2 failures, the last a 503", st)
	}
	for _, secret := range []string{"SECRET", "TOKEN"} {
		if strings.Contains(st.LastError, secret) {
			t.Fatalf("the last error %q shows the URL's %s", st.LastError, secret)
		}
	}
}

// TestDropReports: OnDrop hears of a drain's drops at most once per
// DropReportInterval, each time of those since the last, and in the end
// of them all.
func TestDropReports(t *testing.T) {
	cert := newTestCert(t)
	r := newReceiver(t, controller.LogDrainSchemeSyslogTCP, cert)
	r.stop()
	var drops dropRecorder
	const interval = 100 * time.Millisecond
	opts := testOptions(cert)
	opts.BufferLines = 10
	opts.OnDrop, opts.DropReportInterval = drops.onDrop, interval
	m := newManager(t, opts)
	if err := m.Sync([]controller.LogDrain{{ID: "d1", AppID: "app-id", URL: r.url()}}); err != nil {
		t.Fatal(err)
	}
	// Lines overflow the buffer steadily for five intervals.
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for n, end := 1, time.Now().Add(5*interval); time.Now().Before(end); n++ {
		m.Send(line(n))
		<-tick.C
	}
	dropped := statsOf(m, "d1").Dropped
	poll.UntilNil(t, 10*time.Second, "every drop reported", func() error {
		var sum uint64
		for _, c := range drops.get() {
			sum += c.n
		}
		if sum != dropped {
			return fmt.Errorf("%d drops reported of %d", sum, dropped)
		}
		return nil
	})
	calls := drops.get()
	if len(calls) < 3 {
		t.Fatalf("%d reports in five intervals of drops, want one per interval", len(calls))
	}
	for i := 1; i < len(calls); i++ {
		// The reporter's clock reads a little before the callback's.
		if gap := calls[i].at.Sub(calls[i-1].at); gap < interval-5*time.Millisecond {
			t.Fatalf("reports %d and %d came %s apart, within the %s interval", i-1, i, gap, interval)
		}
	}
}

// TestSync: Sync starts new drains, stops removed ones, sends each app's
// lines to its own drains only, and refuses a drain it cannot send to
// while running the others.
func TestSync(t *testing.T) {
	cert := newTestCert(t)
	ra, rb := newReceiver(t, controller.LogDrainSchemeSyslogTCP, cert), newReceiver(t, controller.LogDrainSchemeSyslogTCP, cert)
	m := newManager(t, testOptions(cert))
	err := m.Sync([]controller.LogDrain{
		{ID: "a", AppID: "app-id", URL: ra.url()},
		{ID: "b", AppID: "app-b", URL: rb.url()},
		{ID: "bad", AppID: "app-b", URL: "http://user:SECRET@logs.example.com/"},
	})
	if err == nil || !strings.Contains(err.Error(), "drain bad of app app-b") || strings.Contains(err.Error(), "SECRET") {
		t.Fatalf("Sync = %v, want the bad drain named without its URL's secret", err)
	}
	if st := m.Stats(); len(st) != 2 || st[0].DrainID != "a" || st[1].DrainID != "b" {
		t.Fatalf("Stats = %+v, want drains a and b", st)
	}
	sendLines(m, 1, 10)
	m.Send(&logaggregator.Line{AppID: "app-b", Data: "line 1000\n"})
	waitFor(t, m, ra, "a", 10)
	waitFor(t, m, rb, "b", 1)
	if got := lineNumbers(t, rb.got()); !slices.Equal(got, []int{1000}) {
		t.Fatalf("app-b's receiver got %v, want its own line only", got)
	}

	// b goes, a stays (with its counts), c comes.
	rc := newReceiver(t, controller.LogDrainSchemeSyslogTCP, cert)
	if err := m.Sync([]controller.LogDrain{{ID: "a", AppID: "app-id", URL: ra.url()}, {ID: "c", AppID: "app-b", URL: rc.url()}}); err != nil {
		t.Fatal(err)
	}
	m.Send(&logaggregator.Line{AppID: "app-b", Data: "line 1001\n"})
	sendLines(m, 11, 20)
	waitFor(t, m, ra, "a", 20)
	waitFor(t, m, rc, "c", 1)
	if got := lineNumbers(t, rb.got()); !slices.Equal(got, []int{1000}) {
		t.Fatalf("the removed drain's receiver got %v, want nothing more", got)
	}
	if st := m.Stats(); len(st) != 2 || st[0].DrainID != "a" || st[0].Sent != 20 || st[1].DrainID != "c" {
		t.Fatalf("Stats = %+v, want a (20 sent) and c", st)
	}
}

package server

import (
	"bufio"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/julienschmidt/httprouter"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/openflynn/flynn/logaggregator"
	"github.com/openflynn/flynn/logaggregator/drain"
	"github.com/openflynn/flynn/logaggregator/linestream"
	"github.com/openflynn/flynn/pkg/authkey"
	"github.com/openflynn/flynn/pkg/httpjson"
	"github.com/openflynn/flynn/pkg/metrics"
)

// maxEncodedLine bounds one JSON-encoded line of a POST /lines body: a
// line's data at its longest, every byte escaped, and its fields.
const maxEncodedLine = 6*logaggregator.MaxLineBytes + 4096

// keepAliveInterval is how often a quiet follow sends a keep-alive (an
// empty line, or an SSE comment), so proxies keep it open and a gone
// client is noticed.
const keepAliveInterval = 15 * time.Second

// Handler serves the aggregator's API (see package logaggregator) over a
// Store.
type Handler struct {
	store   *Store
	log     *slog.Logger
	router  http.Handler
	linesIn prometheus.Counter
	cut     prometheus.Counter
	out     prometheus.Counter
	refused prometheus.Counter
	// keepAlive is keepAliveInterval; tests shorten it.
	keepAlive time.Duration
	// drains, when set, is given every line the store kept.
	drains *drain.Manager
}

// NewHandler returns the API over store; every request needs key (empty:
// none). Its metrics go in reg.
func NewHandler(store *Store, key string, reg *prometheus.Registry, logger *slog.Logger) *Handler {
	h := &Handler{store: store, log: logger, keepAlive: keepAliveInterval}
	h.linesIn = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "flynn_logaggregator_lines_in_total",
		Help: "Lines received and kept.",
	})
	h.cut = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "flynn_logaggregator_lines_cut_total",
		Help: "Lines received longer than the longest kept, and cut.",
	})
	h.refused = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "flynn_logaggregator_lines_refused_total",
		Help: "Lines received without an app id or not JSON, dropped.",
	})
	h.out = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "flynn_logaggregator_lines_out_total",
		Help: "Lines sent to readers (flynn log).",
	})
	reg.MustRegister(h.linesIn, h.cut, h.refused, h.out, newStoreCollector(store))
	m := metrics.NewHTTP(reg, "flynn_logaggregator")
	r := m.Router()
	r.POST("/lines", h.postLines)
	r.GET("/apps/:app_id/log", h.readLog)
	r.GET("/drains/stats", h.drainStats)
	r.Handler(http.MethodGet, metrics.Path, metrics.Handler(reg, ""))
	r.NotFound = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		httpjson.WriteError(w, httpjson.NotFound("no such endpoint"))
	})
	h.router = authkey.Require(key, m.Wrap(r))
	return h
}

// ServeHTTP serves the API.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.router.ServeHTTP(w, r) }

// postLines takes a batch of lines, one JSON object a line. A line that is
// not a JSON object or names no app is dropped and counted, not the whole
// batch: one bad line of a shipper must not lose the others.
func (h *Handler) postLines(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	body := http.MaxBytesReader(w, r.Body, logaggregator.MaxBatchBytes)
	sc := bufio.NewScanner(body)
	sc.Buffer(make([]byte, 0, 64<<10), maxEncodedLine)
	var batch []logaggregator.Line
	refused := 0
	for sc.Scan() {
		b := sc.Bytes()
		if len(b) == 0 {
			continue
		}
		var l logaggregator.Line
		if err := json.Unmarshal(b, &l); err != nil || l.AppID == "" {
			refused++
			continue
		}
		if l.Stream != logaggregator.StreamStderr {
			l.Stream = logaggregator.StreamStdout
		}
		if l.Time.IsZero() {
			l.Time = time.Now()
		}
		if len(l.Data) > logaggregator.MaxLineBytes {
			l.Data = cutUTF8(l.Data, logaggregator.MaxLineBytes)
			h.cut.Inc()
		}
		l.Seq = 0 // the store numbers lines
		batch = append(batch, l)
	}
	if err := sc.Err(); err != nil {
		var tooBig *http.MaxBytesError
		switch {
		case errors.As(err, &tooBig):
			httpjson.WriteError(w, httpjson.Errorf(httpjson.CodeRequestTooLarge, "a batch may hold at most %d bytes", logaggregator.MaxBatchBytes))
		case errors.Is(err, bufio.ErrTooLong):
			httpjson.WriteError(w, httpjson.ValidationError("lines", "a line is longer than %d bytes encoded", maxEncodedLine))
		default:
			httpjson.WriteError(w, httpjson.Errorf(httpjson.CodeValidation, "read lines: %v", err))
		}
		return
	}
	kept := h.store.Append(batch)
	h.linesIn.Add(float64(kept))
	h.refused.Add(float64(refused))
	if h.drains != nil {
		for i := range batch {
			h.drains.Send(&batch[i])
		}
	}
	w.WriteHeader(http.StatusNoContent)
}

// readLog serves an app's lines, newline-delimited JSON by default, SSE
// (one "line" event each, its Seq as the id) when asked for
// text/event-stream; following, it sends lines as they come until the
// client goes. A reconnecting SSE client's Last-Event-ID resumes after it.
func (h *Handler) readLog(w http.ResponseWriter, r *http.Request, ps httprouter.Params) {
	opts, err := logaggregator.ParseReadOptions(r.URL.Query())
	if err != nil {
		httpjson.WriteError(w, httpjson.ValidationError("query", "%v", err))
		return
	}
	if id := r.Header.Get("Last-Event-ID"); id != "" {
		if n, err := strconv.ParseUint(id, 10, 64); err == nil {
			opts.After = n
		}
	}
	appID := ps.ByName("app_id")
	out, err := linestream.New(w, r)
	if err != nil {
		httpjson.WriteError(w, err)
		return
	}
	var wake <-chan struct{}
	if opts.Follow {
		// Watch before the first read, so no line falls between them.
		var stop func()
		wake, stop = h.store.Watch(appID)
		defer stop()
	}
	lines, last := h.store.Read(appID, opts)
	if err := h.send(out, lines); err != nil || !opts.Follow {
		return
	}
	opts.Lines = 0
	opts.After = max(opts.After, last)
	tick := time.NewTicker(h.keepAlive)
	defer tick.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-tick.C:
			if err := out.KeepAlive(); err != nil {
				return
			}
			continue
		case <-wake:
		}
		lines, last := h.store.Read(appID, opts)
		opts.After = max(opts.After, last)
		if err := h.send(out, lines); err != nil {
			return
		}
	}
}

func (h *Handler) send(out linestream.Writer, lines []logaggregator.Line) error {
	for i := range lines {
		if err := out.Write(&lines[i]); err != nil {
			return err
		}
	}
	h.out.Add(float64(len(lines)))
	return out.Flush()
}

// storeCollector reports what the store keeps.
type storeCollector struct {
	store              *Store
	apps, lines, bytes *prometheus.Desc
}

func newStoreCollector(store *Store) *storeCollector {
	return &storeCollector{
		store: store,
		apps:  prometheus.NewDesc("flynn_logaggregator_apps", "Apps with lines kept.", nil, nil),
		lines: prometheus.NewDesc("flynn_logaggregator_lines_kept", "Lines kept, all apps together.", nil, nil),
		bytes: prometheus.NewDesc("flynn_logaggregator_kept_bytes", "Bytes of line data kept, all apps together.", nil, nil),
	}
}

// Describe sends the store's series.
func (c *storeCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.apps
	ch <- c.lines
	ch <- c.bytes
}

// Collect sends the store's totals.
func (c *storeCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.store.Stats()
	ch <- prometheus.MustNewConstMetric(c.apps, prometheus.GaugeValue, float64(st.Apps))
	ch <- prometheus.MustNewConstMetric(c.lines, prometheus.GaugeValue, float64(st.Lines))
	ch <- prometheus.MustNewConstMetric(c.bytes, prometheus.GaugeValue, float64(st.Bytes))
}

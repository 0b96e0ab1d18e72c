// Package logaggregator holds the API types of Flynn's log aggregator, the
// layer-1 service that collects every job's output lines (and the router's
// request lines) for the whole cluster, keeps the last lines of each app,
// and serves them to `flynn log` (through the controller) and to an app's
// log drains.
//
// flynn-host ships the lines of every job it runs (package shipper); the
// router ships one line per request it proxies. The aggregator registers
// in discoverd as ServiceName.
//
// API (every request carries the cluster key):
//
//	POST /lines                 Lines as newline-delimited JSON, at most MaxBatchBytes
//	GET  /apps/:app_id/log      an app's lines, oldest first (ReadOptions as the query);
//	                            newline-delimited JSON, or SSE with Accept: text/event-stream
//	GET  /metrics               Prometheus metrics
package logaggregator

import (
	"fmt"
	"net/url"
	"strconv"
	"time"
)

// ServiceName is the discoverd service the aggregator registers as.
const ServiceName = "logaggregator"

// Streams of a Line.
const (
	StreamStdout = "stdout"
	StreamStderr = "stderr"
)

// ProcessTypeRouter is the process type of the router's request lines in
// an app's log, as Heroku's "router" source.
const ProcessTypeRouter = "router"

// DefaultLinesPerApp is how many lines of each app the aggregator keeps
// unless configured otherwise.
const DefaultLinesPerApp = 10000

// MaxLineBytes bounds a line's Data: flynn-host splits longer lines, as
// Docker does, and the aggregator cuts any longer one it is sent.
const MaxLineBytes = 16 << 10

// MaxBatchBytes bounds the body of one POST /lines.
const MaxBatchBytes = 4 << 20

// Line is one line of an app's log.
type Line struct {
	// Seq orders an app's lines; the aggregator assigns it. A follower
	// resumes after the last Seq it saw.
	Seq uint64 `json:"seq,omitempty"`
	// Time is when the job wrote the line (the router: when the request ended).
	Time time.Time `json:"time"`
	// AppID is the app's id; required.
	AppID string `json:"app_id"`
	// AppName is the app's name when known.
	AppName string `json:"app_name,omitempty"`
	// ReleaseID is the release the job runs.
	ReleaseID string `json:"release_id,omitempty"`
	// ProcessType is the job's process type ("web"; "" for a one-off
	// job; ProcessTypeRouter for the router's request lines).
	ProcessType string `json:"process_type,omitempty"`
	// JobID is the job that wrote the line (the router's own job for a
	// request line).
	JobID string `json:"job_id,omitempty"`
	// HostID is the node the job runs on.
	HostID string `json:"host_id,omitempty"`
	// Stream is StreamStdout or StreamStderr.
	Stream string `json:"stream"`
	// Data is the line, with its trailing newline when it had one (a
	// piece of a line longer than MaxLineBytes has none).
	Data string `json:"data"`
}

// ReadOptions select an app's lines. The zero value reads every line kept.
type ReadOptions struct {
	// Lines keeps only the last Lines of those selected (0: all kept).
	Lines int
	// Follow keeps the stream open, sending lines as they arrive.
	Follow bool
	// ProcessType keeps only lines of this process type.
	ProcessType string
	// JobID keeps only lines of this job.
	JobID string
	// Since keeps only lines written at or after this time.
	Since time.Time
	// After keeps only lines with a Seq above it (a follower resuming).
	After uint64
}

// Match reports whether l is selected by o's filters (not Lines, Follow).
func (o ReadOptions) Match(l *Line) bool {
	switch {
	case o.ProcessType != "" && l.ProcessType != o.ProcessType:
		return false
	case o.JobID != "" && l.JobID != o.JobID:
		return false
	case !o.Since.IsZero() && l.Time.Before(o.Since):
		return false
	case l.Seq <= o.After && o.After != 0:
		return false
	}
	return true
}

// Query encodes o as the query of GET /apps/:app_id/log.
func (o ReadOptions) Query() url.Values {
	q := url.Values{}
	if o.Lines > 0 {
		q.Set("lines", strconv.Itoa(o.Lines))
	}
	if o.Follow {
		q.Set("follow", "true")
	}
	if o.ProcessType != "" {
		q.Set("process_type", o.ProcessType)
	}
	if o.JobID != "" {
		q.Set("job_id", o.JobID)
	}
	if !o.Since.IsZero() {
		q.Set("since", o.Since.UTC().Format(time.RFC3339Nano))
	}
	if o.After > 0 {
		q.Set("after", strconv.FormatUint(o.After, 10))
	}
	return q
}

// ParseReadOptions reads ReadOptions from a query written by Query.
func ParseReadOptions(q url.Values) (ReadOptions, error) {
	var o ReadOptions
	if v := q.Get("lines"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return o, fmt.Errorf("lines: want a number of lines, not %q", v)
		}
		o.Lines = n
	}
	if v := q.Get("follow"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return o, fmt.Errorf("follow: want true or false, not %q", v)
		}
		o.Follow = b
	}
	o.ProcessType = q.Get("process_type")
	o.JobID = q.Get("job_id")
	if v := q.Get("since"); v != "" {
		t, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			return o, fmt.Errorf("since: want an RFC 3339 time, not %q", v)
		}
		o.Since = t
	}
	if v := q.Get("after"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return o, fmt.Errorf("after: want a sequence number, not %q", v)
		}
		o.After = n
	}
	return o, nil
}

// DrainStats counts what one log drain did since the aggregator started
// it (GET /drains/stats).
type DrainStats struct {
	DrainID string `json:"drain_id"`
	AppID   string `json:"app_id"`
	// Sent counts the lines the receiver took.
	Sent uint64 `json:"sent"`
	// Dropped counts the lines lost because the drain's buffer was full
	// (the receiver was down or slower than the app).
	Dropped uint64 `json:"dropped"`
	// Failures counts failed connections and sends, each retried.
	Failures uint64 `json:"failures"`
	// LastError is the last failure's error, if any, and LastErrorAt
	// when it happened.
	LastError   string    `json:"last_error,omitempty"`
	LastErrorAt time.Time `json:"last_error_at,omitzero"`
}

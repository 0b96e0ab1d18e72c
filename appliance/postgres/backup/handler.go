package backup

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/openflynn/flynn/appliance/postgres/backup/archive"
	"github.com/openflynn/flynn/pkg/httpjson"
	"github.com/openflynn/flynn/pkg/iocount"
)

// The HTTP API of backups, which flynn-postgres-api serves behind its
// provider key and the controller calls:
//
//	GET  /backup   → 200 application/x-tar: the archive, streamed as Dump
//	                 writes it. The status and headers go out at once (a
//	                 backup may take longer than a proxy waits for
//	                 headers), so a failure midway ends the body early,
//	                 without the manifest, and sets the trailer
//	                 ErrorTrailer to what went wrong.
//	POST /restore  body: an archive → the archive is read whole and checked
//	                 first: 400 validation_error when it is no complete
//	                 Flynn backup, 409 conflict when something on the
//	                 server is in the way or another restore runs; nothing
//	                 has changed then. Else 200 application/x-ndjson: one
//	                 Event per line, progress first, then a Result or an
//	                 error (after which the restore was undone).
//
// Both lift the server's read and write deadlines for their request: an
// archive may take hours to stream.

// ErrorTrailer is the trailer that says why a backup's body ended early.
const ErrorTrailer = "Flynn-Backup-Error"

// Event is one line of a restore's answer.
type Event struct {
	// Progress says what the restore is doing.
	Progress string `json:"progress,omitempty"`
	// Result ends a restore that succeeded.
	Result *Result `json:"result,omitempty"`
	// Error ends a restore that failed.
	Error *httpjson.Error `json:"error,omitempty"`
}

// Handler serves GET /backup and POST /restore (see above) of the server
// cfg names. Mount it behind the caller's authentication.
func Handler(cfg Config) http.Handler {
	cfg = cfg.withDefaults()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /backup", func(w http.ResponseWriter, r *http.Request) { serveBackup(cfg, w, r) })
	mux.HandleFunc("POST /restore", func(w http.ResponseWriter, r *http.Request) { serveRestore(cfg, w, r) })
	return mux
}

// noDeadlines lifts the server's deadlines from a long request (a server
// without them, or a ResponseWriter that cannot, is left as it is).
func noDeadlines(w http.ResponseWriter) *http.ResponseController {
	rc := http.NewResponseController(w)
	_ = rc.SetReadDeadline(time.Time{})
	_ = rc.SetWriteDeadline(time.Time{})
	return rc
}

func serveBackup(cfg Config, w http.ResponseWriter, r *http.Request) {
	rc := noDeadlines(w)
	w.Header().Set("Content-Type", "application/x-tar")
	w.Header().Set("Trailer", ErrorTrailer)
	w.WriteHeader(http.StatusOK)
	_ = rc.Flush()
	start := cfg.Now()
	cw := &iocount.Writer{W: w}
	if err := Dump(r.Context(), cfg, cw); err != nil {
		if r.Context().Err() == nil {
			cfg.Logger.Error("backup failed", "err", err, "bytes_sent", cw.N)
		}
		w.Header().Set(ErrorTrailer, oneLine(err.Error()))
		return
	}
	cfg.Logger.Info("backup sent", "bytes", cw.N, "duration", cfg.Now().Sub(start))
}

func serveRestore(cfg Config, w http.ResponseWriter, r *http.Request) {
	rc := noDeadlines(w)
	plan, err := Prepare(r.Context(), cfg, r.Body)
	if err != nil {
		if r.Context().Err() == nil {
			cfg.Logger.Warn("restore refused", "err", err)
		}
		httpjson.WriteError(w, APIError(err))
		return
	}
	defer plan.Close()
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.WriteHeader(http.StatusOK)
	enc := json.NewEncoder(w)
	send := func(e Event) {
		_ = enc.Encode(e)
		_ = rc.Flush()
	}
	res, err := plan.Apply(r.Context(), func(msg string) { send(Event{Progress: msg}) })
	if err != nil {
		cfg.Logger.Error("restore failed", "err", err)
		send(Event{Error: APIError(err)})
		return
	}
	cfg.Logger.Info("restore done", "databases", res.Databases, "roles", len(res.Roles), "blobs_added", res.BlobsAdded, "controller_database", res.ControllerDatabase)
	send(Event{Result: res})
}

// APIError is the API error for a backup's or a restore's failure: a
// refused archive is a validation error, a server in the way or busy a
// conflict, anything else an unknown error with the message (the callers
// are the cluster's operators, who need it to act).
func APIError(err error) *httpjson.Error {
	msg := oneLine(err.Error())
	switch {
	case errors.Is(err, archive.ErrNotBackup), errors.Is(err, archive.ErrIncomplete),
		errors.Is(err, archive.ErrCorrupt), errors.Is(err, archive.ErrNewerVersion):
		return &httpjson.Error{Code: httpjson.CodeValidation, Message: msg}
	case errors.Is(err, ErrConflict), errors.Is(err, ErrBusy):
		return &httpjson.Error{Code: httpjson.CodeConflict, Message: msg}
	}
	return &httpjson.Error{Code: httpjson.CodeUnknown, Message: msg}
}

// oneLine keeps a tool's multi-line message on one line, for a header or
// a CLI's one-line error.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

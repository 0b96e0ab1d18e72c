package store

import (
	"context"
	"log/slog"
	"maps"
	"slices"
	"strings"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// newZapLogger returns a zap logger, for etcd's server and client, that
// writes to logger with the attribute component=etcd: etcd's warnings and
// errors as logger's level lets them through, its info and debug lines
// only when logger is at debug, since every raft step and compaction
// would drown discoverd's own lines.
func newZapLogger(logger *slog.Logger) *zap.Logger {
	if logger == nil {
		return zap.NewNop()
	}
	return zap.New(&slogCore{logger: logger.With("component", "etcd")})
}

// slogCore is a zapcore.Core over an slog.Logger.
type slogCore struct {
	logger *slog.Logger
	attrs  []any
}

var _ zapcore.Core = (*slogCore)(nil)

// Enabled lets etcd's lines below warn through only to a logger at debug.
func (c *slogCore) Enabled(l zapcore.Level) bool {
	ctx := context.Background()
	if l < zapcore.WarnLevel && !c.logger.Enabled(ctx, slog.LevelDebug) {
		return false
	}
	return c.logger.Enabled(ctx, slogLevel(l))
}

// slogLevel is the slog level of a zap level; zap's levels above error
// (dpanic, panic, fatal) are errors, which zap then acts on.
func slogLevel(l zapcore.Level) slog.Level {
	switch {
	case l < zapcore.InfoLevel:
		return slog.LevelDebug
	case l < zapcore.WarnLevel:
		return slog.LevelInfo
	case l < zapcore.ErrorLevel:
		return slog.LevelWarn
	}
	return slog.LevelError
}

func (c *slogCore) With(fields []zapcore.Field) zapcore.Core {
	attrs := append(append([]any(nil), c.attrs...), fieldAttrs(fields)...)
	return &slogCore{logger: c.logger, attrs: attrs}
}

// quiet reports whether an etcd line says nothing wrong, though it comes
// up routinely:
//   - warnings about choices discoverd made on purpose: one port for gRPC
//     and HTTP, as discoverd speaks gRPC alone; simple auth tokens, as
//     discoverd does not use etcd auth (the client certificate is the
//     credential);
//   - a new member's complaint that it has no raft term yet to read its
//     storage version from, which it reads once it has one;
//   - the client's warning about a request whose caller gave up on it (a
//     watcher gone, discoverd stopping), which etcd had no part in;
//   - the member's servers reporting, as it stops, that their listeners
//     were closed (a listener that fails while etcd runs ends it, through
//     Embedded.Err).
func quiet(e zapcore.Entry, fields []zapcore.Field) bool {
	switch e.Message {
	case "setting up serving from embedded etcd failed.",
		"stopping insecure grpc server due to error", "stopped insecure grpc server due to error",
		"stopping secure grpc server due to error", "stopped secure grpc server due to error":
		return hasError(fields, "use of closed network connection", "http: Server closed", "mux: server closed")
	case "Running http and grpc server on single port. This is not recommended for production.",
		"simple token is not cryptographically signed":
		return true
	case "Failed to detect schema version", "failed to update storage version":
		return hasError(fields, "missing term information")
	case "retrying of unary invoker failed":
		// gRPC's status of a cancelled call; the client does not wrap
		// it, so errors.Is cannot see the context's error.
		return hasError(fields, "code = Canceled")
	}
	return false
}

// hasError reports whether one of fields is an error whose text contains
// one of texts: etcd's errors are mostly gRPC statuses and net errors,
// which errors.Is does not tell apart.
func hasError(fields []zapcore.Field, texts ...string) bool {
	for _, f := range fields {
		err, ok := f.Interface.(error)
		if !ok || f.Type != zapcore.ErrorType {
			continue
		}
		for _, t := range texts {
			if strings.Contains(err.Error(), t) {
				return true
			}
		}
	}
	return false
}

func (c *slogCore) Check(e zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	if c.Enabled(e.Level) {
		return ce.AddCore(e, c)
	}
	return ce
}

func (c *slogCore) Write(e zapcore.Entry, fields []zapcore.Field) error {
	if quiet(e, fields) {
		return nil
	}
	attrs := append(append([]any(nil), c.attrs...), fieldAttrs(fields)...)
	if e.LoggerName != "" {
		attrs = append(attrs, slog.String("logger", e.LoggerName))
	}
	c.logger.Log(context.Background(), slogLevel(e.Level), e.Message, attrs...)
	return nil
}

func (c *slogCore) Sync() error { return nil }

// fieldAttrs turns zap fields into slog attributes, by way of zap's own
// encoder so every field type (errors, durations, arrays) reads as zap
// would print it.
func fieldAttrs(fields []zapcore.Field) []any {
	if len(fields) == 0 {
		return nil
	}
	attrs := make([]any, 0, len(fields))
	for _, f := range fields {
		// One encoder per field keeps the fields' order; a field may add
		// more than one key (an error adds "error" and "errorVerbose").
		enc := zapcore.NewMapObjectEncoder()
		f.AddTo(enc)
		for _, k := range slices.Sorted(maps.Keys(enc.Fields)) {
			attrs = append(attrs, slog.Any(k, enc.Fields[k]))
		}
	}
	return attrs
}

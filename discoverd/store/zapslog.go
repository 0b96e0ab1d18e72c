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

// newZapLogger returns a zap logger, for etcd, that writes its warnings and
// errors to logger; etcd's info lines (every raft step, every compaction)
// would drown discoverd's own.
func newZapLogger(logger *slog.Logger) *zap.Logger {
	if logger == nil {
		return zap.NewNop()
	}
	return zap.New(&slogCore{logger: logger})
}

// slogCore is a zapcore.Core over an slog.Logger, enabled from warn up.
type slogCore struct {
	logger *slog.Logger
	attrs  []any
}

var _ zapcore.Core = (*slogCore)(nil)

func (c *slogCore) Enabled(l zapcore.Level) bool { return l >= zapcore.WarnLevel }

func (c *slogCore) With(fields []zapcore.Field) zapcore.Core {
	attrs := append(append([]any(nil), c.attrs...), fieldAttrs(fields)...)
	return &slogCore{logger: c.logger, attrs: attrs}
}

// quiet reports whether an etcd line says nothing wrong, though every
// start would repeat it: warnings about choices discoverd made on purpose
// (one port for gRPC and HTTP, as discoverd speaks gRPC alone; simple auth
// tokens, as discoverd does not use etcd auth: the client certificate is
// the credential), and a new member's complaint that it has no raft term
// yet to read its storage version from, which it reads once it has one.
func quiet(e zapcore.Entry, fields []zapcore.Field) bool {
	switch e.Message {
	case "Running http and grpc server on single port. This is not recommended for production.",
		"simple token is not cryptographically signed":
		return true
	case "Failed to detect schema version", "failed to update storage version":
		for _, f := range fields {
			if err, ok := f.Interface.(error); ok && f.Type == zapcore.ErrorType && strings.Contains(err.Error(), "missing term information") {
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
	level := slog.LevelError
	if e.Level == zapcore.WarnLevel {
		level = slog.LevelWarn
	}
	attrs := append(append([]any(nil), c.attrs...), fieldAttrs(fields)...)
	if e.LoggerName != "" {
		attrs = append(attrs, slog.String("logger", e.LoggerName))
	}
	c.logger.Log(context.Background(), level, e.Message, attrs...)
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

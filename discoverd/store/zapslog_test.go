package store

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"go.uber.org/zap"
)

func TestZapToSlog(t *testing.T) {
	tests := []struct {
		name  string
		level slog.Level // discoverd's --log-level
		log   func(*zap.Logger)
		want  string // "" for nothing
	}{
		{"warn", slog.LevelInfo, func(l *zap.Logger) { l.Warn("slow", zap.Duration("took", 2e9)) }, `level=WARN msg=slow component=etcd took=2s`},
		{"info is dropped", slog.LevelInfo, func(l *zap.Logger) { l.Info("applied", zap.Int("index", 3)) }, ""},
		{"debug is dropped", slog.LevelInfo, func(l *zap.Logger) { l.Debug("request stats") }, ""},
		{"info at debug", slog.LevelDebug, func(l *zap.Logger) { l.Info("applied", zap.Int("index", 3)) }, `level=INFO msg=applied component=etcd index=3`},
		{"debug at debug", slog.LevelDebug, func(l *zap.Logger) { l.Debug("request stats") }, `level=DEBUG msg="request stats" component=etcd`},
		{"warn below --log-level error", slog.LevelError, func(l *zap.Logger) { l.Warn("slow") }, ""},
		{"error with an error", slog.LevelInfo, func(l *zap.Logger) { l.Error("lost peer", zap.Error(errors.New("EOF"))) }, `level=ERROR msg="lost peer" component=etcd error=EOF`},
		{"fields from With, and the logger's name", slog.LevelInfo, func(l *zap.Logger) {
			l.Named("raft").With(zap.String("member", "abc")).Warn("stepped down", zap.Uint64("term", 4))
		}, `level=WARN msg="stepped down" component=etcd member=abc term=4 logger=raft`},
		{"arrays", slog.LevelInfo, func(l *zap.Logger) { l.Warn("peers", zap.Strings("urls", []string{"a", "b"})) }, `level=WARN msg=peers component=etcd urls="[a b]"`},
		{"a choice of discoverd's", slog.LevelDebug, func(l *zap.Logger) { l.Warn("simple token is not cryptographically signed") }, ""},
		{"a new member's storage version", slog.LevelDebug, func(l *zap.Logger) {
			l.Error("failed to update storage version", zap.Error(errors.New("cannot detect storage schema version: missing term information")))
		}, ""},
		{"another storage version error", slog.LevelInfo, func(l *zap.Logger) {
			l.Error("failed to update storage version", zap.Error(errors.New("disk full")))
		}, `level=ERROR msg="failed to update storage version" component=etcd error="disk full"`},
		{"a request its caller cancelled", slog.LevelInfo, func(l *zap.Logger) {
			l.Warn("retrying of unary invoker failed", zap.String("method", "/etcdserverpb.KV/Range"), zap.Error(errors.New("rpc error: code = Canceled desc = context canceled")))
		}, ""},
		{"a listener closed as etcd stops", slog.LevelInfo, func(l *zap.Logger) {
			l.Error("setting up serving from embedded etcd failed.", zap.Error(errors.New("accept tcp 127.0.0.1:2379: use of closed network connection")))
		}, ""},
		{"a server that failed", slog.LevelInfo, func(l *zap.Logger) {
			l.Error("setting up serving from embedded etcd failed.", zap.Error(errors.New("tls: bad certificate")))
		}, `level=ERROR msg="setting up serving from embedded etcd failed." component=etcd error="tls: bad certificate"`},
		{"a request that failed", slog.LevelInfo, func(l *zap.Logger) {
			l.Warn("retrying of unary invoker failed", zap.Error(errors.New("rpc error: code = Unavailable desc = no leader")))
		}, `level=WARN msg="retrying of unary invoker failed" component=etcd error="rpc error: code = Unavailable desc = no leader"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			logger := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{
				Level: tt.level,
				ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
					if a.Key == slog.TimeKey {
						return slog.Attr{}
					}
					return a
				},
			}))
			tt.log(newZapLogger(logger))
			if got := strings.TrimSpace(buf.String()); got != tt.want {
				t.Errorf("logged %q, want %q", got, tt.want)
			}
		})
	}
}

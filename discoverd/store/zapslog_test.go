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
		name string
		log  func(*zap.Logger)
		want string // "" for nothing
	}{
		{"info is dropped", func(l *zap.Logger) { l.Info("applied", zap.Int("index", 3)) }, ""},
		{"debug is dropped", func(l *zap.Logger) { l.Debug("request stats") }, ""},
		{"warn", func(l *zap.Logger) { l.Warn("slow", zap.Duration("took", 2e9)) }, `level=WARN msg=slow took=2s`},
		{"error with an error", func(l *zap.Logger) { l.Error("lost peer", zap.Error(errors.New("EOF"))) }, `level=ERROR msg="lost peer" error=EOF`},
		{"fields from With, and the logger's name", func(l *zap.Logger) {
			l.Named("raft").With(zap.String("member", "abc")).Warn("stepped down", zap.Uint64("term", 4))
		}, `level=WARN msg="stepped down" member=abc term=4 logger=raft`},
		{"arrays", func(l *zap.Logger) { l.Warn("peers", zap.Strings("urls", []string{"a", "b"})) }, `level=WARN msg=peers urls="[a b]"`},
		{"a choice of discoverd's", func(l *zap.Logger) { l.Warn("simple token is not cryptographically signed") }, ""},
		{"a new member's storage version", func(l *zap.Logger) {
			l.Error("failed to update storage version", zap.Error(errors.New("cannot detect storage schema version: missing term information")))
		}, ""},
		{"another storage version error", func(l *zap.Logger) {
			l.Error("failed to update storage version", zap.Error(errors.New("disk full")))
		}, `level=ERROR msg="failed to update storage version" error="disk full"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			logger := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{
				Level: slog.LevelDebug,
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

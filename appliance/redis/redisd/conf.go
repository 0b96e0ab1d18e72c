package redisd

import (
	"fmt"
	"strings"
)

// Conf returns the redis.conf of cfg. Redis runs in the job's own network
// namespace, reached only through the router's TCP route and discoverd, so
// it listens on every address there and needs no protected mode: the
// password guards it. Its data is both snapshotted and logged to an
// append-only file (fsync every second), so a crash loses at most about a
// second of writes and a clean stop (SIGTERM) none.
//
// The commands that could turn a client into code running in the job stay
// off, as Redis 7 has them by default; saying so here keeps them off should
// a later Redis change its defaults: CONFIG SET of the paths and other
// protected settings, DEBUG, and MODULE.
func Conf(cfg Config) string {
	var b strings.Builder
	line := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	line("# Written by flynn-redis at each start, from its environment: edits are lost.")
	line("bind 0.0.0.0")
	line("port %d", cfg.Port)
	line("protected-mode no")
	line("requirepass %s", quote(cfg.Password))
	line("dir %s", quote(cfg.DataDir))
	line("appendonly yes")
	line("appendfsync everysec")
	line("daemonize no")
	line("supervised no")
	line(`logfile ""`)
	line("enable-protected-configs no")
	line("enable-debug-command no")
	line("enable-module-command no")
	return b.String()
}

// quote returns s as a double-quoted redis.conf argument, which Redis
// reads back byte for byte: quotes and backslashes escaped, and every byte
// that is not printable ASCII (a newline, say, which would otherwise end
// the directive) as \xHH.
func quote(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"' || c == '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		case c < 0x20 || c >= 0x7f:
			fmt.Fprintf(&b, `\x%02x`, c)
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('"')
	return b.String()
}

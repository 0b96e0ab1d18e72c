package controller

import (
	"strings"
	"testing"
)

func TestParseLogDrainURL(t *testing.T) {
	tests := []struct {
		name    string
		url     string
		wantErr string // "" accepts
	}{
		{name: "syslog over tls", url: "syslog+tls://logs.example.com:6514"},
		{name: "syslog over tcp", url: "syslog+tcp://10.0.0.1:514"},
		{name: "syslog, a trailing slash", url: "syslog+tls://logs.example.com:6514/"},
		{name: "syslog, ipv6", url: "syslog+tcp://[2001:db8::1]:514"},
		{name: "scheme in capitals", url: "SYSLOG+TLS://logs.example.com:6514"},
		{name: "https", url: "https://logs.example.com/drain"},
		{name: "https with a port, basic auth and a query", url: "https://u:p@logs.example.com:8443/x/y?token=abc"},
		{name: "heroku's syslog", url: "syslog://logs.example.com:514", wantErr: "syslog+tcp://"},
		{name: "http", url: "http://logs.example.com/drain", wantErr: "in the clear"},
		{name: "http on loopback", url: "http://127.0.0.1:8080/drain", wantErr: "in the clear"},
		{name: "unknown scheme", url: "ftp://logs.example.com", wantErr: `unknown scheme "ftp"`},
		{name: "no scheme", url: "logs.example.com:514", wantErr: "unknown scheme"},
		{name: "a path only", url: "/var/log/x", wantErr: "want syslog+tls://"},
		{name: "empty", url: "", wantErr: "want syslog+tls://"},
		{name: "syslog without a port", url: "syslog+tls://logs.example.com", wantErr: "needs a port"},
		{name: "port out of range", url: "syslog+tcp://logs.example.com:65536", wantErr: "from 1 to 65535"},
		{name: "port zero", url: "https://logs.example.com:0/", wantErr: "from 1 to 65535"},
		{name: "no host", url: "syslog+tcp://:514", wantErr: "with a host"},
		{name: "opaque", url: "syslog+tcp:logs.example.com:514", wantErr: "with a host"},
		{name: "syslog with a path", url: "syslog+tls://logs.example.com:6514/token", wantErr: "only a host and port"},
		{name: "syslog with userinfo", url: "syslog+tls://u:p@logs.example.com:6514", wantErr: "only a host and port"},
		{name: "syslog with a query", url: "syslog+tls://logs.example.com:6514?x=1", wantErr: "only a host and port"},
		{name: "a fragment", url: "https://logs.example.com/x#frag", wantErr: "fragment"},
		{name: "not a URL", url: "https://logs.example.com:port/", wantErr: "not a URL"},
		{name: "too long", url: "https://logs.example.com/" + strings.Repeat("x", MaxLogDrainURLBytes), wantErr: "longer than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u, err := ParseLogDrainURL(tt.url)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("ParseLogDrainURL(%q) = %v, want it accepted", tt.url, err)
			case tt.wantErr == "" && u.Hostname() == "":
				t.Fatalf("ParseLogDrainURL(%q) has no host", tt.url)
			case tt.wantErr != "" && err == nil:
				t.Fatalf("ParseLogDrainURL(%q) accepted, want an error with %q", tt.url, tt.wantErr)
			case tt.wantErr != "" && !strings.Contains(err.Error(), tt.wantErr):
				t.Fatalf("ParseLogDrainURL(%q) = %v, want an error with %q", tt.url, err, tt.wantErr)
			}
		})
	}
}

func TestRedactLogDrainURL(t *testing.T) {
	tests := []struct{ in, want string }{
		{"syslog+tls://logs.example.com:6514", "syslog+tls://logs.example.com:6514"},
		{"https://logs.example.com/", "https://logs.example.com"},
		{"https://logs.example.com/bulk/TOKEN/tag/x", "https://logs.example.com/(redacted)"},
		{"https://listener.example.com:8071?token=TOKEN", "https://listener.example.com:8071/(redacted)"},
		{"https://user:TOKEN@logs.example.com", "https://(redacted)@logs.example.com"},
		{"https://TOKEN@[::1]:8443/x?y", "https://(redacted)@[::1]:8443/(redacted)"},
		{"https://logs.example.com:port/TOKEN", RedactedValue},
		{"TOKEN", RedactedValue},
	}
	for _, tt := range tests {
		got := RedactLogDrainURL(tt.in)
		if got != tt.want {
			t.Errorf("RedactLogDrainURL(%q) = %q, want %q", tt.in, got, tt.want)
		}
		if strings.Contains(got, "TOKEN") {
			t.Errorf("RedactLogDrainURL(%q) = %q keeps the token", tt.in, got)
		}
	}
}

package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/openflynn/flynn/controller"
	"github.com/openflynn/flynn/logaggregator"
)

func TestLogDrains(t *testing.T) {
	h := newHarness(t)
	app := h.app("example")

	out := h.ok("-a", "example", "log", "drain", "add", "syslog+tls://logs.example.test:6514")
	if !strings.HasPrefix(out, "Created log drain ") || !strings.HasSuffix(out, ": example's log goes to syslog+tls://logs.example.test:6514\n") {
		t.Fatalf("log drain add printed %q", out)
	}
	h.ok("-a", "example", "log", "drain", "add", "https://user:secret@logs.example.test/flynn")
	h.fails("url: say syslog+tls://HOST:PORT", "-a", "example", "log", "drain", "add", "syslog://logs.example.test:514")
	h.fails("url: http:// would send the log in the clear", "-a", "example", "log", "drain", "add", "http://logs.example.test/")
	h.fails("want the drain's URL", "-a", "example", "log", "drain", "add")
	h.fails("already exists", "-a", "example", "log", "drain", "add", "syslog+tls://logs.example.test:6514")

	out = squash(h.ok("-a", "example", "log", "drain", "list"))
	for _, want := range []string{"ID URL ADDED\n", " syslog+tls://logs.example.test:6514 ", " https://user:secret@logs.example.test/flynn "} {
		if !strings.Contains(out, want) {
			t.Errorf("log drain list lacks %q:\n%s", want, out)
		}
	}
	var drains []*controller.LogDrain
	if err := json.Unmarshal([]byte(h.ok("-a", "example", "log", "drain", "--json")), &drains); err != nil || len(drains) != 2 {
		t.Fatalf("log drain --json: %d drains, %v", len(drains), err)
	}
	if drains[0].AppID != app.ID || drains[0].URL != "syslog+tls://logs.example.test:6514" {
		t.Fatalf("first drain = %+v", drains[0])
	}

	if out := h.ok("-a", "example", "log", "drain", "remove", drains[0].ID); out != "Log drain "+drains[0].ID+" removed.\n" {
		t.Fatalf("log drain remove printed %q", out)
	}
	got, err := h.api.AppLogDrains(context.Background(), app.ID)
	if err != nil || len(got) != 1 || got[0].ID != drains[1].ID {
		t.Fatalf("after remove: %+v, %v; want the https drain only", got, err)
	}
	h.fails("not found", "-a", "example", "log", "drain", "remove", drains[0].ID)
	h.fails("want a drain ID", "-a", "example", "log", "drain", "remove")
}

// TestLogDrainsOfSystemApps: changing a system app's drains needs --system.
func TestLogDrainsOfSystemApps(t *testing.T) {
	h := newHarness(t)
	if err := h.api.CreateApp(context.Background(), &controller.App{Name: "router", System: true}); err != nil {
		t.Fatal(err)
	}
	h.fails("router is a system app", "-a", "router", "log", "drain", "add", "syslog+tls://logs.example.test:6514")
}

func TestLogDrainsGolden(t *testing.T) {
	created := ago(3 * 24 * time.Hour)
	drains := []*controller.LogDrain{
		{ID: "drain-1", URL: "syslog+tls://logs.example.com:6514", CreatedAt: created},
		{ID: "drain-2", URL: "https://logs.example.com/flynn", CreatedAt: ago(2 * time.Hour)},
	}
	tests := []struct {
		name   string
		drains func() []*controller.LogDrain
	}{
		{"drains", func() []*controller.LogDrain { return drains }},
		{"drains-stats", func() []*controller.LogDrain {
			withStats := []*controller.LogDrain{{}, {}, {ID: "drain-3", URL: "syslog+tcp://10.0.0.1:514", CreatedAt: created}}
			*withStats[0], *withStats[1] = *drains[0], *drains[1]
			withStats[0].Stats = &logaggregator.DrainStats{Sent: 120345, Dropped: 0}
			withStats[1].Stats = &logaggregator.DrainStats{Sent: 9000, Dropped: 1500, Failures: 3, LastError: "POST https://logs.example.com/(redacted): 503 Service Unavailable", LastErrorAt: ago(90 * time.Second)}
			return withStats
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := renderDrains(&buf, goldenNow, tt.drains()); err != nil {
				t.Fatal(err)
			}
			golden(t, tt.name, buf.Bytes())
		})
	}
}

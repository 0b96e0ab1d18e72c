package cli

import (
	"context"
	"strings"
	"testing"
)

func TestStack(t *testing.T) {
	h := newHarness(t)
	app := h.app("example")
	golden(t, "stacks", []byte(h.ok("-a", "example", "stack")))

	if out := h.ok("-a", "example", "stack", "set", "flynn-trixie"); out != "example builds on flynn-trixie from its next push on\n" {
		t.Errorf("stack set printed %q", out)
	}
	got, err := h.api.App(context.Background(), app.ID)
	if err != nil || got.Stack != "flynn-trixie" {
		t.Fatalf("after stack set: %+v, %v", got, err)
	}
	if out := h.ok("-a", "example", "stack"); !containsLine(out, "*  flynn-trixie    13      3.13    20.19") {
		t.Errorf("stack does not mark the selected one:\n%s", out)
	}
	h.fails(`unknown stack "heroku-24" (the stacks are flynn-bookworm, flynn-trixie)`, "-a", "example", "stack", "set", "heroku-24")
	h.fails("want one stack", "-a", "example", "stack", "set")
	h.ok("-a", "example", "stack", "set", "default")
	if got, err = h.api.App(context.Background(), app.ID); err != nil || got.Stack != "" {
		t.Fatalf("after stack set default: %+v, %v", got, err)
	}
	// Without an app, the stacks alone.
	h.ok("stack")

	// create --stack; an unknown one is the controller's validation error.
	h.ok("create", "--no-remote", "--stack", "flynn-trixie", "other")
	if got, err = h.api.App(context.Background(), "other"); err != nil || got.Stack != "flynn-trixie" {
		t.Fatalf("create --stack: %+v, %v", got, err)
	}
	h.fails(`stack: unknown stack "nope"`, "create", "--no-remote", "--stack", "nope", "third")
}

// containsLine reports whether out has the line want, trailing spaces aside.
func containsLine(out, want string) bool {
	for _, l := range strings.Split(out, "\n") {
		if strings.TrimRight(l, " ") == want {
			return true
		}
	}
	return false
}

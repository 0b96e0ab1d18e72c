package controller

import (
	"regexp"
	"time"
)

// App is a named application: the unit that owns releases, formations,
// jobs, routes and resources.
type App struct {
	ID string `json:"id"`
	// Name is unique and matches AppNamePattern; generated when empty on
	// create.
	Name string            `json:"name"`
	Meta map[string]string `json:"meta,omitempty"`
	// Strategy is how a deployment replaces jobs: StrategyOneByOne (default)
	// or StrategyAllAtOnce.
	Strategy string `json:"strategy,omitempty"`
	// ReleaseID is the current release; empty until one is set.
	ReleaseID string `json:"release,omitempty"`
	// Stack is the stack the app's pushes build and run on (a name of
	// package pkg/stacks); empty means the default stack, or the one a
	// push's requested language version needs.
	Stack string `json:"stack,omitempty"`
	// System marks the platform's own apps (the controller, the router,
	// …). Only a system request (one made with the controller key, not a
	// person's API key) may create one, change it, deploy or scale it, run
	// jobs of it, route to it or delete it. It is set when the app is
	// created and never changes.
	System    bool      `json:"system,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// AppUpdate changes an app; nil fields stay as they are.
type AppUpdate struct {
	Meta     map[string]string `json:"meta,omitempty"`
	Strategy *string           `json:"strategy,omitempty"`
	// Stack selects the app's stack from its next push on ("" for the
	// default, chosen per push).
	Stack *string `json:"stack,omitempty"`
}

// Deploy strategies.
const (
	StrategyOneByOne  = "one-by-one"
	StrategyAllAtOnce = "all-at-once"
)

// AppNamePattern is what an app name must match: it becomes part of host
// names and discoverd service names.
const AppNamePattern = `^[a-z][a-z0-9-]{0,29}$`

var appNameRE = regexp.MustCompile(AppNamePattern)

// ValidAppName reports whether name may name an app.
func ValidAppName(name string) bool { return appNameRE.MatchString(name) }

// ValidStrategy reports whether s names a deploy strategy.
func ValidStrategy(s string) bool { return s == StrategyOneByOne || s == StrategyAllAtOnce }

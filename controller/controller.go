// Package controller holds the wire types of the controller API: apps,
// artifacts, releases, formations, jobs (with their CPU and memory),
// routes, keys, API keys, providers, resources, deployments, log drains,
// an app's router metrics and events. The server (controller/server), its
// store (controller/postgres), the Go client (controller/client) and
// every consumer share these definitions. It imports only the standard
// library and other components' wire types (host, logaggregator).
//
// Errors on the wire are github.com/openflynn/flynn/pkg/httpjson errors
// ({code, message, field}); that package holds the one table mapping codes
// to HTTP statuses.
package controller

import (
	"encoding/json"
	"time"
)

// Event is one change to the controller's state, as streamed by GET /events.
// Events are written in the same transaction as the change they describe, so
// their ids give the order in which changes were committed.
//
// The log keeps no secrets, so that a secret removed from the state is gone
// from the controller: a release or resource event names its env vars but
// carries RedactedValue for every value, and a route event carries its
// certificate without the private key. A follower that needs those reads
// the object itself (GET /releases/:id, /apps/:id/routes/:id). The log
// also forgets events older than the controller's retention (a week by
// default): resuming a stream past an event it deleted is refused with
// precondition_failed on the field "since", and the follower reads the
// state afresh and streams from now.
type Event struct {
	// ID increases with every event; resume a stream from it.
	ID    int64  `json:"id"`
	AppID string `json:"app,omitempty"`
	// ObjectType is one of the ObjectType* constants.
	ObjectType string `json:"object_type"`
	ObjectID   string `json:"object_id"`
	// Op is "create", "update" or "delete".
	Op string `json:"op"`
	// Data is the object after the change (for delete: the object before).
	Data      json.RawMessage `json:"data"`
	CreatedAt time.Time       `json:"created_at"`
}

// RedactedValue stands for every env value in a release or resource event.
const RedactedValue = "(redacted)"

// Object types that events carry.
const (
	ObjectTypeApp        = "app"
	ObjectTypeAppRelease = "app_release"
	ObjectTypeArtifact   = "artifact"
	ObjectTypeRelease    = "release"
	ObjectTypeFormation  = "formation"
	ObjectTypeJob        = "job"
	ObjectTypeRoute      = "route"
	ObjectTypeKey        = "key"
	ObjectTypeAPIKey     = "api_key"
	ObjectTypeProvider   = "provider"
	ObjectTypeResource   = "resource"
	ObjectTypeDeployment = "deployment"
	ObjectTypeLogDrain   = "log_drain"
)

// Event operations.
const (
	OpCreate = "create"
	OpUpdate = "update"
	OpDelete = "delete"
)

// EventFilter selects the events a stream carries.
type EventFilter struct {
	// AppID keeps only the events of one app; empty keeps all.
	AppID string
	// ObjectTypes keeps only events of these object types; empty keeps all.
	ObjectTypes []string
	// Since resumes after the event with this id. Zero starts with the
	// events that happen after the stream opens (use SinceBeginning for the
	// whole history).
	Since int64
}

// SinceBeginning as EventFilter.Since streams the whole history the log
// still holds.
const SinceBeginning int64 = -1

// StreamStartHeader carries, on a GET /events response, the id the stream
// starts after, so a client that asked for "from now" can resume from the
// right place even if it reconnects before any event arrives.
const StreamStartHeader = "Flynn-Stream-Start"

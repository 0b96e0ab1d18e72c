package controller

import (
	"regexp"
	"time"
)

// APIKey lets a person use the controller API: its secret is the basic-auth
// password. The controller keeps only a hash of the secret; the secret is
// in the reply to the request that created the key, and nowhere else.
//
// Requests made with an API key are person requests: they may do
// everything but change system apps (see App.System), which takes the
// controller key.
type APIKey struct {
	ID string `json:"id"`
	// Name is unique and matches APIKeyNamePattern ("admin", "alice").
	Name string `json:"name"`
	// Secret is set only in the reply to POST /api-keys.
	Secret    string    `json:"secret,omitempty"`
	CreatedAt time.Time `json:"created_at"`
}

// APIKeyNamePattern is what an API key's name must match: a person's name
// or address ("alice", "bob@example.com", "ci-deploy").
const APIKeyNamePattern = `^[A-Za-z0-9][A-Za-z0-9._@+-]{0,63}$`

var apiKeyNameRE = regexp.MustCompile(APIKeyNamePattern)

// ValidAPIKeyName reports whether name may name an API key.
func ValidAPIKeyName(name string) bool { return apiKeyNameRE.MatchString(name) }

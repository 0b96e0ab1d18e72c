package controller

import (
	"encoding/json"
	"net/url"
	"strings"
	"time"
)

// Provider provisions resources (databases, say): POST to its URL with the
// resource config returns a ProvisionedResource; DELETE on its URL followed
// by "/<resource id>" (the ProvisionedResource's ID) removes one, which the
// controller asks for when the last app using the resource is deleted or
// the resource is removed.
type Provider struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	// URL may carry the provider's key as its userinfo
	// (http://:KEY@postgres-api.discoverd/databases), which the
	// controller sends as basic auth; logs and events show it through
	// RedactURL.
	URL       string    `json:"url"`
	CreatedAt time.Time `json:"created_at"`
}

// RedactURL returns rawURL without the secret its userinfo may carry (a
// provider's key): a password, or a user name given alone, becomes
// RedactedValue. A URL that does not parse is replaced whole, since where
// a secret would sit in it is unknown.
func RedactURL(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		return RedactedValue
	}
	if u.User == nil {
		return rawURL
	}
	keep := ""
	if _, hasPassword := u.User.Password(); hasPassword {
		keep = url.User(u.User.Username()).String() + ":"
	}
	u.User = nil
	// url.URL would escape RedactedValue's parentheses.
	return strings.Replace(u.String(), "//", "//"+keep+RedactedValue+"@", 1)
}

// Resource is something a provider provisioned, with the env that reaches
// it, attached to zero or more apps.
type Resource struct {
	ID         string `json:"id"`
	ProviderID string `json:"provider"`
	// ExternalID is the provider's id for the resource.
	ExternalID string            `json:"external_id"`
	Env        map[string]string `json:"env,omitempty"`
	Apps       []string          `json:"apps,omitempty"`
	CreatedAt  time.Time         `json:"created_at"`
}

// ResourceRequest is the body of POST /providers/:id/resources.
type ResourceRequest struct {
	// Config is passed to the provider as is.
	Config json.RawMessage `json:"config,omitempty"`
	// Apps get a new release with the resource's env merged in.
	Apps []string `json:"apps,omitempty"`
}

// ProvisionedResource is a provider's reply to a provision request.
type ProvisionedResource struct {
	ID  string            `json:"id"`
	Env map[string]string `json:"env"`
}

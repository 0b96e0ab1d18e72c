package controller

import (
	"encoding/json"
	"time"
)

// Provider provisions resources (databases, say): POST to its URL with the
// resource config returns a ProvisionedResource; DELETE on its URL followed
// by "/<resource id>" (the ProvisionedResource's ID) removes one, which the
// controller asks for when the last app using the resource is deleted.
type Provider struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	URL       string    `json:"url"`
	CreatedAt time.Time `json:"created_at"`
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

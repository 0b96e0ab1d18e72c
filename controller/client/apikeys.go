package client

import (
	"context"
	"net/http"

	"github.com/openflynn/flynn/controller"
)

// CreateAPIKey makes an API key for a person; the key returned carries
// its secret, which the controller never shows again.
func (c *Client) CreateAPIKey(ctx context.Context, name string) (*controller.APIKey, error) {
	var k controller.APIKey
	return &k, c.do(ctx, http.MethodPost, "/api-keys", map[string]string{"name": name}, &k)
}

// APIKey returns an API key (without its secret) by id or name.
func (c *Client) APIKey(ctx context.Context, idOrName string) (*controller.APIKey, error) {
	var k controller.APIKey
	return &k, c.do(ctx, http.MethodGet, path("api-keys", idOrName), nil, &k)
}

// APIKeys lists every API key, without secrets.
func (c *Client) APIKeys(ctx context.Context) ([]*controller.APIKey, error) {
	return listAll[*controller.APIKey](ctx, c, "/api-keys")
}

// RevokeAPIKey deletes an API key by id or name and returns it; requests
// made with it fail from then on.
func (c *Client) RevokeAPIKey(ctx context.Context, idOrName string) (*controller.APIKey, error) {
	var k controller.APIKey
	return &k, c.do(ctx, http.MethodDelete, path("api-keys", idOrName), nil, &k)
}

// Package client is the Go client of the controller API, used by the CLI,
// gitreceive, the scheduler, the router and every other component. Every
// call takes a context first; failures the API reports come back as
// *httpjson.Error (check them with httpjson.IsNotFound and IsCode).
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"

	"github.com/openflynn/flynn/pkg/authkey"
	"github.com/openflynn/flynn/pkg/httpjson"
)

// Client talks to one controller.
type Client struct {
	url  string
	key  string
	http *http.Client
}

// New returns a client for the controller at url ("http://127.0.0.1:8081")
// that authenticates with key: the controller key (system requests) or an
// API key's secret (a person's requests); "" sends none.
func New(url, key string) *Client {
	return NewWithHTTPClient(url, key, &http.Client{})
}

// NewWithHTTPClient is New with the HTTP client to use (for TLS pinning or
// a custom dialer). Calls are bounded by their contexts, so hc needs no
// Timeout, and event streams would break with one.
func NewWithHTTPClient(url, key string, hc *http.Client) *Client {
	return &Client{url: strings.TrimRight(url, "/"), key: key, http: hc}
}

// path joins escaped segments into a URL path.
func path(segments ...string) string {
	var b strings.Builder
	for _, s := range segments {
		b.WriteByte('/')
		b.WriteString(url.PathEscape(s))
	}
	return b.String()
}

func (c *Client) newRequest(ctx context.Context, method, p string, in any) (*http.Request, error) {
	var body io.Reader
	if in != nil {
		data, err := json.Marshal(in)
		if err != nil {
			return nil, fmt.Errorf("controller client: encode %s %s: %w", method, p, err)
		}
		body = bytes.NewReader(data)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.url+p, body)
	if err != nil {
		return nil, fmt.Errorf("controller client: %w", err)
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if method == http.MethodPut || method == http.MethodDelete {
		// The API's PUTs and DELETEs are idempotent. Saying so (with the
		// header present but empty, which is not sent) lets the transport
		// send one again on a new connection when the keep-alive
		// connection it reused turns out closed: a controller that is
		// being replaced closes its idle connections as it stops, and a
		// client that reaches "http://controller.discoverd" pools
		// connections to every instance together.
		req.Header["Idempotency-Key"] = nil
	}
	req.Header.Set("Accept", "application/json")
	authkey.Set(req, c.key)
	return req, nil
}

// do sends in as JSON (when not nil) and decodes the reply into out (when
// not nil).
func (c *Client) do(ctx context.Context, method, p string, in, out any) error {
	_, err := c.doLink(ctx, method, p, in, out)
	return err
}

// doLink is do that also returns the reply's rel="next" link, if any.
func (c *Client) doLink(ctx context.Context, method, p string, in, out any) (string, error) {
	req, err := c.newRequest(ctx, method, p, in)
	if err != nil {
		return "", err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return "", fmt.Errorf("controller client: %s %s: %w", method, p, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return "", httpjson.ReadError(resp)
	}
	if out != nil {
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			return "", fmt.Errorf("controller client: decode %s %s: %w", method, p, err)
		}
	}
	return nextLink(resp.Header.Get("Link")), nil
}

var nextLinkRE = regexp.MustCompile(`<([^>]+)>;\s*rel="next"`)

func nextLink(header string) string {
	if m := nextLinkRE.FindStringSubmatch(header); m != nil {
		return m[1]
	}
	return ""
}

// listAll fetches every page of a list.
func listAll[T any](ctx context.Context, c *Client, p string) ([]T, error) {
	all := []T{}
	for p != "" {
		var page []T
		next, err := c.doLink(ctx, http.MethodGet, p, nil, &page)
		if err != nil {
			return nil, err
		}
		all = append(all, page...)
		p = next
	}
	return all, nil
}

// Ping checks that the controller answers.
func (c *Client) Ping(ctx context.Context) error {
	return c.do(ctx, http.MethodGet, "/ping", nil, nil)
}

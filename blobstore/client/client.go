// Package client is the Go client of the blobstore HTTP API, used by
// slugbuilder, gitreceive and anything else that stores or fetches blobs.
// Bodies stream both ways; nothing is buffered whole.
package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"

	"github.com/openflynn/flynn/blobstore"
	"github.com/openflynn/flynn/pkg/authkey"
	"github.com/openflynn/flynn/pkg/httpjson"
)

// Client talks to one blobstore server.
type Client struct {
	base string
	key  string
	// HTTP is the client requests go through; http.DefaultClient when nil.
	HTTP *http.Client
}

// New returns a client for the blobstore at baseURL (for example
// "http://blobstore.discoverd:5001") that authenticates every request with key,
// the cluster key ("" for none).
func New(baseURL, key string) *Client {
	return &Client{base: strings.TrimRight(baseURL, "/"), key: key}
}

// URL returns the full URL of the blob at path, as stored in a release's
// SLUG_URL. path may start with a slash or not.
func (c *Client) URL(path string) string {
	return c.base + "/" + strings.TrimPrefix(path, "/")
}

// Put streams r to the blob at path, replacing any previous version, and
// returns what the server stored. When r is a regular *os.File or has a
// length http.NewRequest knows (bytes.Reader, strings.Reader…), the length is sent
// up front so an oversized upload is refused before any byte moves.
func (c *Client) Put(ctx context.Context, path string, r io.Reader) (*blobstore.Info, error) {
	req, err := c.request(ctx, http.MethodPut, path, r)
	if err != nil {
		return nil, err
	}
	if f, ok := r.(*os.File); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode().IsRegular() {
			if pos, err := f.Seek(0, io.SeekCurrent); err == nil {
				req.ContentLength = fi.Size() - pos
			}
		}
	}
	resp, err := c.do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var info blobstore.Info
	if err := json.NewDecoder(resp.Body).Decode(&info); err != nil {
		return nil, fmt.Errorf("put %s: decode reply: %w", path, err)
	}
	return &info, nil
}

// Get opens the blob at path. The caller reads and closes the body. The
// returned Info has no ModTime when the server sent none it could parse.
func (c *Client) Get(ctx context.Context, path string) (io.ReadCloser, *blobstore.Info, error) {
	req, err := c.request(ctx, http.MethodGet, path, nil)
	if err != nil {
		return nil, nil, err
	}
	resp, err := c.do(req)
	if err != nil {
		return nil, nil, err
	}
	return resp.Body, infoFromHeader(path, resp), nil
}

// Stat returns the metadata of the blob at path without its content.
func (c *Client) Stat(ctx context.Context, path string) (*blobstore.Info, error) {
	req, err := c.request(ctx, http.MethodHead, path, nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.do(req)
	if err != nil {
		return nil, err
	}
	resp.Body.Close()
	return infoFromHeader(path, resp), nil
}

// Delete removes the blob at path. A missing blob is an error that
// errors.Is(err, blobstore.ErrNotFound) recognises.
func (c *Client) Delete(ctx context.Context, path string) error {
	req, err := c.request(ctx, http.MethodDelete, path, nil)
	if err != nil {
		return err
	}
	resp, err := c.do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	return nil
}

// List returns the blobs whose path starts with prefix ("" for all), in
// path order, asking for them a page at a time. It needs the key.
func (c *Client) List(ctx context.Context, prefix string) ([]blobstore.Info, error) {
	var all []blobstore.Info
	after := ""
	for {
		q := url.Values{"prefix": {prefix}, "after": {after}, "limit": {strconv.Itoa(blobstore.MaxListLimit)}}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+"/?"+q.Encode(), nil)
		if err != nil {
			return nil, fmt.Errorf("list %q: %w", prefix, err)
		}
		authkey.Set(req, c.key)
		resp, err := c.do(req)
		if err != nil {
			return nil, fmt.Errorf("list %q: %w", prefix, err)
		}
		var page []blobstore.Info
		err = json.NewDecoder(resp.Body).Decode(&page)
		resp.Body.Close()
		if err != nil {
			return nil, fmt.Errorf("list %q: decode reply: %w", prefix, err)
		}
		// Ask until a page comes back empty rather than short, so that a
		// server with a smaller page size is listed whole too.
		if len(page) == 0 {
			return all, nil
		}
		all = append(all, page...)
		after = page[len(page)-1].Path
	}
}

func (c *Client) request(ctx context.Context, method, path string, body io.Reader) (*http.Request, error) {
	u, err := url.Parse(c.URL(path))
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), body)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	authkey.Set(req, c.key)
	return req, nil
}

// do sends req and turns a non-2xx reply into an error; a 404 also
// matches blobstore.ErrNotFound and a 413 blobstore.ErrTooLarge.
func (c *Client) do(req *http.Request) (*http.Response, error) {
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", req.Method, req.URL.Path, err)
	}
	if resp.StatusCode/100 == 2 {
		return resp, nil
	}
	defer resp.Body.Close()
	apiErr := httpjson.ReadError(resp)
	switch resp.StatusCode {
	case http.StatusNotFound:
		return nil, fmt.Errorf("%s %s: %w", req.Method, req.URL.Path, errors.Join(blobstore.ErrNotFound, apiErr))
	case http.StatusRequestEntityTooLarge:
		return nil, fmt.Errorf("%s %s: %w", req.Method, req.URL.Path, errors.Join(blobstore.ErrTooLarge, apiErr))
	}
	return nil, fmt.Errorf("%s %s: %w", req.Method, req.URL.Path, apiErr)
}

func infoFromHeader(path string, resp *http.Response) *blobstore.Info {
	info := &blobstore.Info{
		Path: strings.TrimPrefix(path, "/"),
		Size: resp.ContentLength,
		ETag: strings.Trim(resp.Header.Get("ETag"), `"`),
	}
	if t, err := http.ParseTime(resp.Header.Get("Last-Modified")); err == nil {
		info.ModTime = t
	}
	return info
}

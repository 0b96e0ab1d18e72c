// Package client talks to the log aggregator: shippers post lines, and
// the controller reads an app's lines for flynn log.
package client

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/openflynn/flynn/logaggregator"
	"github.com/openflynn/flynn/pkg/authkey"
	"github.com/openflynn/flynn/pkg/httpjson"
)

// DiscoverdURL is the aggregator's URL for an HTTP client that resolves
// discoverd names (discoverd/client.HTTPClient).
const DiscoverdURL = "http://" + logaggregator.ServiceName + ".discoverd"

// Client is an aggregator's API.
type Client struct {
	url  string
	key  string
	http *http.Client
}

// New returns a client of the aggregator at baseURL, sending key; hc nil
// uses http.DefaultClient (which has no timeout: follows last).
func New(baseURL, key string, hc *http.Client) *Client {
	if hc == nil {
		hc = http.DefaultClient
	}
	return &Client{url: strings.TrimRight(baseURL, "/"), key: key, http: hc}
}

// Post sends lines, at most logaggregator.MaxBatchBytes of them encoded.
func (c *Client) Post(ctx context.Context, lines []logaggregator.Line) error {
	var body bytes.Buffer
	enc := json.NewEncoder(&body)
	for i := range lines {
		if err := enc.Encode(&lines[i]); err != nil {
			return fmt.Errorf("logaggregator: encode line: %w", err)
		}
	}
	return c.PostEncoded(ctx, body.Bytes())
}

// PostEncoded sends lines already encoded as newline-delimited JSON.
func (c *Client) PostEncoded(ctx context.Context, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url+"/lines", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-ndjson")
	authkey.Set(req, c.key)
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("logaggregator: post lines: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		return fmt.Errorf("logaggregator: post lines: %w", httpjson.ReadError(resp))
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	return nil
}

// Stream is an app's lines as the aggregator sends them.
type Stream struct {
	body io.ReadCloser
	sc   *bufio.Scanner
}

// Read opens the lines of app appID (its id, not its name) selected by
// opts; with opts.Follow the stream stays open until ctx ends or Close.
func (c *Client) Read(ctx context.Context, appID string, opts logaggregator.ReadOptions) (*Stream, error) {
	u := c.url + "/apps/" + url.PathEscape(appID) + "/log"
	if q := opts.Query().Encode(); q != "" {
		u += "?" + q
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	authkey.Set(req, c.key)
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("logaggregator: read log: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		return nil, fmt.Errorf("logaggregator: read log: %w", httpjson.ReadError(resp))
	}
	return NewStream(resp.Body), nil
}

// NewStream reads newline-delimited JSON lines from body (an aggregator's
// or the controller's answer), skipping keep-alive empty lines.
func NewStream(body io.ReadCloser) *Stream {
	sc := bufio.NewScanner(body)
	sc.Buffer(make([]byte, 0, 64<<10), 6*logaggregator.MaxLineBytes+4096)
	return &Stream{body: body, sc: sc}
}

// Next returns the next line, or io.EOF at the end of the stream.
func (s *Stream) Next() (logaggregator.Line, error) {
	for s.sc.Scan() {
		b := s.sc.Bytes()
		if len(b) == 0 {
			continue
		}
		var l logaggregator.Line
		if err := json.Unmarshal(b, &l); err != nil {
			return l, fmt.Errorf("logaggregator: read line: %w", err)
		}
		return l, nil
	}
	if err := s.sc.Err(); err != nil {
		return logaggregator.Line{}, err
	}
	return logaggregator.Line{}, io.EOF
}

// Close ends the stream.
func (s *Stream) Close() error { return s.body.Close() }

// Lines reads the stream in a goroutine of its own and delivers its lines
// on the first channel, for a caller that waits on other things too (a
// keepalive, a client that goes away). Why the reading ended (io.EOF at
// the stream's end, ctx's error once ctx ends) comes once on the second
// channel. A reader blocked in the stream ends when ctx ends only once the
// caller also calls Close, which it must do before it waits for that.
func (s *Stream) Lines(ctx context.Context) (<-chan logaggregator.Line, <-chan error) {
	lines := make(chan logaggregator.Line)
	ended := make(chan error, 1)
	go func() {
		for {
			l, err := s.Next()
			if err != nil {
				ended <- err
				return
			}
			select {
			case lines <- l:
			case <-ctx.Done():
				ended <- ctx.Err()
				return
			}
		}
	}()
	return lines, ended
}

// DrainStats returns what each log drain sent and dropped since the
// aggregator started it.
func (c *Client) DrainStats(ctx context.Context) ([]logaggregator.DrainStats, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.url+"/drains/stats", nil)
	if err != nil {
		return nil, err
	}
	authkey.Set(req, c.key)
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("logaggregator: drain stats: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("logaggregator: drain stats: %w", httpjson.ReadError(resp))
	}
	var stats []logaggregator.DrainStats
	if err := json.NewDecoder(resp.Body).Decode(&stats); err != nil {
		return nil, fmt.Errorf("logaggregator: drain stats: %w", err)
	}
	return stats, nil
}

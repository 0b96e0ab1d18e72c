package client

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/openflynn/flynn/controller"
	"github.com/openflynn/flynn/pkg/httpjson"
	"github.com/openflynn/flynn/pkg/sse"
)

// StreamEvents streams the events that match filter. The first connection
// is made before it returns (so a caller that streams, then lists, misses
// nothing in between); after that it reconnects by itself and resumes after
// the last event it delivered, so every event arrives once, in order. The
// channel closes when ctx ends.
func (c *Client) StreamEvents(ctx context.Context, filter controller.EventFilter) (<-chan *controller.Event, error) {
	since := ""
	switch {
	case filter.Since == controller.SinceBeginning:
		since = "0"
	case filter.Since > 0:
		since = strconv.FormatInt(filter.Since, 10)
	}
	resp, err := c.openEvents(ctx, filter, since)
	if err != nil {
		return nil, err
	}
	ch := make(chan *controller.Event, 64)
	go func() {
		defer close(ch)
		backoff := 50 * time.Millisecond
		for {
			if start := resp.Header.Get(controller.StreamStartHeader); since == "" && start != "" {
				since = start
			}
			last, delivered := c.readEvents(ctx, resp, ch)
			resp.Body.Close()
			if last != "" {
				since = last
			}
			if delivered {
				backoff = 50 * time.Millisecond
			}
			for {
				select {
				case <-ctx.Done():
					return
				case <-time.After(backoff):
				}
				backoff = min(backoff*2, 5*time.Second)
				if resp, err = c.openEvents(ctx, filter, since); err == nil {
					break
				}
			}
		}
	}()
	return ch, nil
}

func (c *Client) openEvents(ctx context.Context, filter controller.EventFilter, since string) (*http.Response, error) {
	q := url.Values{}
	if filter.AppID != "" {
		q.Set("app_id", filter.AppID)
	}
	if len(filter.ObjectTypes) > 0 {
		q.Set("object_types", strings.Join(filter.ObjectTypes, ","))
	}
	p := "/events"
	if len(q) > 0 {
		p += "?" + q.Encode()
	}
	req, err := c.newRequest(ctx, http.MethodGet, p, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "text/event-stream")
	if since != "" {
		req.Header.Set("Last-Event-Id", since)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("controller client: GET %s: %w", p, err)
	}
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		return nil, httpjson.ReadError(resp)
	}
	return resp, nil
}

// readEvents passes events on until the stream breaks or ctx ends, and
// returns the id of the last event delivered.
func (c *Client) readEvents(ctx context.Context, resp *http.Response, ch chan<- *controller.Event) (last string, delivered bool) {
	r := sse.NewReader(resp.Body)
	for {
		e, err := r.Next()
		if err != nil {
			return last, delivered
		}
		var ev controller.Event
		if err := json.Unmarshal(e.Data, &ev); err != nil {
			return last, delivered // a broken stream; reconnect and resume
		}
		select {
		case ch <- &ev:
		case <-ctx.Done():
			return last, delivered
		}
		last, delivered = strconv.FormatInt(ev.ID, 10), true
	}
}

// Package controllerroutes follows the controller's routes for the router
// over the controller API, with nothing but net/http and pkg/sse: `GET
// /routes` lists every route, and `GET /events?object_types=route` streams
// their changes as Server-Sent Events. After a dropped stream it reconnects
// and resumes after the last event id it saw (or, before any event, after
// the id the controller said the stream started at), so no change is lost.
package controllerroutes

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/openflynn/flynn/controller"
	"github.com/openflynn/flynn/pkg/authkey"
	"github.com/openflynn/flynn/pkg/httpjson"
	"github.com/openflynn/flynn/pkg/sse"
	"github.com/openflynn/flynn/router"
)

// Source reads routes from a controller. Its zero value is not usable; use
// New.
type Source struct {
	url    string
	key    string
	http   *http.Client
	logger *slog.Logger
}

// New returns a Source for the controller at baseURL (e.g.
// "http://controller.example.com"), authenticating with the cluster key.
func New(baseURL, key string, logger *slog.Logger) *Source {
	return &Source{
		url: strings.TrimSuffix(baseURL, "/"),
		key: key,
		// No client timeout: the event stream is long-lived. Requests are
		// bounded by their contexts instead.
		http:   &http.Client{Transport: &http.Transport{ResponseHeaderTimeout: 30 * time.Second, IdleConnTimeout: 90 * time.Second}},
		logger: logger.With("component", "controllerroutes"),
	}
}

// Routes returns every route of every app.
func (s *Source) Routes(ctx context.Context) ([]*router.Route, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "GET", s.url+"/routes", nil)
	if err != nil {
		return nil, err
	}
	authkey.Set(req, s.key)
	req.Header.Set("Accept", "application/json")
	resp, err := s.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("list routes: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("list routes: %w", httpjson.ReadError(resp))
	}
	var list []*controller.Route
	if err := json.NewDecoder(io.LimitReader(resp.Body, 256<<20)).Decode(&list); err != nil {
		return nil, fmt.Errorf("list routes: decode: %w", err)
	}
	out := make([]*router.Route, 0, len(list))
	for _, r := range list {
		out = append(out, convert(r))
	}
	return out, nil
}

// WatchRoutes streams route changes from now on. The first connection is
// made before it returns (so that the caller's following Routes call cannot
// miss a change); after that it reconnects by itself and resumes. The
// channel closes when ctx ends.
func (s *Source) WatchRoutes(ctx context.Context) (<-chan router.RouteEvent, error) {
	body, since, err := s.connect(ctx, 0)
	if err != nil {
		return nil, err
	}
	ch := make(chan router.RouteEvent)
	go func() {
		defer close(ch)
		backoff := 100 * time.Millisecond
		for {
			last, err := s.read(ctx, body, ch)
			body.Close()
			if last > since {
				since = last
				backoff = 100 * time.Millisecond
			}
			if since <= 0 {
				// Nothing to resume from: end the stream, and the router
				// lists and watches again.
				if ctx.Err() == nil {
					s.logger.Warn("route event stream ended before any event; resyncing", "err", err)
				}
				return
			}
			for {
				if ctx.Err() != nil {
					return
				}
				s.logger.Warn("route event stream interrupted, reconnecting", "err", err, "since", since, "retry_in", backoff)
				select {
				case <-ctx.Done():
					return
				case <-time.After(backoff):
				}
				backoff = min(backoff*2, 5*time.Second)
				body, _, err = s.connect(ctx, since)
				if err == nil {
					break
				}
			}
		}
	}()
	return ch, nil
}

// connect opens the event stream after event id since (0: from now). It
// returns the id the stream starts after, as the controller reports it.
func (s *Source) connect(ctx context.Context, since int64) (io.ReadCloser, int64, error) {
	q := url.Values{"object_types": {controller.ObjectTypeRoute}}
	if since > 0 {
		q.Set("since", strconv.FormatInt(since, 10))
	}
	req, err := http.NewRequestWithContext(ctx, "GET", s.url+"/events?"+q.Encode(), nil)
	if err != nil {
		return nil, 0, err
	}
	authkey.Set(req, s.key)
	req.Header.Set("Accept", "text/event-stream")
	if since > 0 {
		req.Header.Set("Last-Event-Id", strconv.FormatInt(since, 10))
	}
	resp, err := s.http.Do(req)
	if err != nil {
		return nil, 0, fmt.Errorf("open route event stream: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		return nil, 0, fmt.Errorf("open route event stream: %w", httpjson.ReadError(resp))
	}
	start := since
	if v, err := strconv.ParseInt(resp.Header.Get(controller.StreamStartHeader), 10, 64); err == nil && v > start {
		start = v
	}
	return resp.Body, start, nil
}

// read passes route events on until the stream ends, returning the last
// event id it saw.
func (s *Source) read(ctx context.Context, body io.Reader, ch chan<- router.RouteEvent) (int64, error) {
	r := sse.NewReader(body)
	var last int64
	for {
		e, err := r.Next()
		if err != nil {
			if err == io.EOF {
				err = errors.New("stream closed by the controller")
			}
			return last, err
		}
		var ev controller.Event
		if err := json.Unmarshal(e.Data, &ev); err != nil {
			s.logger.Warn("undecodable event", "id", e.ID, "err", err)
			continue
		}
		if ev.ID > last {
			last = ev.ID
		}
		if ev.ObjectType != controller.ObjectTypeRoute {
			continue
		}
		var cr controller.Route
		if len(ev.Data) > 0 && string(ev.Data) != "null" {
			if err := json.Unmarshal(ev.Data, &cr); err != nil {
				s.logger.Warn("undecodable route in event", "id", ev.ID, "err", err)
				continue
			}
		}
		if cr.ID == "" {
			cr.ID = ev.ObjectID
		}
		select {
		case ch <- router.RouteEvent{ID: ev.ID, Op: ev.Op, Route: convert(&cr)}:
		case <-ctx.Done():
			return last, ctx.Err()
		}
	}
}

func convert(r *controller.Route) *router.Route {
	out := &router.Route{
		ID:            r.ID,
		AppID:         r.AppID,
		Type:          r.Type,
		Service:       r.Service,
		Domain:        r.Domain,
		Path:          r.Path,
		Sticky:        r.Sticky,
		Port:          r.Port,
		DrainBackends: r.DrainBackends,
		CreatedAt:     r.CreatedAt,
		UpdatedAt:     r.UpdatedAt,
	}
	if r.Certificate != nil {
		out.Certificate = &router.Certificate{Cert: r.Certificate.Cert, Key: r.Certificate.Key}
	}
	return out
}

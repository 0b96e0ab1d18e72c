// Package httpretry sends a request again while its server is not there
// yet: a job that starts on a node before that node's router (a node that
// has just joined, a router being deployed) finds nothing listening, or a
// router that answers 503 until it knows its routes. Only failures that
// show the request never reached the application are retried, so a
// request that must happen at most once (a signed upload URL) stays safe.
package httpretry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"
)

// Retry bounds, for callers that do not pick their own.
const (
	// DefaultWithin is how long a request is tried again.
	DefaultWithin = 30 * time.Second
	firstBackoff  = 100 * time.Millisecond
	maxBackoff    = 2 * time.Second
)

// Do sends the request newRequest makes (a new one for each attempt, so a
// body can be read again) until it gets a response that is not 503, an
// error that is not a failure to connect, or within has passed; then it
// returns that response or error. The last attempt's outcome is returned
// as it is, so a caller reports the real status or error.
func Do(ctx context.Context, client *http.Client, within time.Duration, newRequest func() (*http.Request, error)) (*http.Response, error) {
	deadline := time.Now().Add(within)
	backoff := firstBackoff
	for {
		req, err := newRequest()
		if err != nil {
			return nil, err
		}
		resp, err := client.Do(req.WithContext(ctx))
		if !retryable(resp, err) || time.Now().Add(backoff).After(deadline) {
			return resp, err
		}
		if resp != nil {
			_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
			resp.Body.Close()
		}
		select {
		case <-ctx.Done():
			// Not the URL: a signed URL's query is a secret.
			return nil, fmt.Errorf("waiting to send the %s again: %w", req.Method, context.Cause(ctx))
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, maxBackoff)
	}
}

// retryable reports whether an attempt failed before the application saw
// the request: the connection was not made, or the server (a router
// without routes or backends yet) answered 503.
func retryable(resp *http.Response, err error) bool {
	if err != nil {
		var op *net.OpError
		return errors.As(err, &op) && op.Op == "dial"
	}
	return resp.StatusCode == http.StatusServiceUnavailable
}

package cli

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"syscall"
	"time"

	"github.com/openflynn/flynn/cli/config"
	"github.com/openflynn/flynn/pkg/tlspin"
)

// httpClient returns the HTTP client that reaches cl's controller: TLS
// checked against the cluster's pin on every connection (https URLs), and
// dialling ControllerAddr when set, while SNI and Host stay the URL's host.
func httpClient(cl *config.Cluster) (*http.Client, error) {
	u, err := url.Parse(cl.ControllerURL)
	if err != nil {
		return nil, fmt.Errorf("controller URL: %w", err)
	}
	tr := &http.Transport{
		// HTTP/1.1 only: `flynn run` attaches by upgrading its connection
		// (Upgrade: flynn-attach/0), which HTTP/2 cannot carry.
		ForceAttemptHTTP2:   false,
		MaxIdleConns:        10,
		IdleConnTimeout:     90 * time.Second,
		TLSHandshakeTimeout: 10 * time.Second,
	}
	switch u.Scheme {
	case "https":
		if cl.TLSPin == "" {
			return nil, errors.New("an https controller needs a TLS pin (-p)")
		}
		tr.TLSClientConfig = tlspin.Config(cl.TLSPin, u.Hostname())
	case "http":
		// Only for development and tests: nothing to pin.
	default:
		return nil, fmt.Errorf("controller URL %q: want http or https", cl.ControllerURL)
	}
	dialer := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}
	tr.DialContext = dialer.DialContext
	if addr := cl.ControllerAddr; addr != "" {
		tr.DialContext = func(ctx context.Context, network, _ string) (net.Conn, error) {
			return dialer.DialContext(ctx, network, addr)
		}
	}
	return &http.Client{Transport: tr}, nil
}

// unreachableError is a request that never reached the cluster's
// controller: the cause is the cluster or its configuration, not the
// command, so it says which cluster and where.
type unreachableError struct {
	cluster *config.Cluster
	reason  string // "connection refused"
	err     error
}

func (e *unreachableError) Error() string {
	where := e.cluster.ControllerURL
	if e.cluster.ControllerAddr != "" {
		where += " (via " + e.cluster.ControllerAddr + ")"
	}
	return fmt.Sprintf("cannot reach cluster %s at %s: %s (is it up? `flynn cluster list` shows what is configured)", e.cluster.Name, where, e.reason)
}

func (e *unreachableError) Unwrap() error { return e.err }

// unreachable returns err as an *unreachableError when it is a failure to
// connect to cl's controller (refused, no such host, timed out), and err
// itself otherwise.
func unreachable(cl *config.Cluster, err error) error {
	var already *unreachableError
	if errors.As(err, &already) {
		return err
	}
	reason := dialFailure(err)
	if reason == "" {
		return err
	}
	return &unreachableError{cluster: cl, reason: reason, err: err}
}

// dialFailure says why err failed to connect, or "" when it is no failure
// to connect (an interrupted dial included: the user gave up, the cluster
// did not).
func dialFailure(err error) string {
	var opErr *net.OpError
	if !errors.As(err, &opErr) || opErr.Op != "dial" || errors.Is(err, context.Canceled) {
		return ""
	}
	var dnsErr *net.DNSError
	switch {
	case errors.As(err, &dnsErr) && dnsErr.IsNotFound:
		return "no such host"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case opErr.Timeout():
		return "timed out"
	case errors.As(err, &dnsErr):
		return "cannot resolve " + dnsErr.Name + ": " + dnsErr.Err
	}
	return opErr.Err.Error()
}

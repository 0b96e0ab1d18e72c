package controller

import (
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/openflynn/flynn/logaggregator"
)

// LogDrain sends every line of an app's log (its jobs' output and the
// router's request lines) to a receiver outside the cluster, as Heroku's
// log drains do. The log aggregator runs the drains (package
// logaggregator/drain); the controller stores them.
//
// URL says where the lines go and how (see ParseLogDrainURL):
//
//	syslog+tls://logs.example.com:6514    RFC 5424 syslog over TLS (RFC 5425)
//	syslog+tcp://logs.example.com:514     RFC 5424 syslog over plain TCP (RFC 6587)
//	https://user:pass@logs.example.com/x  batches POSTed as Heroku's application/logplex-1
//
// A URL may hold a receiver's token (in its userinfo, path or query), so
// the event log carries it through RedactLogDrainURL.
type LogDrain struct {
	ID    string `json:"id"`
	AppID string `json:"app,omitempty"`
	URL   string `json:"url"`
	// Stats says what the drain has sent and dropped, when the log
	// aggregator could tell; nil otherwise.
	Stats     *logaggregator.DrainStats `json:"stats,omitempty"`
	CreatedAt time.Time                 `json:"created_at"`
}

// NewLogDrain is the body of POST /apps/:id/drains.
type NewLogDrain struct {
	// URL is the drain's URL (see LogDrain).
	URL string `json:"url"`
}

// The schemes of a LogDrain's URL.
const (
	// LogDrainSchemeSyslogTLS sends RFC 5424 syslog messages over TLS,
	// checking the receiver's certificate.
	LogDrainSchemeSyslogTLS = "syslog+tls"
	// LogDrainSchemeSyslogTCP sends RFC 5424 syslog messages over plain
	// TCP: Heroku's "syslog://".
	LogDrainSchemeSyslogTCP = "syslog+tcp"
	// LogDrainSchemeHTTPS POSTs batches of syslog messages, octet-counted
	// as Heroku's logplex does (Content-Type application/logplex-1).
	LogDrainSchemeHTTPS = "https"
)

// MaxLogDrainURLBytes bounds a LogDrain's URL.
const MaxLogDrainURLBytes = 2048

// MaxLogDrainsPerApp bounds an app's drains: each costs the log
// aggregator a buffer of lines and a connection.
const MaxLogDrainsPerApp = 10

// ParseLogDrainURL parses a LogDrain's URL, refusing what no drain can
// send to; its error says why, for the person who gave the URL.
//
// Two refusals are choices rather than necessities. "syslog://" is
// refused although Heroku takes it: there it means plain TCP, which a
// reader of the URL could not guess, so the scheme must say
// syslog+tcp:// or syslog+tls://. And "http://" is refused everywhere,
// loopback included, since the lines would cross the network in the
// clear and a loopback address reaches only the log aggregator's own
// node; https:// does the same job safely.
func ParseLogDrainURL(raw string) (*url.URL, error) {
	if len(raw) > MaxLogDrainURLBytes {
		return nil, fmt.Errorf("longer than %d bytes", MaxLogDrainURLBytes)
	}
	u, err := url.Parse(raw)
	if err != nil {
		var urlErr *url.Error
		if errors.As(err, &urlErr) {
			err = urlErr.Err
		}
		return nil, fmt.Errorf("not a URL: %w", err)
	}
	switch u.Scheme {
	case LogDrainSchemeSyslogTLS, LogDrainSchemeSyslogTCP, LogDrainSchemeHTTPS:
	case "syslog":
		return nil, errors.New("say syslog+tls://HOST:PORT for syslog over TLS, or syslog+tcp://HOST:PORT for plain TCP (what Heroku's syslog:// means)")
	case "http":
		return nil, errors.New("http:// would send the log in the clear: use https://")
	case "":
		return nil, errors.New("want syslog+tls://HOST:PORT, syslog+tcp://HOST:PORT or https://HOST/PATH")
	default:
		return nil, fmt.Errorf("unknown scheme %q: want syslog+tls, syslog+tcp or https", u.Scheme)
	}
	if u.Opaque != "" || u.Host == "" || u.Hostname() == "" {
		return nil, fmt.Errorf("want %s://HOST:PORT…, with a host", u.Scheme)
	}
	if u.Fragment != "" || strings.Contains(raw, "#") {
		return nil, errors.New("a drain URL has no #fragment")
	}
	port := u.Port()
	if port == "" && u.Scheme != LogDrainSchemeHTTPS {
		return nil, fmt.Errorf("a %s URL needs a port (%s://%s:PORT)", u.Scheme, u.Scheme, u.Hostname())
	}
	if port != "" {
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return nil, fmt.Errorf("port %q: want a number from 1 to 65535", port)
		}
	}
	if u.Scheme == LogDrainSchemeHTTPS {
		return u, nil
	}
	// A syslog receiver has nowhere to take anything more than its
	// address; a token sent this way would go nowhere.
	if u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.ForceQuery {
		return nil, fmt.Errorf("a %s URL has only a host and port (%s://HOST:PORT)", u.Scheme, u.Scheme)
	}
	return u, nil
}

// RedactLogDrainURL returns a LogDrain's URL with what may be a receiver's
// token replaced by RedactedValue: its userinfo, and its path and query
// together. A URL that does not parse is replaced whole.
func RedactLogDrainURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return RedactedValue
	}
	var b strings.Builder
	b.WriteString(u.Scheme + "://")
	if u.User != nil {
		b.WriteString(RedactedValue + "@")
	}
	b.WriteString(u.Host)
	if (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.ForceQuery || u.Fragment != "" {
		b.WriteString("/" + RedactedValue)
	}
	return b.String()
}

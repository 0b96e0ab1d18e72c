package drain

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"

	"github.com/openflynn/flynn/logaggregator"
	"github.com/openflynn/flynn/pkg/random"
)

// ContentTypeLogplex is the media type of an HTTPS drain's POST: syslog
// messages framed by octet counting, back to back, as Heroku's logplex
// sends them, so receivers built for Heroku's drains take Flynn's.
const ContentTypeLogplex = "application/logplex-1"

// The headers of an HTTPS drain's POST, as logplex names them.
const (
	// HeaderMsgCount is the number of messages in the body.
	HeaderMsgCount = "Logplex-Msg-Count"
	// HeaderFrameID names the batch; a batch sent again after a failure
	// keeps it, so a receiver can tell a batch it has had already.
	HeaderFrameID = "Logplex-Frame-Id"
	// HeaderDrainToken is the drain's id.
	HeaderDrainToken = "Logplex-Drain-Token"
)

// maxReplyBytes is how much of a receiver's reply is read, so that the
// connection can be used again.
const maxReplyBytes = 64 << 10

// httpsTransport POSTs each batch to an HTTPS drain's URL. A 2xx reply
// means the receiver has the batch; anything else, redirects included,
// is a failure and the batch is sent again. The URL's userinfo, if any,
// goes as basic auth.
type httpsTransport struct {
	url     string
	label   string // the URL without its secrets, for errors
	drainID string
	client  *http.Client

	frameID string // of the batch being sent; "" when it is new
	// lastSize is the size of the last body, to size the next one. Each
	// POST has a body of its own: the transport may read the last one
	// still when Do has returned.
	lastSize int
}

var _ transport = (*httpsTransport)(nil)

func (t *httpsTransport) send(ctx context.Context, batch []logaggregator.Line) error {
	if t.frameID == "" {
		t.frameID = random.Hex(16)
	}
	body := make([]byte, 0, t.lastSize)
	for i := range batch {
		body = appendFrame(body, &batch[i])
	}
	t.lastSize = len(body)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.url, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("POST %s: %w", t.label, err)
	}
	req.Header.Set("Content-Type", ContentTypeLogplex)
	req.Header.Set("User-Agent", "flynn-logaggregator")
	req.Header.Set(HeaderMsgCount, strconv.Itoa(len(batch)))
	req.Header.Set(HeaderFrameID, t.frameID)
	req.Header.Set(HeaderDrainToken, t.drainID)
	resp, err := t.client.Do(req)
	if err != nil {
		// The client's error names the URL, which may hold a token.
		var urlErr *url.Error
		if errors.As(err, &urlErr) {
			err = urlErr.Err
		}
		return fmt.Errorf("POST %s: %w", t.label, err)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxReplyBytes))
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("POST %s: %s", t.label, resp.Status)
	}
	t.frameID = ""
	return nil
}

func (t *httpsTransport) close() {}

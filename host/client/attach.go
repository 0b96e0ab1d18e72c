package client

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"sync"
	"time"

	"github.com/openflynn/flynn/host"
	"github.com/openflynn/flynn/pkg/authkey"
	"github.com/openflynn/flynn/pkg/httpjson"
)

// WindowSize is a terminal size.
type WindowSize struct {
	Height, Width uint16
}

// AttachIO is the client's side of an attached job.
type AttachIO struct {
	// Stdin, when set, is sent to the job (AttachRequest.Stdin must be set);
	// its end closes the job's stdin.
	Stdin io.Reader
	// Stdout and Stderr receive the job's output; nil discards it.
	Stdout, Stderr io.Writer
	// Resize sends terminal size changes to a TTY job.
	Resize <-chan WindowSize
}

// Attach connects to a job's stdio (or creates a job and attaches before it
// starts, when req.Job is set) and returns the job's exit status once it
// has ended and its output has been written. When ctx ends the connection
// is closed (and a job created by the attach is stopped).
//
// A goroutine copies Stdin; it ends when the next Read of Stdin returns
// (at once for finite readers), since a blocked Read cannot be interrupted.
func (c *Client) Attach(ctx context.Context, req *host.AttachRequest, stdio AttachIO) (int, error) {
	u, err := url.Parse(c.url)
	if err != nil {
		return 0, fmt.Errorf("host url: %w", err)
	}
	addr := u.Host
	if u.Port() == "" {
		addr = net.JoinHostPort(u.Hostname(), "80")
	}
	// Connecting, sending and the host's answer (it creates the job first,
	// when asked to) are bounded as any call's; the attached session that
	// follows lasts as long as ctx.
	answerBy := time.Now().Add(c.cfg.AnswerTimeout)
	d := net.Dialer{Deadline: answerBy}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return 0, fmt.Errorf("attach: %w", ctxErr(ctx, noAnswer(err)))
	}
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	defer conn.Close()
	if err := conn.SetDeadline(answerBy); err != nil {
		return 0, fmt.Errorf("attach: %w", err)
	}

	body, err := json.Marshal(req)
	if err != nil {
		return 0, err
	}
	hreq, err := http.NewRequest(http.MethodPost, c.url+"/host/attach", bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	hreq.Header.Set("Content-Type", "application/json")
	hreq.Header.Set("Connection", "Upgrade")
	hreq.Header.Set("Upgrade", host.AttachUpgrade)
	authkey.Set(hreq, c.key)
	if err := hreq.Write(conn); err != nil {
		return 0, fmt.Errorf("attach: send request: %w", ctxErr(ctx, noAnswer(err)))
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, hreq)
	if err != nil {
		return 0, fmt.Errorf("attach: read response: %w", ctxErr(ctx, noAnswer(err)))
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		defer resp.Body.Close()
		return 0, httpjson.ReadError(resp)
	}
	if err := conn.SetDeadline(time.Time{}); err != nil {
		return 0, fmt.Errorf("attach: %w", err)
	}

	var mu sync.Mutex
	send := func(t host.FrameType, p []byte) error {
		mu.Lock()
		defer mu.Unlock()
		return host.WriteFrame(conn, t, p)
	}
	// Deferred in this order so that done is closed before wg.Wait: the
	// resize goroutine ends on done, and Resize is not closed while the
	// attach runs.
	var wg sync.WaitGroup
	defer wg.Wait()
	done := make(chan struct{})
	defer close(done)
	if stdio.Stdin != nil && req.Stdin {
		go func() {
			buf := make([]byte, 32<<10)
			for {
				n, err := stdio.Stdin.Read(buf)
				if n > 0 && send(host.FrameStdin, buf[:n]) != nil {
					return
				}
				if err != nil {
					_ = send(host.FrameStdinEOF, nil)
					return
				}
			}
		}()
	}
	if stdio.Resize != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-done:
					return
				case ws, ok := <-stdio.Resize:
					if !ok {
						return
					}
					_ = send(host.FrameResize, host.ResizePayload(ws.Height, ws.Width))
				}
			}
		}()
	}
	out, errOut := stdio.Stdout, stdio.Stderr
	if out == nil {
		out = io.Discard
	}
	if errOut == nil {
		errOut = io.Discard
	}
	for {
		f, err := host.ReadFrame(br)
		if err != nil {
			return 0, fmt.Errorf("attach: connection ended before the job's exit status: %w", ctxErr(ctx, err))
		}
		switch f.Type {
		case host.FrameStdout:
			_, _ = out.Write(f.Payload)
		case host.FrameStderr:
			_, _ = errOut.Write(f.Payload)
		case host.FrameExit:
			return host.ParseExit(f.Payload)
		case host.FrameError:
			return 0, errors.New(string(f.Payload))
		}
	}
}

// noAnswer marks a timeout of the deadline Attach sets (a connection's, or
// a dial's) as ErrNoAnswer.
func noAnswer(err error) error {
	if errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%w: %w", ErrNoAnswer, err)
	}
	return err
}

func ctxErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}

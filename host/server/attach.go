package server

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/julienschmidt/httprouter"

	"github.com/openflynn/flynn/host"
	"github.com/openflynn/flynn/pkg/halfclose"
	"github.com/openflynn/flynn/pkg/httpjson"
)

// attach serves POST /host/attach: it validates and sets up the session
// while errors can still be JSON, then switches the connection to frames.
func (a *api) attach(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	if !strings.EqualFold(r.Header.Get("Upgrade"), host.AttachUpgrade) {
		a.fail(w, r, httpjson.ValidationError("", "attach needs the header Upgrade: %s", host.AttachUpgrade))
		return
	}
	var req host.AttachRequest
	if err := httpjson.Decode(w, r, maxJobBody, &req); err != nil {
		a.fail(w, r, err)
		return
	}
	hj, ok := w.(http.Hijacker)
	if !ok {
		a.fail(w, r, errors.New("response cannot be hijacked"))
		return
	}
	ctx := detached(r.Context())
	sess, err := a.d.Attach(ctx, &req)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	defer sess.Close()
	conn, buf, err := hj.Hijack()
	if err != nil {
		a.log.Error("hijack attach connection", "err", err)
		return
	}
	defer conn.Close()
	_, _ = io.WriteString(conn, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: "+host.AttachUpgrade+"\r\nConnection: Upgrade\r\n\r\n")

	fw := &frameWriter{w: conn}
	var (
		wg       sync.WaitGroup
		finished atomic.Bool
	)
	// Client → job: stdin and resizes, until the client hangs up or, once
	// the job has ended, halfclose.Linger passes.
	wg.Add(1)
	go func() {
		defer wg.Done()
		readClientFrames(buf.Reader, conn, sess.Stdin, func(h, w uint16) { _ = sess.Resize(ctx, h, w) })
		// A client gone before its job ended (Ctrl-C, a dropped build)
		// leaves nobody to read a job this attach created: stop it rather
		// than let it run on unseen.
		if req.Job != nil && !finished.Load() {
			a.log.Info("attached client left; stopping its job", "job.id", req.Job.ID)
			if _, err := a.d.StopJob(ctx, req.Job.ID); err != nil && !httpjson.IsNotFound(err) {
				a.log.Warn("stop job of a departed attach client", "job.id", req.Job.ID, "err", err)
			}
		}
	}()
	// Job → client: output until it ends.
	var copies sync.WaitGroup
	copies.Add(2)
	go func() { defer copies.Done(); copyFrames(fw, host.FrameStdout, sess.Stdout) }()
	go func() { defer copies.Done(); copyFrames(fw, host.FrameStderr, sess.Stderr) }()
	copies.Wait()

	status, err := sess.Wait(r.Context())
	finished.Store(true)
	if err != nil {
		_ = fw.write(host.FrameError, []byte(err.Error()))
	} else {
		_ = fw.write(host.FrameExit, host.ExitPayload(status))
	}
	// The client reads the rest and hangs up; readClientFrames reads on
	// until then, and the deferred Close follows.
	halfclose.Finish(conn, halfclose.Linger)
	wg.Wait()
}

// readClientFrames applies the client's frames until the stream ends.
func readClientFrames(r io.Reader, conn net.Conn, stdin io.WriteCloser, resize func(h, w uint16)) {
	br := bufio.NewReader(r)
	closeStdin := func() {
		if stdin != nil {
			_ = stdin.Close()
			stdin = nil
		}
	}
	defer closeStdin()
	for {
		f, err := host.ReadFrame(br)
		if err != nil {
			return
		}
		switch f.Type {
		case host.FrameStdin:
			if stdin != nil {
				if _, err := stdin.Write(f.Payload); err != nil {
					closeStdin()
				}
			}
		case host.FrameStdinEOF:
			closeStdin()
		case host.FrameResize:
			if h, w, err := host.ParseResize(f.Payload); err == nil {
				resize(h, w)
			}
		}
	}
}

// frameWriter serialises frames from several goroutines.
type frameWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (f *frameWriter) write(t host.FrameType, p []byte) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return host.WriteFrame(f.w, t, p)
}

func copyFrames(fw *frameWriter, t host.FrameType, r io.Reader) {
	buf := make([]byte, 32<<10)
	for {
		n, err := r.Read(buf)
		if n > 0 {
			if fw.write(t, buf[:n]) != nil {
				// The client is gone: drain so the job is not blocked on us.
				_, _ = io.Copy(io.Discard, r)
				return
			}
		}
		if err != nil {
			return
		}
	}
}

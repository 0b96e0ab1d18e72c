package gitreceive

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/openflynn/flynn/host"
)

// Environment variables that tell the hook where the server is.
const (
	envHookSocket = "GITRECEIVE_HOOK_SOCKET"
	envHookToken  = "GITRECEIVE_HOOK_TOKEN"
)

// gitObjectEnv are the variables git gives a pre-receive hook to reach the
// pushed objects, which sit in a quarantine directory until the hook
// accepts them; the server needs them to read the pushed tree.
var gitObjectEnv = []string{"GIT_OBJECT_DIRECTORY", "GIT_ALTERNATE_OBJECT_DIRECTORIES", "GIT_QUARANTINE_PATH"}

// hookRequest is what the hook sends the server: one JSON line, then the
// server answers with host.Frame frames (stdout, then an exit status).
type hookRequest struct {
	Token   string            `json:"token"`
	Updates []refUpdate       `json:"updates"`
	GitEnv  map[string]string `json:"git_env,omitempty"`
}

// refUpdate is one line of a pre-receive hook's input.
type refUpdate struct {
	Old string `json:"old"`
	New string `json:"new"`
	Ref string `json:"ref"`
}

// zeroSHA marks a created (as Old) or deleted (as New) ref.
const zeroSHA = "0000000000000000000000000000000000000000"

// IsHook reports whether this process was started as gitreceive's hook
// (by git, with the server's variables), for mains and test binaries that
// double as the hook.
func IsHook(getenv func(string) string) bool { return getenv(envHookSocket) != "" }

// RunHook is the pre-receive hook: it relays the ref updates on stdin to
// the server named in the environment and copies the server's output to
// stdout. It returns the exit status for git: non-zero rejects the push.
func RunHook(stdin io.Reader, stdout, stderr io.Writer, getenv func(string) string) int {
	req := hookRequest{Token: getenv(envHookToken), GitEnv: map[string]string{}}
	for _, k := range gitObjectEnv {
		if v := getenv(k); v != "" {
			req.GitEnv[k] = v
		}
	}
	sc := bufio.NewScanner(stdin)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 3 {
			req.Updates = append(req.Updates, refUpdate{Old: f[0], New: f[1], Ref: f[2]})
		}
	}
	conn, err := net.Dial("unix", getenv(envHookSocket))
	if err != nil {
		fmt.Fprintf(stderr, " !     gitreceive hook: cannot reach the server: %v\n", err)
		return 1
	}
	defer conn.Close()
	if err := json.NewEncoder(conn).Encode(&req); err != nil {
		fmt.Fprintf(stderr, " !     gitreceive hook: %v\n", err)
		return 1
	}
	br := bufio.NewReader(conn)
	for {
		f, err := host.ReadFrame(br)
		if err != nil {
			fmt.Fprintf(stderr, " !     gitreceive hook: the server hung up: %v\n", err)
			return 1
		}
		switch f.Type {
		case host.FrameStdout:
			_, _ = stdout.Write(f.Payload)
		case host.FrameStderr:
			_, _ = stderr.Write(f.Payload)
		case host.FrameExit:
			code, err := host.ParseExit(f.Payload)
			if err != nil {
				return 1
			}
			return code
		}
	}
}

// listenHook listens on the hook socket in the state directory.
func (s *Server) listenHook() (net.Listener, string, error) {
	path := filepath.Join(s.cfg.StateDir, "hook.sock")
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, "", fmt.Errorf("gitreceive: remove stale hook socket: %w", err)
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, "", fmt.Errorf("gitreceive: hook socket: %w", err)
	}
	return ln, path, nil
}

// acceptHooks serves hook connections until ln is closed, then waits for
// the ones in progress (their pushes' contexts end with the SSH
// connections).
func (s *Server) acceptHooks(ctx context.Context, ln net.Listener) {
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		conn, err := ln.Accept()
		if err != nil {
			if ctx.Err() == nil && !errors.Is(err, net.ErrClosed) {
				s.log.Error("accept hook connection", "err", err)
			}
			return
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer conn.Close()
			s.serveHook(conn)
		}()
	}
}

// serveHook runs the build of one push for its hook.
func (s *Server) serveHook(conn net.Conn) {
	var req hookRequest
	if err := json.NewDecoder(io.LimitReader(conn, 1<<20)).Decode(&req); err != nil {
		s.log.Warn("bad hook request", "err", err)
		return
	}
	out := &frameWriter{w: conn}
	p := s.takePush(req.Token)
	if p == nil {
		_ = out.write(host.FrameStderr, []byte(" !     gitreceive: unknown push; refusing\n"))
		_ = out.write(host.FrameExit, host.ExitPayload(1))
		return
	}
	// The push ends when the client goes away (the SSH session's context)
	// or when the hook does (receive-pack was killed).
	ctx, cancel := context.WithCancel(p.ctx)
	defer cancel()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	// The client has sent its push and waits for the build and deployment,
	// which may be quiet for longer than the idle timeout.
	stopKeepAlive := s.waitingClient(ctx)
	code := s.builds.run(ctx, p, req.Updates, req.GitEnv, out)
	stopKeepAlive()
	_ = out.write(host.FrameExit, host.ExitPayload(code))
}

// frameWriter writes host frames from several goroutines.
type frameWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (f *frameWriter) write(t host.FrameType, p []byte) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return host.WriteFrame(f.w, t, p)
}

// Write sends p as stdout.
func (f *frameWriter) Write(p []byte) (int, error) {
	if err := f.write(host.FrameStdout, p); err != nil {
		return 0, err
	}
	return len(p), nil
}

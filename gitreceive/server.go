package gitreceive

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/gliderlabs/ssh"
	"github.com/prometheus/client_golang/prometheus"
	gossh "golang.org/x/crypto/ssh"

	"github.com/openflynn/flynn/controller"
	"github.com/openflynn/flynn/controller/client"
	"github.com/openflynn/flynn/pkg/httpjson"
	"github.com/openflynn/flynn/pkg/metrics"
	"github.com/openflynn/flynn/pkg/random"
)

// Server is a gitreceive SSH server.
type Server struct {
	cfg        Config
	log        *slog.Logger
	controller *client.Client
	hostKey    gossh.Signer
	locks      *appLocks
	builds     *builder
	registry   *prometheus.Registry
	metrics    *serverMetrics

	mu       sync.Mutex
	sessions map[string]*push // by hook token
}

// New checks cfg, loads (or creates) the host key and returns a server.
func New(cfg Config, logger *slog.Logger) (*Server, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, fmt.Errorf("gitreceive: %w", err)
	}
	if logger == nil {
		logger = slog.Default()
	}
	if len(cfg.HookCommand) == 0 {
		exe, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("gitreceive: find own executable for the hook: %w", err)
		}
		cfg.HookCommand = []string{exe, "hook"}
	}
	if _, err := exec.LookPath(cfg.GitPath); err != nil {
		return nil, fmt.Errorf("gitreceive: %w", err)
	}
	if err := os.MkdirAll(filepath.Join(cfg.StateDir, "repos"), 0o700); err != nil {
		return nil, fmt.Errorf("gitreceive: state dir: %w", err)
	}
	key, err := loadHostKey(cfg.HostKeyPEM, filepath.Join(cfg.StateDir, "ssh_host_ed25519_key"))
	if err != nil {
		return nil, fmt.Errorf("gitreceive: %w", err)
	}
	log := logger
	hc := cfg.HTTPClient
	if hc == nil {
		hc = &http.Client{}
	}
	cc := client.NewWithHTTPClient(cfg.ControllerURL, cfg.ControllerKey, hc)
	reg := metrics.NewRegistry()
	m := newMetrics(reg)
	return &Server{
		cfg: cfg, log: log, controller: cc, hostKey: key,
		locks:    newAppLocks(),
		builds:   newBuilder(cfg, cc, log, m),
		registry: reg,
		metrics:  m,
		sessions: map[string]*push{},
	}, nil
}

// Serve answers SSH connections on ln until ctx ends, then closes every
// connection (cancelling running builds) and waits for its sessions.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	hookLn, hookPath, err := s.listenHook()
	if err != nil {
		ln.Close()
		return err
	}
	conns := newConnLimiter(ln, s.cfg, s.log, s.metrics)
	var sessions sync.WaitGroup
	srv := &ssh.Server{
		Handler: func(sess ssh.Session) {
			sessions.Add(1)
			defer sessions.Done()
			if c, ok := sess.Context().Value(clientConnKey{}).(*clientConn); ok {
				c.start()
			}
			// Goroutines reading the client's input end only once the
			// channel closes, which Exit does.
			var readers sync.WaitGroup
			_ = sess.Exit(s.serveSession(sess, hookPath, &readers))
			readers.Wait()
		},
		PublicKeyHandler:           s.checkKey,
		KeyboardInteractiveHandler: s.explainRefusal,
		HostSigners:                []ssh.Signer{s.hostKey},
		// The connection's own bounds (clientConn) end its handshake phase
		// when a command starts, which only the Handler sees.
		ConnCallback: func(ctx ssh.Context, conn net.Conn) net.Conn {
			ctx.SetValue(clientConnKey{}, conn)
			return conn
		},
	}
	var wg sync.WaitGroup
	wg.Add(2)
	serveErr := make(chan error, 1)
	go func() {
		defer wg.Done()
		serveErr <- srv.Serve(conns)
	}()
	go func() {
		defer wg.Done()
		s.acceptHooks(ctx, hookLn)
	}()
	var err2 error
	select {
	case <-ctx.Done():
	case err2 = <-serveErr:
	}
	_ = srv.Close()  // closes the listener and every connection: sessions end
	conns.closeAll() // and those still in their handshake, which srv does not know
	hookLn.Close()
	wg.Wait()
	sessions.Wait()
	conns.wait()
	if err2 != nil && !errors.Is(err2, ssh.ErrServerClosed) {
		return fmt.Errorf("gitreceive: serve: %w", err2)
	}
	return nil
}

// clientConnKey holds, on an SSH connection's context, its *clientConn.
type clientConnKey struct{}

// waitingClient keeps the client of the connection of ctx alive (see
// keepAlive) while it waits on the server; stop ends that.
func (s *Server) waitingClient(ctx context.Context) (stop func()) {
	conn, ok := ctx.Value(ssh.ContextKeyConn).(gossh.Conn)
	if !ok {
		return func() {}
	}
	return keepAlive(conn, s.log, s.cfg.IdleTimeout/2, s.cfg.IdleTimeout)
}

// unknownKeysKey holds, on an SSH connection's context, the fingerprints of
// the keys the controller did not know.
type unknownKeysKey struct{}

// checkKey admits keys that the controller knows.
func (s *Server) checkKey(ctx ssh.Context, key ssh.PublicKey) bool {
	fp := gossh.FingerprintSHA256(key)
	lctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	k, err := s.controller.KeyByFingerprint(lctx, fp)
	if err == nil && k != nil {
		ctx.SetValue(keyFingerprintKey{}, fp)
		return true
	}
	if err != nil && !httpjson.IsNotFound(err) {
		s.log.Error("look up key", "fingerprint", fp, "err", err)
	}
	unknown, _ := ctx.Value(unknownKeysKey{}).([]string)
	ctx.SetValue(unknownKeysKey{}, append(unknown, fp))
	return false
}

// keyFingerprintKey holds the fingerprint of the key a connection
// authenticated with.
type keyFingerprintKey struct{}

// explainRefusal runs once every offered key was refused: OpenSSH then
// tries keyboard-interactive, and shows the instruction of a challenge, so
// the user learns why instead of a bare "Permission denied".
func (s *Server) explainRefusal(ctx ssh.Context, challenge gossh.KeyboardInteractiveChallenge) bool {
	unknown, _ := ctx.Value(unknownKeysKey{}).([]string)
	msg := "gitreceive: no SSH key was offered; add yours with `flynn key add`"
	if len(unknown) > 0 {
		msg = fmt.Sprintf("gitreceive: unknown SSH key %s; add it with `flynn key add`", strings.Join(unknown, ", "))
	}
	s.log.Info("refused unknown key", "remote", ctx.RemoteAddr().String(), "fingerprints", unknown)
	_, _ = challenge("", msg+"\n", nil, nil)
	return false
}

// serveSession runs one `git-receive-pack '<app>.git'` and returns the exit
// status for the client.
func (s *Server) serveSession(sess ssh.Session, hookPath string, readers *sync.WaitGroup) int {
	ctx := sess.Context()
	stderr := sess.Stderr()
	fail := func(format string, args ...any) int {
		fmt.Fprintf(stderr, " !     "+format+"\n", args...)
		return 1
	}
	service, appName, err := parseGitCommand(sess.RawCommand())
	if err != nil {
		return fail("%v", err)
	}
	app, err := s.controller.App(ctx, appName)
	if httpjson.IsNotFound(err) {
		return fail("no app named %q; create it with `flynn create %s`", appName, appName)
	}
	if err != nil {
		s.log.Error("look up app", "app.name", appName, "err", err)
		return fail("cannot reach the controller to look up %s", appName)
	}
	log := s.log.With("app.id", app.ID, "app.name", app.Name, "key", ctx.Value(keyFingerprintKey{}))
	if service == "receive-pack" && app.System {
		log.Info("refused a push to a system app")
		return fail("%s is a system app: system apps are deployed by the platform, not by git push", app.Name)
	}
	if service == "upload-pack" {
		// A fetch reads the repository as the last accepted push left it;
		// git's own locking keeps it consistent, no app lock is needed.
		repo := filepath.Join(s.cfg.StateDir, "repos", app.ID+".git")
		if _, err := os.Stat(repo); err != nil {
			return fail("%s has no pushed code yet", app.Name)
		}
		code, err := s.runGit(ctx, sess, readers, nil, "upload-pack", repo)
		if err != nil {
			log.Error("git upload-pack", "err", err)
			return fail("git upload-pack failed")
		}
		return code
	}

	stopKeepAlive := s.waitingClient(ctx)
	unlock, waited, err := s.locks.lock(ctx, app.ID, func() {
		fmt.Fprintf(stderr, "-----> Waiting for another push to %s to finish...\n", app.Name)
	})
	stopKeepAlive()
	if err != nil {
		return 1 // the client went away while waiting
	}
	defer unlock()
	if waited > 0 {
		log.Info("push waited for the app's lock", "waited", waited)
	}

	repo, err := s.ensureRepo(ctx, app.ID)
	if err != nil {
		log.Error("prepare repository", "err", err)
		return fail("cannot prepare the repository of %s", app.Name)
	}
	p := &push{ctx: ctx, app: app, repo: repo, log: log}
	token := random.Hex(16)
	s.mu.Lock()
	s.sessions[token] = p
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.sessions, token)
		s.mu.Unlock()
	}()

	start := time.Now()
	code, err := s.runGit(ctx, sess, readers, s.gitEnv(hookPath, token), "receive-pack", repo)
	if err != nil {
		log.Error("git receive-pack", "err", err)
		return fail("git receive-pack failed")
	}
	log.Info("push done", "exit", code, "took", time.Since(start).Round(time.Millisecond))
	return code
}

// runGit runs git's own receive-pack or upload-pack on the session's
// stdio. stdin is copied by a goroutine in readers rather than by exec:
// exec's Wait would wait for the client to close its side, which it does
// only after our exit status, a deadlock. The caller waits for readers
// after sending that.
func (s *Server) runGit(ctx context.Context, sess ssh.Session, readers *sync.WaitGroup, env []string, args ...string) (int, error) {
	cmd := exec.CommandContext(ctx, s.cfg.GitPath, args...)
	if env == nil {
		env = s.gitEnv("", "")
	}
	cmd.Env = env
	cmd.Stdout = sess
	cmd.Stderr = sess.Stderr()
	cmd.WaitDelay = 5 * time.Second
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return 0, err
	}
	if err := cmd.Start(); err != nil {
		return 0, err
	}
	readers.Add(1)
	go func() {
		defer readers.Done()
		_, _ = io.Copy(stdin, sess)
		stdin.Close()
	}()
	err = cmd.Wait()
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		return exit.ExitCode(), nil
	}
	if err != nil {
		return 0, err
	}
	return 0, nil
}

// gitEnv is receive-pack's environment: enough for git, and where its hook
// finds us. The server's own environment (keys) is not passed on.
func (s *Server) gitEnv(hookPath, token string) []string {
	env := []string{"HOME=" + s.cfg.StateDir, "GIT_CONFIG_NOSYSTEM=1"}
	if hookPath != "" {
		env = append(env, envHookSocket+"="+hookPath, envHookToken+"="+token)
	}
	for _, k := range []string{"PATH", "LANG", "LC_ALL", "TMPDIR"} {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	return env
}

// push is one receive-pack in progress, which its hook calls back into.
type push struct {
	ctx  context.Context // the SSH session's: ends when the client goes
	app  *controller.App
	repo string
	log  *slog.Logger
	used bool
}

// takePush returns the push of a hook token, once.
func (s *Server) takePush(token string) *push {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.sessions[token]
	if p == nil || p.used {
		return nil
	}
	p.used = true
	return p
}

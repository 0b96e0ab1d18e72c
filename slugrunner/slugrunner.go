// Package slugrunner runs one process of a slug-based release inside an app
// job (the flynn/slugrunner image):
//
//	SLUG_URL ──GET──► gunzip | untar into /app
//	         ──► bash: source /app/.profile.d/*.sh, cd /app, exec bash -c COMMAND
//
// with HOME=/app and PORT set (8080 when the job has none), and, when the
// job has the cluster's extra CA certificates (FLYNN_CA_CERTS), the usual
// variables (SSL_CERT_FILE, …) naming the system's bundle plus them, in
// /tmp/flynn-ca-certificates.crt (see package cabundle). The command is
// either `start TYPE`, looked up in /app/Procfile and then in the
// buildpack's defaults saved in /app/.release, or any other command line,
// run as given (`slugrunner rake db:migrate`).
//
// slugrunner stays the parent of the process: it forwards the signals it
// receives to the process's group, reaps orphans when it is PID 1 of its
// container, and exits with the process's status.
package slugrunner

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/openflynn/flynn/pkg/cabundle"
	"github.com/openflynn/flynn/pkg/httpretry"
	"github.com/openflynn/flynn/slugbuilder"
)

// Config is what one run needs; cmd/slugrunner builds it from the
// environment and arguments.
type Config struct {
	// SlugURL is fetched (a plain GET) and unpacked into AppDir; empty
	// runs what AppDir already holds. It is a signed blobstore URL: the
	// signature in its query is its only credential.
	SlugURL string
	// AppDir is where the slug lives and HOME points; default "/app".
	AppDir string
	// Port is exported as PORT; default "8080".
	Port string
	// Args is "start TYPE" or a command line.
	Args []string
	// Env is the process's environment before HOME and PORT are set;
	// default os.Environ().
	Env []string
	// Stdin is the process's standard input; default os.Stdin.
	Stdin *os.File
	// Stdout and Stderr receive the process's output; defaults: the os
	// ones. Anything but an *os.File is fed through a pipe.
	Stdout, Stderr io.Writer
	// Signals are forwarded to the process group until it exits.
	Signals <-chan os.Signal
	// HTTPClient fetches the slug; default http.DefaultClient.
	HTTPClient *http.Client
	// CABundlePath receives the system's CA bundle and the cluster's
	// extra certificates when Env has them; default cabundle.DefaultPath.
	CABundlePath string
}

// profileScript sources the buildpacks' profile scripts, then runs the
// command given as $1 through `bash -c`, replacing itself so that the
// command receives signals directly.
const profileScript = `for f in "$HOME"/.profile.d/*.sh; do if [ -r "$f" ]; then . "$f"; fi; done
cd "$HOME" || exit 1
exec bash -c "$1"`

// Run prepares the slug and runs the command; it returns the process's exit
// status (128+signal when killed by one). An error means the process never
// ran.
func Run(ctx context.Context, cfg Config, logger *slog.Logger) (int, error) {
	cfg = withDefaults(cfg)
	if cfg.SlugURL != "" {
		if err := Fetch(ctx, cfg.HTTPClient, cfg.SlugURL, cfg.AppDir); err != nil {
			return 0, err
		}
		logger.Debug("slug unpacked", "dir", cfg.AppDir)
	}
	command, err := Command(cfg.AppDir, cfg.Args)
	if err != nil {
		return 0, err
	}
	env, _, err := cabundle.Install(cfg.Env, cabundle.Options{Path: cfg.CABundlePath})
	if err != nil {
		// An operator's bad certificates must not stop every app: the
		// app runs with the system's trust, and its log says why.
		logger.Warn("the cluster's extra CA certificates are not trusted", "err", err)
		env = cfg.Env
	}
	env = setEnv(env, "HOME", cfg.AppDir)
	env = setEnv(env, "PORT", cfg.Port)
	logger.Debug("starting", "command", command, "port", cfg.Port)
	return runProcess(ctx, cfg, env, []string{"bash", "-c", profileScript, "slugrunner", command})
}

func withDefaults(cfg Config) Config {
	if cfg.AppDir == "" {
		cfg.AppDir = "/app"
	}
	if cfg.Port == "" {
		cfg.Port = "8080"
	}
	if cfg.Env == nil {
		cfg.Env = os.Environ()
	}
	if cfg.Stdin == nil {
		cfg.Stdin = os.Stdin
	}
	if cfg.Stdout == nil {
		cfg.Stdout = os.Stdout
	}
	if cfg.Stderr == nil {
		cfg.Stderr = os.Stderr
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = http.DefaultClient
	}
	if cfg.CABundlePath == "" {
		cfg.CABundlePath = cabundle.DefaultPath
	}
	return cfg
}

// Fetch downloads the gzipped slug tar at slugURL and unpacks it into dir.
func Fetch(ctx context.Context, client *http.Client, slugURL, dir string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, slugURL, nil)
	if err != nil {
		return fmt.Errorf("slug URL: %w", err)
	}
	// The URL's query is its signature: errors, which end up in the app's
	// log, name the URL without it.
	shown := *req.URL
	shown.User, shown.RawQuery = nil, ""
	// A job may start on a node before the node's router does.
	resp, err := httpretry.Do(ctx, client, httpretry.DefaultWithin, func() (*http.Request, error) { return req.Clone(ctx), nil })
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			ue.URL = shown.String()
		}
		return fmt.Errorf("fetch slug: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("fetch slug %s: %s", shown.String(), resp.Status)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	// The slug is what the platform's build made; the job's own disk
	// limit bounds it.
	if err := slugbuilder.ExtractTarGz(resp.Body, dir, slugbuilder.Limits{}); err != nil {
		return fmt.Errorf("unpack slug: %w", err)
	}
	return nil
}

// Command resolves args into the command line to run: `start TYPE` is the
// process type's command from the Procfile (or the buildpack's defaults); a
// single other argument is a shell command line as it stands (`flynn run
// "rake db:migrate && echo done"`); several are an argv, each quoted so
// the shell sees the same words (`flynn run bash -c 'echo $HOME'`).
func Command(appDir string, args []string) (string, error) {
	if len(args) == 0 {
		return "", errors.New("nothing to run: want `start TYPE` or a command")
	}
	if args[0] != "start" {
		if len(args) == 1 {
			return args[0], nil
		}
		words := make([]string, len(args))
		for i, a := range args {
			words[i] = shellQuote(a)
		}
		return strings.Join(words, " "), nil
	}
	if len(args) != 2 {
		return "", errors.New("usage: start TYPE")
	}
	typ := args[1]
	for _, src := range []struct {
		file  string
		parse func(io.Reader) (map[string]string, error)
	}{{"Procfile", slugbuilder.ParseProcfile}, {".release", slugbuilder.ParseRelease}} {
		f, err := os.Open(filepath.Join(appDir, src.file))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return "", err
		}
		types, err := src.parse(f)
		f.Close()
		if err != nil {
			return "", err
		}
		if cmd, ok := types[typ]; ok {
			return cmd, nil
		}
	}
	return "", fmt.Errorf("process type %q is in neither the Procfile nor the buildpack's defaults", typ)
}

// setEnv replaces or adds key in env.
func setEnv(env []string, key, value string) []string {
	out := make([]string, 0, len(env)+1)
	for _, kv := range env {
		if !strings.HasPrefix(kv, key+"=") {
			out = append(out, kv)
		}
	}
	return append(out, key+"="+value)
}

// exitStatus turns a wait status into a shell-style exit code.
func exitStatus(ws syscall.WaitStatus) int {
	if ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ws.ExitStatus()
}

// shellQuote returns s as one shell word: as it is when it holds nothing
// the shell would read specially, else in single quotes.
func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-./:=@%+,") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

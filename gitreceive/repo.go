package gitreceive

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"
)

var appNamePattern = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)

// parseGitCommand reads the command git runs over SSH,
// `git-receive-pack '<app>.git'` for a push or `git-upload-pack …` for a
// fetch (the path may have a leading slash and may lack ".git"), and
// returns the service ("receive-pack" or "upload-pack") and the app name.
func parseGitCommand(cmd string) (service, app string, err error) {
	verb, arg, _ := strings.Cut(strings.TrimSpace(cmd), " ")
	switch verb {
	case "git-receive-pack", "git-upload-pack":
		service = strings.TrimPrefix(verb, "git-")
	case "":
		return "", "", fmt.Errorf("this is a git server; push to it with git push")
	default:
		return "", "", fmt.Errorf("unknown command %q; only git push and fetch are supported", verb)
	}
	arg = strings.TrimSpace(arg)
	if len(arg) >= 2 && (arg[0] == '\'' || arg[0] == '"') && arg[len(arg)-1] == arg[0] {
		arg = arg[1 : len(arg)-1]
	}
	name := strings.TrimSuffix(strings.TrimPrefix(arg, "/"), ".git")
	if !appNamePattern.MatchString(name) {
		return "", "", fmt.Errorf("%q is not an app repository; push to <app>.git", arg)
	}
	return service, name, nil
}

// ensureRepo returns the bare repository of an app, creating it, setting
// its push size limit and (re)writing its pre-receive hook.
func (s *Server) ensureRepo(ctx context.Context, appID string) (string, error) {
	dir := filepath.Join(s.cfg.StateDir, "repos", appID+".git")
	git := func(args ...string) error {
		cmd := exec.CommandContext(ctx, s.cfg.GitPath, args...)
		cmd.Env = s.gitEnv("", "")
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("git %s %s: %w: %s", args[0], dir, err, bytes.TrimSpace(out))
		}
		return nil
	}
	if _, err := os.Stat(filepath.Join(dir, "HEAD")); os.IsNotExist(err) {
		if err := git("init", "--quiet", "--bare", dir); err != nil {
			return "", err
		}
	} else if err != nil {
		return "", err
	}
	// Set on every push, so a changed --max-push-size reaches existing
	// repositories: git refuses a bigger pack before storing it.
	if err := git("--git-dir", dir, "config", "receive.maxInputSize", strconv.FormatInt(s.cfg.MaxPushSize, 10)); err != nil {
		return "", err
	}
	hook := filepath.Join(dir, "hooks", "pre-receive")
	want := []byte(hookScript(s.cfg.HookCommand))
	if have, err := os.ReadFile(hook); err == nil && bytes.Equal(have, want) {
		return dir, nil
	}
	if err := os.MkdirAll(filepath.Dir(hook), 0o755); err != nil {
		return "", err
	}
	tmp := hook + ".tmp"
	if err := os.WriteFile(tmp, want, 0o755); err != nil {
		return "", err
	}
	return dir, os.Rename(tmp, hook)
}

// hookScript is the pre-receive hook: exec the relay.
func hookScript(command []string) string {
	quoted := make([]string, len(command))
	for i, a := range command {
		quoted[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
	}
	return "#!/bin/sh\n# Installed by gitreceive: relays the push to the gitreceive server.\nexec " + strings.Join(quoted, " ") + "\n"
}

// appLocks serialises pushes per app.
type appLocks struct {
	mu    sync.Mutex
	locks map[string]chan struct{}
}

func newAppLocks() *appLocks { return &appLocks{locks: map[string]chan struct{}{}} }

// lock takes app's lock, calling onWait first if it is held; it gives up
// when ctx ends. It returns the unlock function and how long it waited.
func (l *appLocks) lock(ctx context.Context, app string, onWait func()) (func(), time.Duration, error) {
	l.mu.Lock()
	ch, ok := l.locks[app]
	if !ok {
		ch = make(chan struct{}, 1)
		l.locks[app] = ch
	}
	l.mu.Unlock()
	unlock := func() { <-ch }
	select {
	case ch <- struct{}{}:
		return unlock, 0, nil
	default:
	}
	if onWait != nil {
		onWait()
	}
	start := time.Now()
	select {
	case ch <- struct{}{}:
		return unlock, time.Since(start), nil
	case <-ctx.Done():
		return nil, 0, ctx.Err()
	}
}

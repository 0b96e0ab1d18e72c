package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"path"
	"strings"

	urfave "github.com/urfave/cli/v2"
)

// remoteName is the git remote `flynn create` adds and app commands read.
const remoteName = "flynn"

// git runs git in the working directory and returns its trimmed output.
func (r *runner) git(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, r.env.Git, append([]string{"-C", r.env.Dir}, args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		if msg := strings.TrimSpace(stderr.String()); msg != "" {
			return "", fmt.Errorf("git %s: %s", strings.Join(args, " "), msg)
		}
		return "", fmt.Errorf("git %s: %w", strings.Join(args, " "), err)
	}
	return strings.TrimSpace(stdout.String()), nil
}

// inGitRepo reports whether the working directory is in a git work tree.
func (r *runner) inGitRepo(ctx context.Context) bool {
	out, err := r.git(ctx, "rev-parse", "--is-inside-work-tree")
	return err == nil && out == "true"
}

// remoteURL returns the URL of a git remote, or "" when there is none.
func (r *runner) remoteURL(ctx context.Context, name string) string {
	if !r.inGitRepo(ctx) {
		return ""
	}
	out, err := r.git(ctx, "config", "--get", "remote."+name+".url")
	if err != nil {
		return ""
	}
	return out
}

// appFromRemote is the app a flynn remote URL names:
// "ssh://git@host:2222/example.git" → "example".
func appFromRemote(url string) string {
	if url == "" {
		return ""
	}
	if i := strings.Index(url, "://"); i >= 0 {
		url = url[i+3:]
	}
	return strings.TrimSuffix(path.Base(url), ".git")
}

// appName is the app a command works on: -a, else the flynn git remote's.
func (r *runner) appName(c *urfave.Context) (string, error) {
	if name := lookupString(c, "app"); name != "" {
		return name, nil
	}
	if name := appFromRemote(r.remoteURL(c.Context, remoteName)); name != "" {
		return name, nil
	}
	return "", errors.New("no app given: use -a APP, or run this in a directory with a \"flynn\" git remote")
}

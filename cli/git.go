package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"path"
	"slices"
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

// appName is the app a command works on: -a; else the app of the git
// remote -r names; else $FLYNN_APP; else the app of the "flynn" git
// remote.
func (r *runner) appName(c *urfave.Context) (string, error) {
	if name := lookupString(c, "app"); name != "" {
		return name, nil
	}
	if remote := lookupString(c, remoteFlagName); remote != "" {
		url := r.remoteURL(c.Context, remote)
		if url == "" {
			return "", fmt.Errorf("no git remote %q here to take the app from (see `git remote -v`)", remote)
		}
		return appFromRemote(url), nil
	}
	if r.env.App != "" {
		return r.env.App, nil
	}
	if name := appFromRemote(r.remoteURL(c.Context, remoteName)); name != "" {
		return name, nil
	}
	return "", errors.New("no app given: use -a APP or -r REMOTE, set $FLYNN_APP, or run this in a directory with a \"flynn\" git remote")
}

// addGitRemote adds the git remote name for app, pointing at the
// cluster's gitreceive, as `flynn create` does. A remote of that name that
// exists already is left as it is, and its URL returned.
func (r *runner) addGitRemote(ctx context.Context, name, app string) (existing string, err error) {
	if existing = r.remoteURL(ctx, name); existing != "" {
		return existing, nil
	}
	url := r.cluster.GitURL(app)
	if _, err := r.git(ctx, "remote", "add", name, url); err != nil {
		return "", err
	}
	fmt.Fprintf(r.env.Stdout, "Added git remote %s: %s\n", name, url)
	return "", nil
}

// trustGitHost makes sure ~/.ssh/known_hosts holds the cluster's git host
// key, after a remote was added: again here, for a known_hosts that lost
// the line since `cluster add` or a config brought from another machine.
// A failure only warns: git then asks.
func (r *runner) trustGitHost() {
	if err := trustGitHost(r.env.Home, r.cluster, r.env.Stdout, r.env.Stderr); err != nil {
		fmt.Fprintf(r.env.Stderr, "flynn: git will ask to trust the cluster's host key: %v\n", err)
	}
}

// remoteFlagName is the global flag naming the git remote to take the app
// from.
const remoteFlagName = "remote"

// remoteFlag is -r REMOTE, accepted before the command name and after the
// name of every command that takes -a.
func remoteFlag() urfave.Flag {
	return &urfave.StringFlag{Name: remoteFlagName, Aliases: []string{"r"}, Usage: "take the app from git remote `REMOTE` (instead of \"flynn\")"}
}

// addRemoteFlags gives -r to every command that takes -a, but to those
// whose own -r means something else (`create -r`, the remote it adds;
// `run -r`, the release): there only -r before the command name picks the
// app's remote.
func addRemoteFlags(cmds []*urfave.Command) {
	for _, c := range cmds {
		if hasFlag(c.Flags, "app") && !hasFlag(c.Flags, remoteFlagName) && !hasFlag(c.Flags, "r") {
			c.Flags = append(c.Flags, remoteFlag())
		}
		addRemoteFlags(c.Subcommands)
	}
}

// hasFlag reports whether one of flags has name among its names.
func hasFlag(flags []urfave.Flag, name string) bool {
	for _, f := range flags {
		if slices.Contains(f.Names(), name) {
			return true
		}
	}
	return false
}

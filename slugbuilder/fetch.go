package slugbuilder

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
)

// fetchBuildpack puts the buildpack at url into dir: an http(s) URL of a
// .tgz, .tar.gz or .tar is downloaded and unpacked (a single top directory
// that holds bin/ is stripped, as GitHub archives have one); anything else is cloned with
// git, checking out the ref after a '#'.
func fetchBuildpack(ctx context.Context, cfg Config, url, dir string) error {
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	base, _, _ := strings.Cut(url, "?")
	isHTTP := strings.HasPrefix(url, "http://") || strings.HasPrefix(url, "https://")
	if isHTTP && (strings.HasSuffix(base, ".tgz") || strings.HasSuffix(base, ".tar.gz") || strings.HasSuffix(base, ".tar")) {
		if err := downloadBuildpack(ctx, cfg.HTTPClient, url, dir, cfg.sourceLimits()); err != nil {
			return fmt.Errorf("fetch buildpack %s: %w", redact(url), err)
		}
	} else if err := cloneBuildpack(ctx, cfg.Env, url, dir); err != nil {
		return fmt.Errorf("fetch buildpack %s: %w", redact(url), err)
	}
	// Archives made on other systems do not always keep the execute bits.
	scripts, _ := filepath.Glob(filepath.Join(dir, "bin", "*"))
	for _, s := range scripts {
		if err := os.Chmod(s, 0o755); err != nil {
			return err
		}
	}
	return nil
}

func downloadBuildpack(ctx context.Context, client *http.Client, url, dir string, lim Limits) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET: %s", resp.Status)
	}
	tmp := dir + ".download"
	if err := os.RemoveAll(tmp); err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		return err
	}
	base, _, _ := strings.Cut(url, "?")
	if strings.HasSuffix(base, ".tar") {
		err = ExtractTar(resp.Body, tmp, lim)
	} else {
		err = ExtractTarGz(resp.Body, tmp, lim)
	}
	if err != nil {
		return err
	}
	return os.Rename(buildpackRoot(tmp), dir)
}

// buildpackRoot returns the buildpack's directory in an unpacked archive:
// the archive's single top directory when that holds bin/ (GitHub's
// archives have one), else the archive's root, so that an archive of just
// bin/ is not stripped of it.
func buildpackRoot(unpacked string) string {
	entries, err := os.ReadDir(unpacked)
	if err != nil || len(entries) != 1 || !entries[0].IsDir() {
		return unpacked
	}
	top := filepath.Join(unpacked, entries[0].Name())
	if fi, err := os.Stat(filepath.Join(top, "bin")); err == nil && fi.IsDir() {
		return top
	}
	return unpacked
}

func cloneBuildpack(ctx context.Context, env []string, url, dir string) error {
	repo, ref, _ := strings.Cut(url, "#")
	run := func(args ...string) error {
		var out bytes.Buffer
		cmd := exec.CommandContext(ctx, "git", args...)
		cmd.Stdout, cmd.Stderr = &out, &out
		cmd.Env = append(slices.Clone(env), "GIT_TERMINAL_PROMPT=0")
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("git %s: %w: %s", args[0], err, strings.TrimSpace(out.String()))
		}
		return nil
	}
	if ref == "" {
		return run("clone", "--quiet", "--depth=1", repo, dir)
	}
	if err := run("clone", "--quiet", "--depth=1", "--branch", ref, repo, dir); err == nil {
		return nil
	}
	// The ref is a commit rather than a branch or tag.
	os.RemoveAll(dir)
	if err := run("clone", "--quiet", repo, dir); err != nil {
		return err
	}
	return run("-C", dir, "checkout", "--quiet", ref)
}

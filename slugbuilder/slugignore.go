package slugbuilder

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// applySlugignore deletes what the app's .slugignore names before the
// buildpacks run, as Heroku does. Each line is a glob: with a '/' (other
// than a trailing one) it matches paths from the app's root, without one it
// matches a file or directory name anywhere. Blank lines and # comments are
// ignored.
func applySlugignore(dir string) error {
	f, err := os.Open(filepath.Join(dir, ".slugignore"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer f.Close()
	var patterns []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if _, err := path.Match(line, ""); err != nil {
			return fmt.Errorf(".slugignore: bad pattern %q: %w", line, err)
		}
		patterns = append(patterns, line)
	}
	if err := sc.Err(); err != nil {
		return err
	}
	var doomed []string
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		rel = filepath.ToSlash(rel)
		if rel == "." || rel == ".git" {
			if rel == ".git" {
				return filepath.SkipDir
			}
			return nil
		}
		if slugignored(patterns, rel) {
			doomed = append(doomed, p)
			if d.IsDir() {
				return filepath.SkipDir
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("apply .slugignore: %w", err)
	}
	for _, p := range doomed {
		if err := os.RemoveAll(p); err != nil {
			return fmt.Errorf("apply .slugignore: %w", err)
		}
	}
	return nil
}

// slugignored reports whether rel (slash-separated, relative to the app)
// matches one of the patterns.
func slugignored(patterns []string, rel string) bool {
	for _, p := range patterns {
		p = strings.TrimSuffix(p, "/")
		if strings.Contains(p, "/") {
			if ok, _ := path.Match(strings.TrimPrefix(p, "/"), rel); ok {
				return true
			}
			continue
		}
		if ok, _ := path.Match(p, path.Base(rel)); ok {
			return true
		}
	}
	return false
}

package dashboard

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"html/template"
	"io/fs"
	"strings"
	"time"

	"github.com/openflynn/flynn/controller"
)

// parseTemplates parses the embedded pages with the functions they use.
func parseTemplates(now func() time.Time) (*template.Template, error) {
	funcs := template.FuncMap{
		// short is an id's first 8 characters, as the CLI shows jobs.
		"short": func(id string) string {
			if len(id) > 8 {
				return id[:8]
			}
			return id
		},
		// jobID is a job's id as people tell jobs apart: the id without
		// its host's prefix ("<host>-<uuid>"), 8 characters of it.
		"jobID": func(j *controller.Job) string {
			id := strings.TrimPrefix(j.ID, j.HostID+"-")
			if len(id) > 8 {
				return id[:8]
			}
			return id
		},
		"ago":     func(t time.Time) string { return age(now(), t) },
		"rfc3339": func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
		"percent": func(p float64) string { return fmt.Sprintf("%.0f%%", p) },
		"bytes":   formatBytes,
		// appNamePattern is the controller's rule as an HTML pattern, which
		// browsers compile with the v flag: a literal "-" in a class is
		// escaped there.
		"appNamePattern": func() string {
			return strings.ReplaceAll(strings.Trim(controller.AppNamePattern, "^$"), "-]", `\-]`)
		},
	}
	t, err := template.New("").Funcs(funcs).ParseFS(templateFiles, "templates/*.html")
	if err != nil {
		return nil, fmt.Errorf("dashboard templates: %w", err)
	}
	return t, nil
}

// formatBytes is a size for people: "512 B", "3.4 MiB".
func formatBytes(n uint64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := uint64(unit), 0
	for m := n / unit; m >= unit && exp < 4; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTP"[exp])
}

// contentVersion is a hash of every file in fsys, which names this build's
// assets in their URLs.
func contentVersion(fsys fs.FS) (string, error) {
	h := sha256.New()
	err := fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(fsys, p)
		if err != nil {
			return err
		}
		fmt.Fprintf(h, "%s\x00%d\x00", p, len(b))
		h.Write(b)
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("dashboard assets: %w", err)
	}
	return hex.EncodeToString(h.Sum(nil))[:12], nil
}

package blobstore

import (
	"errors"
	"net/url"
	"path"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzCleanPath checks what an accepted blob path can do wherever it is
// used: as a file under a root, as a key, in a URL. It never escapes the
// root (no "..", not absolute, no backslash), is already clean (so it
// names the same blob as every path that cleans to it: none but itself),
// reads the same after one more percent-decoding (a proxy's), and survives
// a trip through a URL unchanged. A refused path is a *PathError.
func FuzzCleanPath(f *testing.F) {
	for _, s := range []string{
		"/apps/5f1c/slug-v3.tgz", "/cache", "/a_b-c.d~e+f=g,h@i:j", "/a/..b/c..", "/", "", "apps/x",
		"/apps/../etc/passwd", "/../x", "/x/..", "/a/./b", "//etc/passwd", "/a//b", "/apps/",
		"/%2e%2e/x", "/%2fetc", `/a\..\b`, "/a\x00b", "/a\nb", "/a b", "/a?b", "/a#b", "/caf\xc3\xa9",
		"/" + strings.Repeat("a", 255), "/" + strings.Repeat("a", 256), "/...", "/.a/a.", "/C:/x", "/c:", "/~/x",
	} {
		f.Add(s)
	}
	const root = "/var/lib/flynn/blobs"
	f.Fuzz(func(t *testing.T, urlPath string) {
		p, err := CleanPath(urlPath)
		if err != nil {
			var pe *PathError
			if !errors.As(err, &pe) || (pe.Path != urlPath && "/"+pe.Path != urlPath) {
				t.Fatalf("CleanPath(%q): err = %v, want a *PathError naming the path", urlPath, err)
			}
			return
		}
		if p == "" || len(p) > MaxPathLen {
			t.Fatalf("CleanPath(%q) = %q: empty or longer than %d", urlPath, p, MaxPathLen)
		}
		if "/"+p != urlPath {
			t.Fatalf("CleanPath(%q) = %q: not the request path without its slash", urlPath, p)
		}
		// Never escapes a root.
		if !filepath.IsLocal(p) || path.IsAbs(p) {
			t.Fatalf("CleanPath(%q) = %q: not local", urlPath, p)
		}
		if strings.Contains(p, `\`) {
			t.Fatalf("CleanPath(%q) = %q: holds a backslash (a separator on Windows)", urlPath, p)
		}
		for _, seg := range strings.Split(p, "/") {
			if seg == "" || seg == "." || seg == ".." {
				t.Fatalf("CleanPath(%q) = %q: segment %q", urlPath, p, seg)
			}
		}
		if joined := filepath.Join(root, p); !strings.HasPrefix(joined, root+"/") {
			t.Fatalf("CleanPath(%q) = %q: joined to %s it is %s", urlPath, p, root, joined)
		}
		// Already clean: no other spelling aliases it.
		if path.Clean(p) != p || path.Clean("/"+p) != "/"+p {
			t.Fatalf("CleanPath(%q) = %q: path.Clean makes it %q", urlPath, p, path.Clean(p))
		}
		// One more decoding (by a proxy, a client) changes nothing.
		if u, err := url.PathUnescape(p); err != nil || u != p {
			t.Fatalf("CleanPath(%q) = %q: decodes again to %q, %v", urlPath, p, u, err)
		}
		// Through a URL and back it is the same path, and accepted again.
		u := &url.URL{Scheme: "http", Host: "blobstore.discoverd", Path: "/" + p}
		back, err := url.Parse(u.String())
		if err != nil || back.Path != "/"+p || back.RawQuery != "" || back.Fragment != "" {
			t.Fatalf("CleanPath(%q) = %q: as URL %s parses to %+v, %v", urlPath, p, u, back, err)
		}
		if again, err := CleanPath(back.Path); err != nil || again != p {
			t.Fatalf("CleanPath(%q) = %q, but again %q, %v", urlPath, p, again, err)
		}
	})
}

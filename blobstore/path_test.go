package blobstore

import (
	"errors"
	"strings"
	"testing"
)

func TestCleanPath(t *testing.T) {
	tests := []struct {
		name    string
		urlPath string
		want    string // "" means the path must be refused
	}{
		{"slug", "/apps/5f1c/slug-v3.tgz", "apps/5f1c/slug-v3.tgz"},
		{"single segment", "/cache", "cache"},
		{"allowed punctuation", "/a_b-c.d~e+f=g,h@i:j", "a_b-c.d~e+f=g,h@i:j"},
		{"dots inside a name", "/a/..b/c..", "a/..b/c.."},
		{"root", "/", ""},
		{"empty", "", ""},
		{"relative", "apps/x", ""},
		{"parent segment", "/apps/../etc/passwd", ""},
		{"leading parent", "/../x", ""},
		{"trailing parent", "/x/..", ""},
		{"dot segment", "/a/./b", ""},
		{"double slash (absolute inside)", "//etc/passwd", ""},
		{"inner double slash", "/a//b", ""},
		{"trailing slash", "/apps/", ""},
		{"percent (encoded forms after one more decode)", "/%2e%2e/x", ""},
		{"backslash", `/a\..\b`, ""},
		{"nul", "/a\x00b", ""},
		{"newline", "/a\nb", ""},
		{"space", "/a b", ""},
		{"query mark", "/a?b", ""},
		{"non-ascii", "/caf\xc3\xa9", ""},
		{"too long", "/" + strings.Repeat("a/", MaxPathLen/2) + "b", ""},
		{"segment too long", "/" + strings.Repeat("a", 256), ""},
		{"longest segment", "/" + strings.Repeat("a", 255), strings.Repeat("a", 255)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := CleanPath(tt.urlPath)
			if tt.want == "" {
				var pe *PathError
				if !errors.As(err, &pe) {
					t.Fatalf("CleanPath(%q) = %q, %v; want a *PathError", tt.urlPath, got, err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("CleanPath(%q) = %q, %v; want %q, nil", tt.urlPath, got, err, tt.want)
			}
		})
	}
}

func TestValidatePrefix(t *testing.T) {
	tests := []struct {
		name   string
		prefix string
		ok     bool
	}{
		{"everything", "", true},
		{"an app's directory", "apps/5f1c/", true},
		{"inside a segment", "apps/5f", true},
		{"a whole path", "apps/5f1c/slug.tgz", true},
		{"percent", "apps/%2e", false},
		{"space", "apps/ x", false},
		{"too long", strings.Repeat("a", MaxPathLen+1), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := ValidatePrefix(tt.prefix)
			var pe *PathError
			if tt.ok && err != nil || !tt.ok && !errors.As(err, &pe) {
				t.Fatalf("ValidatePrefix(%q) = %v, want ok %v", tt.prefix, err, tt.ok)
			}
		})
	}
}

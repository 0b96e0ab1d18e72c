package controllerd

import (
	"testing"

	"github.com/openflynn/flynn/controller/server"
	"github.com/openflynn/flynn/pkg/cmdline/cmdlinetest"
)

// TestImagesCommandLine checks where the controller keeps uploaded
// images, and their bound.
func TestImagesCommandLine(t *testing.T) {
	cmd := cmdlinetest.Command[Config]{Daemon: Daemon, Env: map[string]string{"PORT": "", "FLYNN_DATABASE_URL": "postgres://x", "FLYNN_CONTROLLER_KEY": "ck"}}
	tests := []struct {
		name    string
		env     map[string]string
		wantURL string // of the blob "x"; "" for none
		wantMax int64
	}{
		{"a Flynn job", map[string]string{"FLYNN_DISCOVERD_URL": "http://127.0.0.1:1111"}, "http://blobstore.discoverd/x", server.DefaultMaxImageSize},
		{"no discoverd for a discoverd name", nil, "", server.DefaultMaxImageSize},
		{"a blobstore by address, a bound", map[string]string{"FLYNN_BLOBSTORE_URL": "http://127.0.0.1:5001", "FLYNN_MAX_IMAGE_SIZE": "1GiB"}, "http://127.0.0.1:5001/x", 1 << 30},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := cmd.Accepted(t, tt.env).Server
			switch {
			case tt.wantURL == "" && got.Images != nil:
				t.Fatalf("images kept at %s, want nowhere", got.Images.URL("x"))
			case tt.wantURL != "" && (got.Images == nil || got.Images.URL("x") != tt.wantURL):
				t.Fatalf("images kept at %v, want %s", got.Images, tt.wantURL)
			}
			if got.MaxImageSize != tt.wantMax {
				t.Errorf("max image size %d, want %d", got.MaxImageSize, tt.wantMax)
			}
		})
	}
}

package controllerd

import (
	"testing"
	"time"

	"github.com/openflynn/flynn/controller/blobgc"
	"github.com/openflynn/flynn/pkg/cmdline/cmdlinetest"
)

// TestBlobGCCommandLine checks when the controller runs the blob
// collector, and against which blobstore.
func TestBlobGCCommandLine(t *testing.T) {
	cmd := cmdlinetest.Command[Config]{Daemon: Daemon, Env: map[string]string{"PORT": "", "FLYNN_DATABASE_URL": "postgres://x", "FLYNN_CONTROLLER_KEY": "ck"}}
	tests := []struct {
		name         string
		env          map[string]string
		wantURL      string // of the blob "x"; "" for no collector
		wantInterval time.Duration
	}{
		{"a Flynn job", map[string]string{"FLYNN_DISCOVERD_URL": "http://127.0.0.1:1111"}, "http://blobstore.discoverd/x", blobgc.DefaultInterval},
		{"a job that knows its node", map[string]string{"FLYNN_EXTERNAL_IP": "10.0.0.2", "FLYNN_BLOB_GC_INTERVAL": "1h"}, "http://blobstore.discoverd/x", time.Hour},
		{"no discoverd for a discoverd name", nil, "", 0},
		{"a blobstore by address", map[string]string{"FLYNN_BLOBSTORE_URL": "http://127.0.0.1:5001"}, "http://127.0.0.1:5001/x", blobgc.DefaultInterval},
		{"turned off", map[string]string{"FLYNN_DISCOVERD_URL": "http://127.0.0.1:1111", "FLYNN_BLOB_GC_INTERVAL": "0"}, "", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := cmd.Accepted(t, tt.env)
			switch {
			case tt.wantURL == "" && got.BlobGC != nil:
				t.Fatalf("collector configured against %s, want none", got.BlobGC.Blobstore.URL("x"))
			case tt.wantURL == "":
			case got.BlobGC == nil:
				t.Fatalf("no collector, want one against %s", tt.wantURL)
			case got.BlobGC.Blobstore.URL("x") != tt.wantURL || got.BlobGC.Interval != tt.wantInterval || got.BlobGC.Blobstore.HTTP == nil:
				t.Fatalf("collector against %s every %v, want %s every %v with an HTTP client", got.BlobGC.Blobstore.URL("x"), got.BlobGC.Interval, tt.wantURL, tt.wantInterval)
			}
		})
	}
}

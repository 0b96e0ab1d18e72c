package gitreceive

import (
	"testing"

	"github.com/openflynn/flynn/controller"
)

// TestSameBuild checks when the builder app's release is kept: only while
// every limit gitreceive sets on build jobs is unchanged.
func TestSameBuild(t *testing.T) {
	want := controller.ProcessType{Resources: &controller.Resources{Memory: 2 << 30, MaxProcs: 1024, Disk: 10 << 30}}
	tests := []struct {
		name string
		have *controller.Resources
		same bool
	}{
		{"same limits", &controller.Resources{Memory: 2 << 30, MaxProcs: 1024, Disk: 10 << 30}, true},
		{"limits the controller adds are ignored", &controller.Resources{Memory: 2 << 30, MaxProcs: 1024, Disk: 10 << 30, MaxFD: 10000}, true},
		{"other memory", &controller.Resources{Memory: 1 << 30, MaxProcs: 1024, Disk: 10 << 30}, false},
		{"other pids", &controller.Resources{Memory: 2 << 30, MaxProcs: 512, Disk: 10 << 30}, false},
		{"other disk", &controller.Resources{Memory: 2 << 30, MaxProcs: 1024, Disk: 5 << 30}, false},
		{"a release from before the pids and disk limits", &controller.Resources{Memory: 2 << 30}, false},
		{"no resources", nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := sameBuild(controller.ProcessType{Resources: tt.have}, want); got != tt.same {
				t.Fatalf("sameBuild = %v, want %v", got, tt.same)
			}
		})
	}
}

package gitreceive

import (
	"maps"
	"reflect"
	"testing"

	"github.com/openflynn/flynn/controller"
)

func TestEnvDiff(t *testing.T) {
	tests := []struct {
		name       string
		have, want map[string]string
		diff       *controller.EnvPatch
	}{
		{"equal", map[string]string{"A": "1"}, map[string]string{"A": "1"}, nil},
		{"both empty", nil, map[string]string{}, nil},
		{"set", map[string]string{"A": "1"}, map[string]string{"A": "1", "B": "2"}, &controller.EnvPatch{Set: map[string]string{"B": "2"}}},
		{"changed", map[string]string{"A": "1"}, map[string]string{"A": "2"}, &controller.EnvPatch{Set: map[string]string{"A": "2"}}},
		{"unset", map[string]string{"A": "1", "C": "3", "B": "2"}, map[string]string{"A": "1"}, &controller.EnvPatch{Set: map[string]string{}, Unset: []string{"B", "C"}}},
		{"empty value is a value", map[string]string{}, map[string]string{"A": ""}, &controller.EnvPatch{Set: map[string]string{"A": ""}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := envDiff(tt.have, tt.want); !reflect.DeepEqual(got, tt.diff) {
				t.Fatalf("envDiff = %+v, want %+v", got, tt.diff)
			}
		})
	}
}

// TestPushPatch: app.json's variables are set only where the release
// patched lacks them; SLUG_URL always.
func TestPushPatch(t *testing.T) {
	pp := &pushPatch{slugURL: "http://blob/new.tgz", appJSON: map[string]string{"GREETING": "hello", "KEEP": "default"}}
	tests := []struct {
		name string
		base *controller.Release
		set  map[string]string
		env  map[string]string
	}{
		{
			name: "no release",
			set:  map[string]string{"SLUG_URL": "http://blob/new.tgz", "GREETING": "hello", "KEEP": "default"},
			env:  map[string]string{"SLUG_URL": "http://blob/new.tgz", "GREETING": "hello", "KEEP": "default"},
		},
		{
			name: "set meanwhile",
			base: &controller.Release{Env: map[string]string{"KEEP": "mine", "OTHER": "x", "SLUG_URL": "http://blob/old.tgz"}},
			set:  map[string]string{"SLUG_URL": "http://blob/new.tgz", "GREETING": "hello"},
			env:  map[string]string{"SLUG_URL": "http://blob/new.tgz", "GREETING": "hello", "KEEP": "mine", "OTHER": "x"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := pp.patch(tt.base).Env; !maps.Equal(got.Set, tt.set) || got.Unset != nil {
				t.Errorf("patch env = %+v, want set %v", got, tt.set)
			}
			if got := pp.env(tt.base); !maps.Equal(got, tt.env) {
				t.Errorf("env = %v, want %v", got, tt.env)
			}
		})
	}
}

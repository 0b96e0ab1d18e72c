package gitreceive

import (
	"maps"
	"reflect"
	"slices"
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
// patched lacks them; SLUG_URL always for a slug, never for an image.
func TestPushPatch(t *testing.T) {
	slug := &pushPatch{slugURL: "http://blob/new.tgz", appJSON: map[string]string{"GREETING": "hello", "KEEP": "default"}}
	image := &pushPatch{image: true, appJSON: map[string]string{"GREETING": "hello"}}
	tests := []struct {
		name  string
		pp    *pushPatch
		base  *controller.Release
		set   map[string]string
		unset []string
		env   map[string]string
	}{
		{
			name: "no release",
			pp:   slug,
			set:  map[string]string{"SLUG_URL": "http://blob/new.tgz", "GREETING": "hello", "KEEP": "default"},
			env:  map[string]string{"SLUG_URL": "http://blob/new.tgz", "GREETING": "hello", "KEEP": "default"},
		},
		{
			name: "set meanwhile",
			pp:   slug,
			base: &controller.Release{Env: map[string]string{"KEEP": "mine", "OTHER": "x", "SLUG_URL": "http://blob/old.tgz"}},
			set:  map[string]string{"SLUG_URL": "http://blob/new.tgz", "GREETING": "hello"},
			env:  map[string]string{"SLUG_URL": "http://blob/new.tgz", "GREETING": "hello", "KEEP": "mine", "OTHER": "x"},
		},
		{
			name:  "image after a slug",
			pp:    image,
			base:  &controller.Release{Env: map[string]string{"OTHER": "x", "SLUG_URL": "http://blob/old.tgz"}},
			set:   map[string]string{"GREETING": "hello"},
			unset: []string{"SLUG_URL"},
			env:   map[string]string{"GREETING": "hello", "OTHER": "x"},
		},
		{
			name:  "image, no release",
			pp:    image,
			set:   map[string]string{"GREETING": "hello"},
			unset: []string{"SLUG_URL"}, // an unset name is ignored
			env:   map[string]string{"GREETING": "hello"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.pp.patch(tt.base).Env; !maps.Equal(got.Set, tt.set) || !slices.Equal(got.Unset, tt.unset) {
				t.Errorf("patch env = %+v, want set %v unset %v", got, tt.set, tt.unset)
			}
			if got := tt.pp.env(tt.base); !maps.Equal(got, tt.env) {
				t.Errorf("env = %v, want %v", got, tt.env)
			}
		})
	}
}

func TestCommandArgs(t *testing.T) {
	if got, want := (&pushPatch{}).commandArgs("rake db:seed"), []string{"rake db:seed"}; !slices.Equal(got, want) {
		t.Errorf("slug: %q, want %q (slugrunner runs one argument as a command line)", got, want)
	}
	if got, want := (&pushPatch{image: true}).commandArgs("rake db:seed"), []string{"/bin/sh", "-c", "rake db:seed"}; !slices.Equal(got, want) {
		t.Errorf("image: %q, want %q", got, want)
	}
}

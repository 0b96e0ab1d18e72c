package controller

import (
	"reflect"
	"strings"
	"testing"
)

func TestImageProcesses(t *testing.T) {
	art := func(exposed string) *Artifact {
		a := &Artifact{ID: "a1", Type: ArtifactTypeDockerArchive, Meta: map[string]string{}}
		if exposed != "" {
			a.Meta[ImageMetaExposedPorts] = exposed
		}
		return a
	}
	tests := []struct {
		name     string
		exposed  string
		procfile map[string]string
		tcp      bool
		want     map[string]ProcessType
		wantErr  string
	}{
		{
			name: "first exposed TCP port", exposed: `["53/udp","8080/tcp","6379/tcp"]`,
			want: map[string]ProcessType{"web": {Ports: []Port{{Target: 6379, Proto: "http"}}, Service: "app-web"}},
		},
		{
			name: "tcp", exposed: `["6379/tcp"]`, tcp: true,
			want: map[string]ProcessType{"web": {Ports: []Port{{Target: 6379, Proto: "tcp"}}, Service: "app-web"}},
		},
		{
			name: "a range", exposed: `["7000-7010/tcp"]`,
			want: map[string]ProcessType{"web": {Ports: []Port{{Target: 7000, Proto: "http"}}, Service: "app-web"}},
		},
		{
			name: "none exposed: $PORT",
			want: map[string]ProcessType{"web": {Ports: []Port{{Proto: "http"}}, Service: "app-web"}},
		},
		{
			name: "only UDP exposed: $PORT", exposed: `["53/udp"]`,
			want: map[string]ProcessType{"web": {Ports: []Port{{Proto: "http"}}, Service: "app-web"}},
		},
		{
			name: "procfile", exposed: `["7000/tcp"]`, procfile: map[string]string{"web": "serve --port 7000", "worker": "work"},
			want: map[string]ProcessType{
				"web":    {Cmd: []string{"/bin/sh", "-c", "serve --port 7000"}, Ports: []Port{{Target: 7000, Proto: "http"}}, Service: "app-web"},
				"worker": {Cmd: []string{"/bin/sh", "-c", "work"}},
			},
		},
		{
			name: "procfile without web", procfile: map[string]string{"worker": "work"},
			want: map[string]ProcessType{"worker": {Cmd: []string{"/bin/sh", "-c", "work"}}},
		},
		{name: "bad meta", exposed: `6379/tcp`, wantErr: "not a JSON list"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ImageProcesses("app", art(tt.exposed), tt.procfile, tt.tcp)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

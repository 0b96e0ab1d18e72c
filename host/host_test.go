package host

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"
	"time"
)

func TestValidate(t *testing.T) {
	ok := func() Job { return Job{ID: "h1-abc", Artifact: "img"} }
	tests := []struct {
		name      string
		mutate    func(*Job)
		wantField string
	}{
		{name: "ok", mutate: func(*Job) {}},
		{name: "empty id", mutate: func(j *Job) { j.ID = "" }, wantField: "id"},
		{name: "slash in id", mutate: func(j *Job) { j.ID = "a/b" }, wantField: "id"},
		{name: "no artifact", mutate: func(j *Job) { j.Artifact = " " }, wantField: "artifact"},
		{name: "bad env", mutate: func(j *Job) { j.Config.Env = map[string]string{"1X": "y"} }, wantField: "config.env"},
		{name: "port range", mutate: func(j *Job) { j.Config.Ports = []Port{{Port: 70000}} }, wantField: "config.ports[0].port"},
		{name: "port twice", mutate: func(j *Job) { j.Config.Ports = []Port{{Port: 80}, {Port: 80}} }, wantField: "config.ports[1].port"},
		{name: "bad proto", mutate: func(j *Job) { j.Config.Ports = []Port{{Proto: "udp"}} }, wantField: "config.ports[0].proto"},
		{name: "bad service", mutate: func(j *Job) { j.Config.Ports = []Port{{Service: "Web!"}} }, wantField: "config.ports[0].service"},
		{name: "service ending in a dash (discoverd refuses it)", mutate: func(j *Job) { j.Config.Ports = []Port{{Service: "web-"}} }, wantField: "config.ports[0].service"},
		{name: "NUL in env value", mutate: func(j *Job) { j.Config.Env = map[string]string{"A": "x\x00y"} }, wantField: "config.env"},
		{name: "check path with a control character", mutate: func(j *Job) { j.Config.Ports = []Port{{CheckPath: "/health\n"}} }, wantField: "config.ports[0].check_path"},
		{name: "check path with a broken escape", mutate: func(j *Job) { j.Config.Ports = []Port{{CheckPath: "/%zz"}} }, wantField: "config.ports[0].check_path"},
		{name: "check path with query", mutate: func(j *Job) { j.Config.Ports = []Port{{CheckPath: "/health?full=1"}} }},
		{name: "relative target", mutate: func(j *Job) { j.Config.Mounts = []Mount{{Source: "v", Target: "data"}} }, wantField: "config.mounts[0].target"},
		{name: "bad volume", mutate: func(j *Job) { j.Config.Mounts = []Mount{{Source: "../x", Target: "/d"}} }, wantField: "config.mounts[0].source"},
		{name: "relative bind", mutate: func(j *Job) {
			j.Config.HostNetwork = true
			j.Config.Mounts = []Mount{{Type: MountBind, Source: "x", Target: "/d"}}
		}, wantField: "config.mounts[0].source"},
		{name: "bind on host network", mutate: func(j *Job) {
			j.Config.HostNetwork = true
			j.Config.Mounts = []Mount{{Source: "/srv/x", Target: "/d"}}
		}},
		{name: "bind off host network", mutate: func(j *Job) { j.Config.Mounts = []Mount{{Source: "/srv/x", Target: "/d"}} }, wantField: "config.mounts[0].type"},
		{name: "volume off host network", mutate: func(j *Job) { j.Config.Mounts = []Mount{{Source: "data", Target: "/d"}} }},
		{name: "negative disk", mutate: func(j *Job) { j.Config.Resources.Disk = -1 }, wantField: "config.resources"},
		{name: "tiny memory", mutate: func(j *Job) { j.Config.Resources.Memory = 1024 }, wantField: "config.resources.memory"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			j := ok()
			tt.mutate(&j)
			err := j.Validate()
			var fe *FieldError
			switch {
			case tt.wantField == "" && err != nil:
				t.Fatalf("Validate() = %v, want nil", err)
			case tt.wantField != "" && (!errors.As(err, &fe) || fe.Field != tt.wantField):
				t.Fatalf("Validate() = %v, want an error on %s", err, tt.wantField)
			}
		})
	}
}

func TestDurationJSON(t *testing.T) {
	var c JobConfig
	if err := json.Unmarshal([]byte(`{"stop_grace":"1.5s"}`), &c); err != nil {
		t.Fatal(err)
	}
	if c.Grace() != 1500*time.Millisecond {
		t.Fatalf("Grace() = %v, want 1.5s", c.Grace())
	}
	b, _ := json.Marshal(c)
	if string(b) != `{"stop_grace":"1.5s"}` {
		t.Fatalf("marshal = %s", b)
	}
	if (&JobConfig{}).Grace() != DefaultStopGrace {
		t.Fatal("zero grace does not default")
	}
	if err := json.Unmarshal([]byte(`{"stop_grace":"soon"}`), &c); err == nil {
		t.Fatal("bad duration accepted")
	}
}

func TestFrames(t *testing.T) {
	var buf bytes.Buffer
	for _, f := range []Frame{
		{FrameStdout, []byte("out")},
		{FrameStdinEOF, nil},
		{FrameResize, ResizePayload(24, 80)},
		{FrameExit, ExitPayload(-1)},
	} {
		if err := WriteFrame(&buf, f.Type, f.Payload); err != nil {
			t.Fatal(err)
		}
	}
	f, _ := ReadFrame(&buf)
	if f.Type != FrameStdout || string(f.Payload) != "out" {
		t.Fatalf("frame 1 = %+v", f)
	}
	if f, _ = ReadFrame(&buf); f.Type != FrameStdinEOF || len(f.Payload) != 0 {
		t.Fatalf("frame 2 = %+v", f)
	}
	f, _ = ReadFrame(&buf)
	if h, w, err := ParseResize(f.Payload); err != nil || h != 24 || w != 80 {
		t.Fatalf("resize = %d x %d, %v", h, w, err)
	}
	f, _ = ReadFrame(&buf)
	if s, err := ParseExit(f.Payload); err != nil || s != -1 {
		t.Fatalf("exit = %d, %v", s, err)
	}
	if _, err := ReadFrame(bytes.NewReader([]byte{1, 0xff, 0xff, 0xff, 0xff})); err == nil {
		t.Fatal("oversized frame accepted")
	}
}

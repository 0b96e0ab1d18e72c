package hostjob

import (
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/openflynn/flynn/controller"
	"github.com/openflynn/flynn/host"
)

var (
	testRelease = &controller.Release{
		ID: "r1", AppID: "a1", Version: 3, Env: map[string]string{"A": "release", "B": "release"},
		Processes: map[string]controller.ProcessType{
			"web": {Cmd: []string{"start", "web"}, Env: map[string]string{"B": "type"}},
			"db": {
				Cmd: []string{"postgres"}, Ports: []controller.Port{{Port: 1115, Proto: "tcp"}, {Proto: "http", CheckPath: "/health"}, {Proto: "http", Service: "pg-metrics"}}, Service: "pg",
				Volumes:    []controller.Volume{{Name: "pg-data", Target: "/data"}},
				Resources:  &controller.Resources{Memory: 256 << 20, CPU: 500, MaxProcs: 100},
				Persistent: true,
			},
			// A system app's component: on the host's network, limited only
			// as it says.
			"router": {Cmd: []string{"router"}, HostNetwork: true, Resources: &controller.Resources{CPU: 1000}},
			// Memory set, pids not: the default fills in only what is unset.
			"worker": {Cmd: []string{"work"}, Resources: &controller.Resources{Memory: 2 << 30, Disk: 5 << 30}},
		},
	}
	testArtifact = &controller.Artifact{URI: "flynn/slugrunner:abc"}
)

// oneOff is a one-off run of testRelease's db type: it takes the type's
// resources but none of its service settings.
func oneOff(mod func(*OneOff)) OneOff {
	o := OneOff{
		App:      App{ID: "a1", Name: "example", ReleaseID: "r1", ReleaseVersion: 3},
		Type:     "db",
		Process:  testRelease.Processes["db"],
		Artifact: testArtifact,
		Args:     []string{"pg_dump"},
		Env:      map[string]string{"A": "request"},
		Meta:     map[string]string{"flynn.build.commit": "abc", controller.JobMetaType: "db"},
		TTY:      true,
	}
	if mod != nil {
		mod(&o)
	}
	return o
}

func TestJobs(t *testing.T) {
	tests := []struct {
		name       string
		job        *host.Job
		entrypoint []string // nil: the image's
		args       []string
		env        map[string]string // a subset of the job's env
		meta       map[string]string // the job's whole metadata
		ports      []host.Port
		mounts     []host.Mount
		res        host.Resources
		persistent bool
		tty        bool
		hostNet    bool
	}{
		{
			name: "web process: one http port in <app>-web",
			job:  ForProcess("h1", "example", testRelease, testArtifact, "web"),
			args: []string{"start", "web"},
			env:  map[string]string{"A": "release", "B": "type", "FLYNN_APP_NAME": "example", "FLYNN_PROCESS_TYPE": "web"},
			meta: map[string]string{controller.JobMetaAppID: "a1", controller.JobMetaAppName: "example", controller.JobMetaReleaseID: "r1",
				controller.JobMetaType: "web", MetaReleaseVersion: "3"},
			ports: []host.Port{{Proto: "http", Service: "example-web"}},
			res:   host.Resources{Memory: DefaultMemory, Pids: DefaultPids},
		},
		{
			name: "db process: its ports (the first in its service, a later one in its own), volume, resources and persistence",
			job:  ForProcess("h1", "example", testRelease, testArtifact, "db"),
			args: []string{"postgres"},
			env:  map[string]string{"A": "release", "B": "release", "FLYNN_PROCESS_TYPE": "db"},
			meta: map[string]string{controller.JobMetaAppID: "a1", controller.JobMetaAppName: "example", controller.JobMetaReleaseID: "r1",
				controller.JobMetaType: "db", MetaReleaseVersion: "3"},
			ports:      []host.Port{{Port: 1115, Proto: "tcp", Service: "pg"}, {Proto: "http", CheckPath: "/health"}, {Proto: "http", Service: "pg-metrics"}},
			mounts:     []host.Mount{{Type: host.MountVolume, Source: "pg-data", Target: "/data"}},
			res:        host.Resources{Memory: 256 << 20, CPUShares: 512, Pids: 100},
			persistent: true,
		},
		{
			name: "one-off of the db type: its resources, no ports, volumes, persistence or process type",
			job:  ForOneOff("h1", oneOff(nil)),
			args: []string{"pg_dump"},
			env:  map[string]string{"A": "request", "FLYNN_APP_NAME": "example", "FLYNN_PROCESS_TYPE": "db"},
			meta: map[string]string{controller.JobMetaAppID: "a1", controller.JobMetaAppName: "example", controller.JobMetaReleaseID: "r1",
				MetaReleaseVersion: "3", "flynn.build.commit": "abc"},
			res: host.Resources{Memory: 256 << 20, CPUShares: 512, Pids: 100},
			tty: true,
		},
		{
			name: "plain one-off command, app name and version unknown",
			job: ForOneOff("h1", oneOff(func(o *OneOff) {
				o.App.Name, o.App.ReleaseVersion, o.Type, o.Process, o.Meta, o.TTY = "", 0, "", controller.ProcessType{}, nil, false
			})),
			args: []string{"pg_dump"},
			env:  map[string]string{"A": "request", "FLYNN_APP_NAME": "", "FLYNN_PROCESS_TYPE": ""},
			meta: map[string]string{controller.JobMetaAppID: "a1", controller.JobMetaReleaseID: "r1"},
			res:  host.Resources{Memory: DefaultMemory, Pids: DefaultPids},
		},
		{
			name: "plain one-off with an entrypoint: the entrypoint, its args and the app's network",
			job: ForOneOff("h1", oneOff(func(o *OneOff) {
				o.Type, o.Process, o.Meta, o.TTY = "", controller.ProcessType{}, nil, false
				o.Entrypoint, o.Args = []string{"pg_dump"}, []string{"--format=custom", "--no-owner"}
			})),
			entrypoint: []string{"pg_dump"},
			args:       []string{"--format=custom", "--no-owner"},
			env:        map[string]string{"A": "request", "FLYNN_PROCESS_TYPE": ""},
			meta:       map[string]string{controller.JobMetaAppID: "a1", controller.JobMetaAppName: "example", controller.JobMetaReleaseID: "r1", MetaReleaseVersion: "3"},
			res:        host.Resources{Memory: DefaultMemory, Pids: DefaultPids},
		},
		{
			name: "host-network process: on the host's network, no default limits",
			job:  ForProcess("h1", "router", testRelease, testArtifact, "router"),
			args: []string{"router"},
			env:  map[string]string{"FLYNN_PROCESS_TYPE": "router"},
			meta: map[string]string{controller.JobMetaAppID: "a1", controller.JobMetaAppName: "router", controller.JobMetaReleaseID: "r1",
				controller.JobMetaType: "router", MetaReleaseVersion: "3"},
			res:     host.Resources{CPUShares: 1024},
			hostNet: true,
		},
		{
			name: "one-off of a host-network type: on the host's network too",
			job: ForOneOff("h1", oneOff(func(o *OneOff) {
				o.Type, o.Process, o.Meta, o.TTY = "router", testRelease.Processes["router"], nil, false
			})),
			args:    []string{"pg_dump"},
			env:     map[string]string{"FLYNN_PROCESS_TYPE": "router"},
			meta:    map[string]string{controller.JobMetaAppID: "a1", controller.JobMetaAppName: "example", controller.JobMetaReleaseID: "r1", MetaReleaseVersion: "3"},
			res:     host.Resources{CPUShares: 1024},
			hostNet: true,
		},
		{
			name: "process with a memory limit: the pids default, its memory and disk",
			job:  ForProcess("h1", "example", testRelease, testArtifact, "worker"),
			args: []string{"work"},
			env:  map[string]string{"FLYNN_PROCESS_TYPE": "worker"},
			meta: map[string]string{controller.JobMetaAppID: "a1", controller.JobMetaAppName: "example", controller.JobMetaReleaseID: "r1",
				controller.JobMetaType: "worker", MetaReleaseVersion: "3"},
			res: host.Resources{Memory: 2 << 30, Pids: DefaultPids, Disk: 5 << 30},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			j := tt.job
			if !strings.HasPrefix(j.ID, "h1-") || len(j.ID) != len("h1-")+36 {
				t.Errorf("id = %q, want h1-<uuid>", j.ID)
			}
			if j.Artifact != testArtifact.URI {
				t.Errorf("artifact = %q, want %q", j.Artifact, testArtifact.URI)
			}
			if !slices.Equal(j.Config.Entrypoint, tt.entrypoint) {
				t.Errorf("entrypoint = %v, want %v", j.Config.Entrypoint, tt.entrypoint)
			}
			if !slices.Equal(j.Config.Args, tt.args) {
				t.Errorf("args = %v, want %v", j.Config.Args, tt.args)
			}
			want := map[string]string{"FLYNN_APP_ID": "a1", "FLYNN_RELEASE_ID": "r1", "FLYNN_JOB_ID": j.ID}
			maps.Copy(want, tt.env)
			for k, v := range want {
				if got, ok := j.Config.Env[k]; !ok || got != v {
					t.Errorf("env[%s] = %q (set %v), want %q", k, got, ok, v)
				}
			}
			if !maps.Equal(j.Metadata, tt.meta) {
				t.Errorf("metadata = %v, want %v", j.Metadata, tt.meta)
			}
			if !slices.Equal(j.Config.Ports, tt.ports) {
				t.Errorf("ports = %+v, want %+v", j.Config.Ports, tt.ports)
			}
			if !slices.Equal(j.Config.Mounts, tt.mounts) {
				t.Errorf("mounts = %+v, want %+v", j.Config.Mounts, tt.mounts)
			}
			if j.Config.Resources != tt.res {
				t.Errorf("resources = %+v, want %+v", j.Config.Resources, tt.res)
			}
			if j.Config.Persistent != tt.persistent || j.Config.TTY != tt.tty {
				t.Errorf("persistent, tty = %v, %v; want %v, %v", j.Config.Persistent, j.Config.TTY, tt.persistent, tt.tty)
			}
			if j.Config.HostNetwork != tt.hostNet {
				t.Errorf("host network = %v, want %v", j.Config.HostNetwork, tt.hostNet)
			}
			if err := j.Validate(); err != nil {
				t.Errorf("job does not validate: %v", err)
			}
		})
	}
}

// The two kinds cannot drift: with the same app known, they carry the same
// FLYNN_* variables and the same metadata keys but the process type.
func TestKindsShareKeys(t *testing.T) {
	proc := ForProcess("h1", "example", testRelease, testArtifact, "db")
	run := ForOneOff("h1", oneOff(func(o *OneOff) { o.Meta = nil }))
	flynnEnv := func(j *host.Job) []string {
		var keys []string
		for k := range j.Config.Env {
			if strings.HasPrefix(k, "FLYNN_") {
				keys = append(keys, k)
			}
		}
		slices.Sort(keys)
		return keys
	}
	if p, o := flynnEnv(proc), flynnEnv(run); !slices.Equal(p, o) {
		t.Errorf("FLYNN_* env: process %v, one-off %v", p, o)
	}
	procMeta := slices.Sorted(maps.Keys(proc.Metadata))
	procMeta = slices.DeleteFunc(procMeta, func(k string) bool { return k == controller.JobMetaType })
	if o := slices.Sorted(maps.Keys(run.Metadata)); !slices.Equal(procMeta, o) {
		t.Errorf("metadata keys: process %v (without the type), one-off %v", procMeta, o)
	}
}

func TestOwnerOf(t *testing.T) {
	tests := []struct {
		name   string
		job    *host.Job
		want   Owner
		ok     bool
		oneOff bool
	}{
		{"process", ForProcess("h1", "example", testRelease, testArtifact, "web"), Owner{AppID: "a1", ReleaseID: "r1", Type: "web"}, true, false},
		{"one-off", ForOneOff("h1", oneOff(nil)), Owner{AppID: "a1", ReleaseID: "r1"}, true, true},
		{"no app (a component job)", &host.Job{ID: "h1-x", Metadata: map[string]string{"flynn.component": "discoverd"}}, Owner{}, false, false},
		{"no release", &host.Job{ID: "h1-x", Metadata: map[string]string{controller.JobMetaAppID: "a1", controller.JobMetaType: "web"}}, Owner{}, false, false},
		{"no job", nil, Owner{}, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := OwnerOf(tt.job)
			if got != tt.want || ok != tt.ok {
				t.Fatalf("OwnerOf = %+v, %v; want %+v, %v", got, ok, tt.want, tt.ok)
			}
			if ok && got.OneOff() != tt.oneOff {
				t.Errorf("OneOff() = %v, want %v", got.OneOff(), tt.oneOff)
			}
		})
	}
}

func TestResources(t *testing.T) {
	tests := []struct {
		name string
		in   *controller.Resources
		want host.Resources
	}{
		{"none", nil, host.Resources{}},
		{"one core", &controller.Resources{CPU: 1000}, host.Resources{CPUShares: 1024}},
		{"half a core, memory, pids", &controller.Resources{CPU: 500, Memory: 64 << 20, MaxProcs: 10}, host.Resources{CPUShares: 512, Memory: 64 << 20, Pids: 10}},
		{"disk", &controller.Resources{Disk: 1 << 30}, host.Resources{Disk: 1 << 30}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Resources(tt.in); got != tt.want {
				t.Errorf("Resources(%+v) = %+v, want %+v", tt.in, got, tt.want)
			}
		})
	}
}

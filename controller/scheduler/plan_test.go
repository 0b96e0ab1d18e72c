package scheduler

import (
	"fmt"
	"slices"
	"testing"

	"github.com/openflynn/flynn/host"
)

var (
	web    = Key{AppID: "app", ReleaseID: "r1", Type: "web"}
	worker = Key{AppID: "app", ReleaseID: "r1", Type: "worker"}
	oldWeb = Key{AppID: "app", ReleaseID: "r0", Type: "web"}
)

// hostsWith builds hosts from "hostID:key-type:state" style specs.
func hostsWith(ids ...string) []*Host {
	var hs []*Host
	for _, id := range ids {
		hs = append(hs, &Host{ID: id})
	}
	return hs
}

func addJob(h *Host, k Key, state host.JobState) *Job {
	j := &Job{ID: fmt.Sprintf("%s-%d", h.ID, len(h.Jobs)), HostID: h.ID, Key: k, State: state}
	h.Jobs = append(h.Jobs, j)
	return j
}

func startHosts(p *Plan) []string {
	var ids []string
	for _, s := range p.Starts {
		ids = append(ids, s.HostID)
	}
	return ids
}

func TestComputeScaleUpSpreads(t *testing.T) {
	hs := hostsWith("h1", "h2", "h3")
	addJob(hs[0], web, host.StateUp)
	addJob(hs[1], worker, host.StateUp) // h2 is busier overall
	p := Compute(&Snapshot{Hosts: hs, Wants: []Want{{Key: web, Count: 4}, {Key: worker, Count: 1}}})
	// h2 and h3 have no web job; h3 is less loaded, so it goes first.
	if got, want := startHosts(p), []string{"h3", "h2", "h1"}; !slices.Equal(got, want) {
		t.Errorf("starts on %v, want %v", got, want)
	}
	if len(p.Stops) != 0 {
		t.Errorf("stops = %v, want none", p.Stops)
	}
}

func TestComputeScaleDown(t *testing.T) {
	hs := hostsWith("h1", "h2")
	addJob(hs[0], web, host.StateUp)
	addJob(hs[0], web, host.StateUp)
	starting := addJob(hs[0], web, host.StateStarting)
	addJob(hs[1], web, host.StateUp)
	p := Compute(&Snapshot{Hosts: hs, Wants: []Want{{Key: web, Count: 2}}})
	if len(p.Starts) != 0 || len(p.Stops) != 2 {
		t.Fatalf("plan = %d starts, %d stops; want 0, 2", len(p.Starts), len(p.Stops))
	}
	if p.Stops[0].Job != starting {
		t.Errorf("first stop = %s, want the job not up yet (%s)", p.Stops[0].Job.ID, starting.ID)
	}
	if p.Stops[1].Job.HostID != "h1" {
		t.Errorf("second stop on %s, want h1 (most web jobs)", p.Stops[1].Job.HostID)
	}
}

func TestComputeIgnoresEndedAndReplacesCrashed(t *testing.T) {
	hs := hostsWith("h1")
	addJob(hs[0], web, host.StateCrashed)
	addJob(hs[0], web, host.StateDown)
	addJob(hs[0], web, host.StateUp)
	p := Compute(&Snapshot{Hosts: hs, Wants: []Want{{Key: web, Count: 2}}})
	if len(p.Starts) != 1 || len(p.Stops) != 0 {
		t.Fatalf("plan = %+v; want one start", p)
	}
}

func TestComputeHeldKeysDoNotStart(t *testing.T) {
	hs := hostsWith("h1")
	p := Compute(&Snapshot{Hosts: hs, Wants: []Want{{Key: web, Count: 2}}, Held: map[Key]bool{web: true}})
	if !p.Empty() {
		t.Fatalf("plan = %+v; a held key must not start jobs", p)
	}
}

func TestComputeKeepsWhatAHeldKeyReplaces(t *testing.T) {
	next := Key{AppID: web.AppID, ReleaseID: "r2", Type: web.Type}
	other := Key{AppID: web.AppID, ReleaseID: "r2", Type: "worker"}
	for _, tc := range []struct {
		name      string
		want      Want
		held      map[Key]bool
		wantStops int
		wantStart int
	}{
		{"replacement held: the old job stays", Want{Key: next, Count: 1, Omni: true}, map[Key]bool{next: true}, 0, 0},
		{"replacement free: stop and start in one round", Want{Key: next, Count: 1, Omni: true}, nil, 1, 1},
		{"another type held: the old job goes", Want{Key: other, Count: 1}, map[Key]bool{other: true}, 1, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hs := hostsWith("h1")
			addJob(hs[0], web, host.StateUp)
			p := Compute(&Snapshot{Hosts: hs, Wants: []Want{tc.want}, Held: tc.held})
			if len(p.Stops) != tc.wantStops || len(p.Starts) != tc.wantStart {
				t.Fatalf("plan = %d stops, %d starts; want %d, %d", len(p.Stops), len(p.Starts), tc.wantStops, tc.wantStart)
			}
		})
	}
}

func TestComputeOmni(t *testing.T) {
	hs := hostsWith("h1", "h2", "h3")
	addJob(hs[0], web, host.StateUp)
	addJob(hs[1], web, host.StateUp)
	addJob(hs[1], web, host.StateUp)
	p := Compute(&Snapshot{Hosts: hs, Wants: []Want{{Key: web, Count: 1, Omni: true}}})
	if got := startHosts(p); !slices.Equal(got, []string{"h3"}) {
		t.Errorf("omni starts on %v, want [h3]", got)
	}
	if len(p.Stops) != 1 || p.Stops[0].Job.HostID != "h2" {
		t.Errorf("omni stops = %+v, want one on h2", p.Stops)
	}
}

func TestComputeStopsUnwanted(t *testing.T) {
	hs := hostsWith("h1")
	old := addJob(hs[0], oldWeb, host.StateUp)
	addJob(hs[0], web, host.StateUp)
	p := Compute(&Snapshot{Hosts: hs, Wants: []Want{{Key: web, Count: 1}}})
	if len(p.Starts) != 0 || len(p.Stops) != 1 || p.Stops[0].Job != old {
		t.Fatalf("plan = %+v; want the old release's job stopped", p)
	}
}

func TestComputeNoHosts(t *testing.T) {
	p := Compute(&Snapshot{Wants: []Want{{Key: web, Count: 3}}})
	if !p.Empty() {
		t.Fatalf("plan = %+v with no hosts; want nothing", p)
	}
}

func TestComputeIsStable(t *testing.T) {
	hs := hostsWith("h2", "h1", "h3")
	s := &Snapshot{Hosts: hs, Wants: []Want{{Key: worker, Count: 2}, {Key: web, Count: 5}}}
	first := startHosts(Compute(s))
	for i := 0; i < 20; i++ {
		if got := startHosts(Compute(s)); !slices.Equal(got, first) {
			t.Fatalf("round %d: %v, first %v", i, got, first)
		}
	}
}

// Hosts that are not Current: their jobs count, they get no starts or
// stops, and a Blind host holds every non-omni start.
func TestComputeUnknownHosts(t *testing.T) {
	type job struct {
		host  int
		key   Key
		state host.JobState
	}
	tests := []struct {
		name      string
		knowledge []Knowledge // of h1, h2, …
		jobs      []job
		wants     []Want
		starts    []string // host ids
		stops     []string // host ids
	}{
		{"a stale host's jobs count", []Knowledge{Current, Stale}, []job{{0, web, host.StateUp}, {1, web, host.StateUp}},
			[]Want{{Key: web, Count: 2}}, nil, nil},
		{"a stale host gets no starts", []Knowledge{Current, Stale}, []job{{0, web, host.StateUp}, {1, web, host.StateUp}},
			[]Want{{Key: web, Count: 4}}, []string{"h1", "h1"}, nil},
		{"keys without jobs there are planned", []Knowledge{Current, Stale}, []job{{1, web, host.StateUp}},
			[]Want{{Key: web, Count: 1}, {Key: worker, Count: 1}}, []string{"h1"}, nil},
		{"no scale-down that leaves the key on the stale host", []Knowledge{Current, Stale}, []job{{0, web, host.StateUp}, {1, web, host.StateUp}},
			[]Want{{Key: web, Count: 1}}, nil, nil},
		{"scale-down on current hosts down to the count", []Knowledge{Current, Stale}, []job{{0, web, host.StateUp}, {0, web, host.StateUp}, {0, web, host.StateUp}, {1, web, host.StateUp}},
			[]Want{{Key: web, Count: 1}}, nil, []string{"h1", "h1"}},
		{"unwanted jobs stop on current hosts only", []Knowledge{Current, Stale}, []job{{0, oldWeb, host.StateUp}, {1, oldWeb, host.StateUp}},
			nil, nil, []string{"h1"}},
		{"a blind host holds non-omni starts", []Knowledge{Current, Blind}, nil,
			[]Want{{Key: web, Count: 1}}, nil, nil},
		{"a blind host does not hold omni starts elsewhere", []Knowledge{Current, Blind}, nil,
			[]Want{{Key: web, Count: 1, Omni: true}}, []string{"h1"}, nil},
		{"a blind host does not hold stops", []Knowledge{Current, Blind}, []job{{0, web, host.StateUp}, {0, web, host.StateUp}},
			[]Want{{Key: web, Count: 1}}, nil, []string{"h1"}},
		{"omni skips stale hosts", []Knowledge{Current, Stale}, nil,
			[]Want{{Key: web, Count: 1, Omni: true}}, []string{"h1"}, nil},
		{"no current host, no plan", []Knowledge{Stale}, nil,
			[]Want{{Key: web, Count: 1}}, nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var hs []*Host
			for i, k := range tt.knowledge {
				hs = append(hs, &Host{ID: fmt.Sprintf("h%d", i+1), Knowledge: k})
			}
			for _, j := range tt.jobs {
				addJob(hs[j.host], j.key, j.state)
			}
			p := Compute(&Snapshot{Hosts: hs, Wants: tt.wants})
			if got := startHosts(p); !slices.Equal(got, tt.starts) {
				t.Errorf("starts on %v, want %v", got, tt.starts)
			}
			var stops []string
			for _, st := range p.Stops {
				stops = append(stops, st.Job.HostID)
			}
			if !slices.Equal(stops, tt.stops) {
				t.Errorf("stops on %v, want %v", stops, tt.stops)
			}
		})
	}
}

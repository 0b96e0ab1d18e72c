package scheduler

import (
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/openflynn/flynn/controller"
	"github.com/openflynn/flynn/controller/hostjob"
	"github.com/openflynn/flynn/host"
	"github.com/openflynn/flynn/pkg/poll"
)

// activeJob is a fixture: job id in state st.
func activeJob(id string, st host.JobState) *host.ActiveJob {
	return &host.ActiveJob{Job: &host.Job{ID: id}, State: st}
}

// The view merges a host's list and its events by each job's state rank,
// so that an event older than the list (sent between the stream's opening
// and the list) never moves a job back.
func TestViewMerge(t *testing.T) {
	type step struct {
		list  []*host.ActiveJob // a (re)list: replaces the host's jobs
		event *host.ActiveJob   // else an event or a host's answer
	}
	tests := []struct {
		name  string
		steps []step
		want  map[string]host.JobState
	}{
		{"an event older than the list is ignored",
			[]step{{list: []*host.ActiveJob{activeJob("j1", host.StateUp)}}, {event: activeJob("j1", host.StateStarting)}},
			map[string]host.JobState{"j1": host.StateUp}},
		{"a newer event applies",
			[]step{{list: []*host.ActiveJob{activeJob("j1", host.StateStarting)}}, {event: activeJob("j1", host.StateUp)}},
			map[string]host.JobState{"j1": host.StateUp}},
		{"an ended job stays ended",
			[]step{{event: activeJob("j1", host.StateCrashed)}, {event: activeJob("j1", host.StateUp)}},
			map[string]host.JobState{"j1": host.StateCrashed}},
		{"a job first seen in an event is added",
			[]step{{list: nil}, {event: activeJob("j2", host.StateStarting)}},
			map[string]host.JobState{"j2": host.StateStarting}},
		{"a relist drops what the host no longer has and takes what it missed",
			[]step{{list: []*host.ActiveJob{activeJob("j1", host.StateUp), activeJob("j2", host.StateUp)}},
				{list: []*host.ActiveJob{activeJob("j2", host.StateCrashed), activeJob("j3", host.StateUp)}}},
			map[string]host.JobState{"j2": host.StateCrashed, "j3": host.StateUp}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := New(Config{}, nil, nil, slog.New(slog.DiscardHandler))
			v := &hostView{id: "h1", knowledge: Blind, jobs: map[string]*viewJob{}}
			for _, st := range tt.steps {
				if st.event != nil {
					s.mergeJob(v, st.event, time.Now())
				} else {
					s.resetJobs(v, st.list, time.Now())
				}
			}
			got := map[string]host.JobState{}
			for id, vj := range v.jobs {
				got[id] = vj.aj.State
			}
			if len(got) != len(tt.want) {
				t.Fatalf("view = %v, want %v", got, tt.want)
			}
			for id, st := range tt.want {
				if got[id] != st {
					t.Errorf("view = %v, want %v", got, tt.want)
				}
			}
		})
	}
}

// The host forgets old finished jobs without an event; the view forgets
// them by itself once their end is reported and finishedRetention passed.
func TestSnapshotForgetsOldFinishedJobs(t *testing.T) {
	s := New(Config{}, nil, nil, slog.New(slog.DiscardHandler))
	now := time.Now()
	v := &hostView{id: "h1", jobs: map[string]*viewJob{
		"old-reported":   {aj: activeJob("old-reported", host.StateCrashed), ended: now.Add(-2 * finishedRetention)},
		"old-unreported": {aj: activeJob("old-unreported", host.StateCrashed), ended: now.Add(-2 * finishedRetention)},
		"recent":         {aj: activeJob("recent", host.StateDown), ended: now},
		"up":             {aj: activeJob("up", host.StateUp)},
	}}
	s.views["h1"] = v
	s.reported["old-reported"] = host.StateCrashed
	s.reported["old-unreported"] = host.StateUp // its end never reached the controller
	s.reported["recent"] = host.StateDown
	var ids []string
	for _, aj := range s.snapshot(now)[0].jobs {
		ids = append(ids, aj.Job.ID)
	}
	if want := []string{"old-unreported", "recent", "up"}; len(ids) != 3 || ids[0] != want[0] || ids[1] != want[1] || ids[2] != want[2] {
		t.Errorf("snapshot jobs = %v, want %v", ids, want)
	}
}

// A stream that drops loses the events sent while it is down; the relist
// on reconnecting picks them up, and nothing is started twice.
func TestStreamDropAndReconnect(t *testing.T) {
	h := newHarness(t)
	cluster := newFakeCluster("h1", "h2")
	r := h.run(cluster)
	h.scale(h.rel, map[string]int{"web": 2})
	poll.Until(t, 5*time.Second, "web=2", func() bool { return cluster.live()[key(h.rel, "web")] == 2 })
	h2 := cluster.host("h2")
	adds := cluster.host("h1").addCount() + h2.addCount()
	lists := h2.listCount()

	h2.setRefuse(errors.New("connection refused"))
	h2.drop()
	poll.Until(t, 5*time.Second, "h2 stale", func() bool { return r.knowledge()["h2"] == Stale })
	killed := h2.kill() // no stream hears of it
	r.rounds(5)
	if got := cluster.host("h1").addCount() + h2.addCount(); got != adds {
		t.Fatalf("%d jobs started while h2 was stale; its last known job still counts", got-adds)
	}

	h2.setRefuse(nil)
	poll.Until(t, 5*time.Second, "the crash found by the relist is replaced", func() bool { return cluster.live()[key(h.rel, "web")] == 2 })
	if h2.listCount() <= lists {
		t.Errorf("h2 listed %d times, want a relist after reconnecting", h2.listCount())
	}
	r.rounds(5)
	if got := cluster.host("h1").addCount() + h2.addCount(); got != adds+1 {
		t.Errorf("%d jobs started after the reconnect, want 1 (the replacement of %s)", got-adds, killed)
	}
	poll.Until(t, 5*time.Second, "the crash reported", func() bool {
		j, err := h.ctrl.Job(t.Context(), h.app.ID, killed)
		return err == nil && j.State == controller.JobStateCrashed
	})
}

// A change right after the list (before the follower reads its stream)
// arrives as an event: the stream opens before the list is taken.
func TestChangeBetweenListAndEventsIsSeen(t *testing.T) {
	h := newHarness(t)
	cluster := newFakeCluster("h1")
	h1 := cluster.host("h1")
	// A web job a previous scheduler started.
	if _, err := h1.AddJob(t.Context(), hostjob.ForProcess("h1", h.app.Name, h.rel, h.art, "web")); err != nil {
		t.Fatal(err)
	}
	h.scale(h.rel, map[string]int{"web": 1})
	killed := make(chan string, 1)
	h1.setAfterList(func() {
		h1.setAfterList(nil)
		killed <- h1.kill()
	})
	r := h.run(cluster)
	select {
	case id := <-killed:
		t.Logf("killed %s after the list", id)
	case <-time.After(5 * time.Second):
		t.Fatal("the scheduler did not list h1")
	}
	poll.Until(t, 5*time.Second, "the job killed after the list is replaced", func() bool {
		return h1.live()[key(h.rel, "web")] == 1 && h1.addCount() == 2
	})
	r.rounds(5)
	if n := h1.addCount(); n != 2 {
		t.Errorf("host got %d jobs, want 2 (the first and one replacement)", n)
	}
}

// A host that stops answering (its stream silent but open, its calls
// hanging) holds up neither the other hosts' starts in the same round nor
// later rounds; once it overruns HostTimeout it is Stale, and its jobs are
// not duplicated elsewhere. The silent host is h1, the one a round would
// act on first if it acted on hosts in turn.
func TestSilentHostDoesNotHoldUpOthers(t *testing.T) {
	h := newHarness(t)
	cluster := newFakeCluster("h1", "h2")
	cfg := testConfig()
	cfg.HostTimeout = time.Second
	r := h.runWith(cfg, cluster)
	h.scale(h.rel, map[string]int{"web": 2})
	poll.Until(t, 5*time.Second, "web=2", func() bool { return cluster.live()[key(h.rel, "web")] == 2 })
	h1, h2 := cluster.host("h1"), cluster.host("h2")
	h1.hang()

	// The round places one worker on each host: h2's starts at once,
	// while h1's call waits out its timeout.
	h.scale(h.rel, map[string]int{"web": 2, "worker": 2})
	poll.Until(t, cfg.HostTimeout/2, "h2's worker started during h1's wait", func() bool { return h2.live()[key(h.rel, "worker")] >= 1 })
	poll.Until(t, 5*time.Second, "h1 stale after overrunning its timeout", func() bool { return r.knowledge()["h1"] != Current })
	poll.Until(t, 5*time.Second, "both workers on h2", func() bool { return h2.live()[key(h.rel, "worker")] == 2 })
	r.rounds(5)
	if n := h2.live()[key(h.rel, "web")]; n != 1 {
		t.Errorf("h2 runs %d web jobs, want 1: h1's last known web job still counts", n)
	}
	if n := h1.addCount(); n != 1 {
		t.Errorf("h1 got %d jobs, want only its first web job: a host that overran is left alone", n)
	}

	h1.unhang()
	poll.Until(t, 5*time.Second, "h1 current again", func() bool { return r.knowledge()["h1"] == Current })
	r.rounds(5)
	if l := cluster.live(); l[key(h.rel, "web")] != 2 || l[key(h.rel, "worker")] != 2 {
		t.Errorf("live = %v, want web=2 worker=2", l)
	}
}

// While a host is stale, keys keep being planned: a scale-up starts jobs
// on the other hosts, counting the stale host's jobs; a scale-down stops
// only while the current hosts alone keep the count. Once the host is back
// the surplus goes.
func TestStaleHostJobsCountButAreNotActedOn(t *testing.T) {
	h := newHarness(t)
	cluster := newFakeCluster("h1", "h2", "h3")
	r := h.run(cluster)
	h.scale(h.rel, map[string]int{"web": 3})
	poll.Until(t, 5*time.Second, "web=3", func() bool { return cluster.live()[key(h.rel, "web")] == 3 })
	h2 := cluster.host("h2")
	h2.setRefuse(errors.New("connection refused"))
	h2.drop()
	poll.Until(t, 5*time.Second, "h2 stale", func() bool { return r.knowledge()["h2"] == Stale })
	r.rounds(3)
	onOthers := func() int {
		return cluster.host("h1").live()[key(h.rel, "web")] + cluster.host("h3").live()[key(h.rel, "web")]
	}
	if n := onOthers(); n != 2 {
		t.Fatalf("h1 and h3 run %d web jobs, want 2: h2's job must not be duplicated", n)
	}

	h.scale(h.rel, map[string]int{"web": 4})
	poll.Until(t, 5*time.Second, "scale-up goes on without h2", func() bool { return onOthers() == 3 })
	h.scale(h.rel, map[string]int{"web": 2})
	poll.Until(t, 5*time.Second, "scale-down keeps 2 on the current hosts", func() bool { return onOthers() == 2 })
	r.rounds(3)
	if n := onOthers(); n != 2 {
		t.Errorf("h1 and h3 run %d web jobs, want 2 while h2 is stale", n)
	}
	if n := h2.live()[key(h.rel, "web")]; n != 1 {
		t.Errorf("h2 runs %d web jobs, want its 1 untouched", n)
	}

	h2.setRefuse(nil)
	poll.Until(t, 5*time.Second, "web=2 once h2 is back", func() bool { return cluster.live()[key(h.rel, "web")] == 2 })
}

// A host the scheduler has never listed may run anything: until it has
// been listed (or leaves), only omni jobs start.
func TestBlindHostHoldsStarts(t *testing.T) {
	h := newHarness(t)
	cluster := newFakeCluster("h1", "h2")
	h2 := cluster.host("h2")
	h2.hang()
	h.scale(h.rel, map[string]int{"web": 2, "agent": 1})
	r := h.run(cluster)
	poll.Until(t, 5*time.Second, "agent on h1", func() bool { return cluster.host("h1").live()[key(h.rel, "agent")] == 1 })
	r.rounds(5)
	if n := cluster.live()[key(h.rel, "web")]; n != 0 {
		t.Fatalf("%d web jobs started while h2 was never listed; want none", n)
	}
	if k := r.knowledge()["h2"]; k != Blind {
		t.Errorf("h2 is %v, want Blind", k)
	}
	h2.unhang()
	poll.Until(t, 5*time.Second, "web=2 and agents everywhere once h2 is listed", func() bool {
		l := cluster.live()
		return l[key(h.rel, "web")] == 2 && l[key(h.rel, "agent")] == 2
	})
}

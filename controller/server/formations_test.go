package server

import (
	"encoding/json"
	"fmt"
	"sync"
	"testing"

	"github.com/openflynn/flynn/controller"
	"github.com/openflynn/flynn/pkg/httpjson"
)

func TestFormations(t *testing.T) {
	h := newHarness(t)
	ctx := t.Context()
	c := h.client
	app, other := h.app(t, "form"), h.app(t, "other")
	rel, otherRel := h.release(t, app, nil), h.release(t, other, nil)

	f := &controller.Formation{AppID: app.Name, ReleaseID: rel.ID, Processes: map[string]int{"web": 2, "worker": 1}}
	if err := c.PutFormation(ctx, f); err != nil {
		t.Fatal(err)
	}
	if f.AppID != app.ID || f.Processes["web"] != 2 {
		t.Fatalf("PutFormation = %+v", f)
	}
	f.Processes = map[string]int{"web": 0, "worker": 3}
	if err := c.PutFormation(ctx, f); err != nil {
		t.Fatal(err)
	}
	got, err := c.Formation(ctx, app.ID, rel.ID)
	if err != nil || got.Processes["web"] != 0 || got.Processes["worker"] != 3 {
		t.Fatalf("Formation = %+v, %v; want web=0 worker=3", got, err)
	}
	if list, err := c.Formations(ctx, app.Name); err != nil || len(list) != 1 {
		t.Fatalf("Formations = %v, %v; want 1", list, err)
	}
	if all, err := c.AllFormations(ctx); err != nil || len(all) != 1 {
		t.Fatalf("AllFormations = %v, %v; want 1", all, err)
	}

	missing := "5b0a5f4e-9f3c-4d2a-8b1e-0c6f2d3a4b5c"
	errs := []struct {
		name  string
		err   error
		code  httpjson.Code
		field string
	}{
		{"another app's release", c.PutFormation(ctx, &controller.Formation{AppID: app.ID, ReleaseID: otherRel.ID, Processes: map[string]int{"web": 1}}), httpjson.CodeValidation, "release"},
		{"negative count", c.PutFormation(ctx, &controller.Formation{AppID: app.ID, ReleaseID: rel.ID, Processes: map[string]int{"web": -1}}), httpjson.CodeValidation, "processes.web"},
		{"unknown process type", c.PutFormation(ctx, &controller.Formation{AppID: app.ID, ReleaseID: rel.ID, Processes: map[string]int{"clock": 1}}), httpjson.CodeValidation, "processes.clock"},
		{"missing release", c.PutFormation(ctx, &controller.Formation{AppID: app.ID, ReleaseID: missing, Processes: map[string]int{"web": 1}}), httpjson.CodeNotFound, ""},
		{"missing app", c.PutFormation(ctx, &controller.Formation{AppID: "nope", ReleaseID: rel.ID, Processes: map[string]int{"web": 1}}), httpjson.CodeNotFound, ""},
		{"get missing", second(c.Formation(ctx, other.ID, otherRel.ID)), httpjson.CodeNotFound, ""},
		{"delete missing", c.DeleteFormation(ctx, app.ID, missing), httpjson.CodeNotFound, ""},
	}
	for _, tt := range errs {
		t.Run(tt.name, func(t *testing.T) { wantCode(t, tt.err, tt.code, tt.field) })
	}

	if err := c.DeleteFormation(ctx, app.ID, rel.ID); err != nil {
		t.Fatal(err)
	}
	wantCode(t, second(c.Formation(ctx, app.ID, rel.ID)), httpjson.CodeNotFound, "")
}

// TestConcurrentFormationUpdates races two writers on one formation: the
// stored formation must be the last one written, and the last formation
// event must say so too (events commit in the same order as the rows).
func TestConcurrentFormationUpdates(t *testing.T) {
	h := newHarness(t)
	ctx := t.Context()
	app := h.app(t, "race")
	rel := h.release(t, app, nil)
	const rounds = 20
	var wg sync.WaitGroup
	errc := make(chan error, 2*rounds)
	for writer := 1; writer <= 2; writer++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < rounds; i++ {
				f := &controller.Formation{AppID: app.ID, ReleaseID: rel.ID, Processes: map[string]int{"web": writer, "worker": i}}
				if err := h.client.PutFormation(ctx, f); err != nil {
					errc <- fmt.Errorf("writer %d: %w", writer, err)
				}
			}
		}()
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Fatal(err)
	}
	stored, err := h.client.Formation(ctx, app.ID, rel.ID)
	if err != nil {
		t.Fatal(err)
	}
	if stored.Processes["worker"] != rounds-1 {
		t.Fatalf("stored = %v, want worker=%d from some writer's last write", stored.Processes, rounds-1)
	}
	events, err := h.store.Events.List(ctx, eventQuery(app.ID, controller.ObjectTypeFormation))
	if err != nil {
		t.Fatal(err)
	}
	if len(events) != 2*rounds {
		t.Fatalf("%d formation events, want %d", len(events), 2*rounds)
	}
	var last controller.Formation
	if err := json.Unmarshal(events[len(events)-1].Data, &last); err != nil {
		t.Fatal(err)
	}
	if last.Processes["web"] != stored.Processes["web"] || last.Processes["worker"] != stored.Processes["worker"] {
		t.Fatalf("last event says %v, database says %v", last.Processes, stored.Processes)
	}
	if events[0].Op != controller.OpCreate || events[1].Op != controller.OpUpdate {
		t.Fatalf("ops = %s, %s; want create then update", events[0].Op, events[1].Op)
	}
}

// TestRaiseFormation checks PUT …?raise=true: each count becomes the larger
// of the stored and the given one, types only one side names included,
// and a formation that does not exist yet is created as given.
func TestRaiseFormation(t *testing.T) {
	h := newHarness(t)
	ctx := t.Context()
	c := h.client
	app := h.app(t, "raise")
	rel := h.release(t, app, nil)

	f := &controller.Formation{AppID: app.ID, ReleaseID: rel.ID, Processes: map[string]int{"web": 1}}
	if err := c.RaiseFormation(ctx, f); err != nil {
		t.Fatal(err)
	}
	if f.Processes["web"] != 1 {
		t.Fatalf("raise of a new formation = %v, want web=1", f.Processes)
	}
	if err := c.PutFormation(ctx, &controller.Formation{AppID: app.ID, ReleaseID: rel.ID, Processes: map[string]int{"web": 6}}); err != nil {
		t.Fatal(err)
	}
	f = &controller.Formation{AppID: app.ID, ReleaseID: rel.ID, Processes: map[string]int{"web": 2, "worker": 1}}
	if err := c.RaiseFormation(ctx, f); err != nil {
		t.Fatal(err)
	}
	got, err := c.Formation(ctx, app.ID, rel.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Processes["web"] != 6 || got.Processes["worker"] != 1 || len(got.Processes) != 2 {
		t.Errorf("after raising web=6 by web=2 worker=1: %v, want web=6 worker=1", got.Processes)
	}
	if f.Processes["web"] != 6 {
		t.Errorf("RaiseFormation left f = %v, want the stored formation", f.Processes)
	}
	wantCode(t, c.RaiseFormation(ctx, &controller.Formation{AppID: app.ID, ReleaseID: rel.ID, Processes: map[string]int{"clock": 1}}), httpjson.CodeValidation, "processes.clock")
}

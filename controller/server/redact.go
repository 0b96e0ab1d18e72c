package server

import (
	"context"
	"encoding/json"
	"errors"
	"maps"

	"github.com/openflynn/flynn/controller"
	"github.com/openflynn/flynn/controller/postgres"
)

// A system app's environment holds the platform's secrets: the controller
// key itself (the controller's, the scheduler's, the router's releases),
// the database password. A person may read system apps but not change
// them, and reading those values would make them the system; so what a
// person reads of a system app's releases (the releases endpoints and the
// event stream) has every env value replaced by hiddenValue. The names
// stay, so `flynn env` still says what is set. System requests see
// everything.

// hiddenValue stands for an env value of a system app in what a person's
// request reads.
const hiddenValue = "(hidden)"

// hideValues returns env with every value replaced by hiddenValue.
func hideValues(env map[string]string) map[string]string {
	if env == nil {
		return nil
	}
	out := make(map[string]string, len(env))
	for k := range env {
		out[k] = hiddenValue
	}
	return out
}

// redactRelease returns a copy of rel with its env values hidden.
func redactRelease(rel *controller.Release) *controller.Release {
	out := *rel
	out.Env = hideValues(rel.Env)
	if rel.Processes != nil {
		out.Processes = maps.Clone(rel.Processes)
		for typ, pt := range out.Processes {
			pt.Env = hideValues(pt.Env)
			out.Processes[typ] = pt
		}
	}
	return &out
}

// releaseView shows releases to one request: as they are to the system,
// redacted where they belong to a system app to a person. It remembers
// which apps are system apps (that never changes).
type releaseView struct {
	s      *Server
	system bool
	known  map[string]bool
}

func (s *Server) releaseView(ctx context.Context) *releaseView {
	return &releaseView{s: s, system: callerOf(ctx).system, known: map[string]bool{}}
}

// isSystemApp reports whether appID is a system app's. An app that is
// gone counts as one: what its releases held cannot be checked any more.
func (v *releaseView) isSystemApp(ctx context.Context, appID string) (bool, error) {
	if sys, ok := v.known[appID]; ok {
		return sys, nil
	}
	app, err := v.s.store.Apps.Get(ctx, appID)
	sys := true
	switch {
	case err == nil:
		sys = app.System
	case !errors.Is(err, postgres.ErrNotFound):
		return false, err
	}
	v.known[appID] = sys
	return sys, nil
}

// release returns rel as the request may see it.
func (v *releaseView) release(ctx context.Context, rel *controller.Release) (*controller.Release, error) {
	if v.system {
		return rel, nil
	}
	sys, err := v.isSystemApp(ctx, rel.AppID)
	if err != nil || !sys {
		return rel, err
	}
	return redactRelease(rel), nil
}

// releases is release for a list, in place.
func (v *releaseView) releases(ctx context.Context, list []*controller.Release) error {
	for i, rel := range list {
		var err error
		if list[i], err = v.release(ctx, rel); err != nil {
			return err
		}
	}
	return nil
}

// event returns e as the request may see it: a release event's data goes
// through release.
func (v *releaseView) event(ctx context.Context, e *controller.Event) (*controller.Event, error) {
	if v.system || e.ObjectType != controller.ObjectTypeRelease {
		return e, nil
	}
	var rel controller.Release
	if err := json.Unmarshal(e.Data, &rel); err != nil {
		return nil, err
	}
	if rel.AppID == "" {
		rel.AppID = e.AppID
	}
	shown, err := v.release(ctx, &rel)
	if err != nil || shown == &rel {
		return e, err
	}
	data, err := json.Marshal(shown)
	if err != nil {
		return nil, err
	}
	out := *e
	out.Data = data
	return &out, nil
}

package server

import (
	"crypto/rand"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"strings"

	"github.com/julienschmidt/httprouter"

	"github.com/openflynn/flynn/controller"
	"github.com/openflynn/flynn/controller/postgres"
	"github.com/openflynn/flynn/pkg/httpjson"
	"github.com/openflynn/flynn/pkg/stacks"
)

func (s *Server) listApps(w http.ResponseWriter, r *http.Request, _ httprouter.Params) error {
	p, err := page(r)
	if err != nil {
		return err
	}
	apps, next, err := s.store.Apps.List(r.Context(), p)
	if err != nil {
		return err
	}
	writePage(w, r, p, apps, next)
	return nil
}

// generatedNameAttempts bounds retries when a generated name is taken.
const generatedNameAttempts = 5

func (s *Server) createApp(w http.ResponseWriter, r *http.Request, _ httprouter.Params) error {
	var app controller.App
	if err := s.decode(w, r, "app", &app); err != nil {
		return err
	}
	if app.Name != "" && !controller.ValidAppName(app.Name) {
		return httpjson.ValidationError("name", "must match %s", controller.AppNamePattern)
	}
	if app.System && !callerOf(r.Context()).system {
		return httpjson.Errorf(httpjson.CodeForbidden, "only the cluster key may create a system app (flynn --system)")
	}
	if err := checkStack(app.Stack); err != nil {
		return err
	}
	withRoute, err := wantsDefaultRoute(r)
	if err != nil {
		return err
	}
	app.ReleaseID = "" // set through PUT /apps/:id/release only
	// insert creates the app with its default route (defaultroute.go),
	// if it gets one, and returns that route.
	insert := func(app *controller.App) (*controller.Route, error) {
		if route := s.defaultRoute(app); route != nil && withRoute {
			return route, s.store.Apps.Create(r.Context(), app, route)
		}
		return nil, s.store.Apps.Create(r.Context(), app)
	}
	if app.Name != "" {
		if route, err := insert(&app); err != nil {
			return defaultRouteTaken(err, route)
		}
		httpjson.Write(w, http.StatusCreated, &app)
		return nil
	}
	for attempt := 0; ; attempt++ {
		candidate := app
		candidate.Name = generateAppName()
		route, err := insert(&candidate)
		if err == nil {
			httpjson.Write(w, http.StatusCreated, &candidate)
			return nil
		}
		// A taken name or default route domain: another name may do.
		if !errors.Is(err, postgres.ErrExists) || attempt+1 == generatedNameAttempts {
			return defaultRouteTaken(err, route)
		}
	}
}

func (s *Server) getApp(w http.ResponseWriter, r *http.Request, ps httprouter.Params) error {
	app, err := s.store.Apps.Get(r.Context(), ps.ByName("id"))
	if err != nil {
		return err
	}
	httpjson.Write(w, http.StatusOK, app)
	return nil
}

func (s *Server) updateApp(w http.ResponseWriter, r *http.Request, ps httprouter.Params) error {
	var u controller.AppUpdate
	if err := s.decode(w, r, "app_update", &u); err != nil {
		return err
	}
	if u.Stack != nil {
		if err := checkStack(*u.Stack); err != nil {
			return err
		}
	}
	app, err := s.store.Apps.Update(r.Context(), ps.ByName("id"), u)
	if err != nil {
		return err
	}
	httpjson.Write(w, http.StatusOK, app)
	return nil
}

func (s *Server) deleteApp(w http.ResponseWriter, r *http.Request, ps httprouter.Params) error {
	// The resources only this app uses go with it; their providers are
	// told once the deletion is committed.
	var own []*controller.Resource
	if app, err := s.store.Apps.Get(r.Context(), ps.ByName("id")); err == nil {
		resources, err := s.store.Resources.ListByApp(r.Context(), app.ID)
		if err != nil {
			return err
		}
		for _, res := range resources {
			if len(res.Apps) == 1 {
				own = append(own, res)
			}
		}
	}
	app, err := s.store.Apps.Delete(r.Context(), ps.ByName("id"))
	if err != nil {
		return err
	}
	s.logger.Info("app deleted", "app.id", app.ID, "app.name", app.Name)
	for _, res := range own {
		s.deprovision(r.Context(), res)
	}
	httpjson.Write(w, http.StatusOK, app)
	return nil
}

// The word lists of generated app names ("brave-otter-4821"): short, plain,
// and long enough together that collisions are rare.
var (
	nameAdjectives = [...]string{"amber", "bold", "brave", "bright", "calm", "clever", "cosmic", "crisp", "eager", "fancy",
		"gentle", "golden", "happy", "jolly", "keen", "lively", "lucky", "mellow", "misty", "noble",
		"polite", "proud", "quiet", "rapid", "shiny", "silent", "snowy", "solar", "swift", "tidy", "vivid", "witty"}
	nameNouns = [...]string{"badger", "beacon", "breeze", "canyon", "cedar", "comet", "falcon", "forest", "glacier", "harbor",
		"heron", "island", "lagoon", "maple", "meadow", "nebula", "otter", "panda", "pebble", "pine",
		"prairie", "quartz", "raven", "river", "summit", "thunder", "tiger", "valley", "willow", "zephyr"}
)

// generateAppName returns a random name that matches AppNamePattern.
func generateAppName() string {
	pick := func(n int) int {
		v, err := rand.Int(rand.Reader, big.NewInt(int64(n)))
		if err != nil {
			return 0
		}
		return int(v.Int64())
	}
	return fmt.Sprintf("%s-%s-%04d", nameAdjectives[pick(len(nameAdjectives))], nameNouns[pick(len(nameNouns))], pick(10000))
}

// checkStack accepts the stacks the cluster builds (package pkg/stacks),
// and "" for the default.
func checkStack(name string) error {
	if _, ok := stacks.Lookup(name); name != "" && !ok {
		return httpjson.ValidationError("stack", "unknown stack %q (the stacks are %s)", name, strings.Join(stacks.Names(), ", "))
	}
	return nil
}

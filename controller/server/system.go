package server

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"slices"

	"github.com/julienschmidt/httprouter"

	"github.com/openflynn/flynn/controller"
	"github.com/openflynn/flynn/pkg/httpjson"
)

// The platform's own apps are system apps (controller.App.System). A
// person's request may read them but not change them: every endpoint that
// changes the app in its path is wrapped by changesApp (see routes.go),
// and the endpoints that name apps in their bodies (POST /releases,
// provisioning a resource) or change the apps of a resource (removing
// one) call mayChange themselves. System requests may
// do everything.

// errSystemApp is the refusal of a person's change to a system app.
func errSystemApp(app *controller.App) error {
	return httpjson.Errorf(httpjson.CodeForbidden,
		"%s is a system app: changing it needs the cluster key (flynn --system, with $FLYNN_CLUSTER_KEY or --cluster-key-file)", app.Name)
}

// mayChange refuses a person's change to a system app.
func mayChange(ctx context.Context, app *controller.App) error {
	if app.System && !callerOf(ctx).system {
		return errSystemApp(app)
	}
	return nil
}

// changesApp guards h, an endpoint that changes the app named by the :id
// of its path, against a person's request to change a system app.
func (s *Server) changesApp(h handlerFunc) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request, ps httprouter.Params) error {
		if callerOf(r.Context()).system {
			return h(w, r, ps)
		}
		app, err := s.store.Apps.Get(r.Context(), ps.ByName("id"))
		if err != nil {
			return err
		}
		if err := mayChange(r.Context(), app); err != nil {
			return err
		}
		return h(w, r, ps)
	}
}

// handleChange is handle for an endpoint that changes the app in its path.
func (s *Server) handleChange(h handlerFunc) httprouter.Handle { return s.handle(s.changesApp(h)) }

// checkHostNetwork refuses a release of an app that is not a system app
// whose process types ask for the host's network: that namespace reaches
// the node's own services (etcd, the host API) on loopback.
func checkHostNetwork(app *controller.App, rel *controller.Release) error {
	if app.System {
		return nil
	}
	for _, typ := range slices.Sorted(maps.Keys(rel.Processes)) {
		if rel.Processes[typ].HostNetwork {
			return httpjson.ValidationError(fmt.Sprintf("processes.%s.host_network", typ),
				"only system apps may run on the host's network, and %s is not one", app.Name)
		}
	}
	return nil
}

// checkTCPPort keeps a TCP route of an app that is not a system app in the
// router's port range that app jobs may reach.
func checkTCPPort(app *controller.App, route *controller.Route) error {
	if route.Type != controller.RouteTypeTCP || app.System || route.Port == 0 {
		return nil
	}
	if route.Port < controller.TCPRoutePortMin || route.Port > controller.TCPRoutePortMax {
		return httpjson.ValidationError("port", "a TCP route of an app must use a router port from %d to %d (or none, to get a free one there), not %d",
			controller.TCPRoutePortMin, controller.TCPRoutePortMax, route.Port)
	}
	return nil
}

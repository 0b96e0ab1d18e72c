package server

import (
	"maps"
	"net/http"
	"slices"

	"github.com/julienschmidt/httprouter"

	"github.com/openflynn/flynn/controller"
	"github.com/openflynn/flynn/pkg/httpjson"
)

// The cluster's build settings (controller.BuildEnv) reach every build and
// every job of the apps that are not system apps (controller/hostjob).
// Anyone with a key may read them: every app job, and so every person who
// can run one, gets them anyway. Only a system request may change them:
// they steer every app of the cluster, where a person's key is trusted
// with apps, not with the cluster.

// errBuildEnvForbidden is the refusal of a person's change.
var errBuildEnvForbidden = httpjson.Errorf(httpjson.CodeForbidden,
	"the cluster's build env is the operator's: changing it needs the cluster key (flynn --system, with $FLYNN_CLUSTER_KEY or --cluster-key-file)")

func (s *Server) getBuildEnv(w http.ResponseWriter, r *http.Request, _ httprouter.Params) error {
	be, err := s.store.BuildEnv.Get(r.Context())
	if err != nil {
		return err
	}
	httpjson.Write(w, http.StatusOK, be)
	return nil
}

// patchBuildEnv changes the settings and answers them. Jobs already running
// keep what they started with; the next job started gets the change.
func (s *Server) patchBuildEnv(w http.ResponseWriter, r *http.Request, _ httprouter.Params) error {
	if !callerOf(r.Context()).system {
		return errBuildEnvForbidden
	}
	var p controller.BuildEnvPatch
	if err := s.decode(w, r, "build_env_patch", &p); err != nil {
		return err
	}
	be, err := s.store.BuildEnv.Patch(r.Context(), p)
	if err != nil {
		return err
	}
	// Names only: the values may hold credentials (a mirror's URL).
	s.logger.Info("cluster build env changed", "env", slices.Sorted(maps.Keys(be.Env)), "ca_certs", be.CACerts != "")
	httpjson.Write(w, http.StatusOK, be)
	return nil
}

package server

import (
	"context"
	"net/http"
	"strconv"

	"github.com/julienschmidt/httprouter"

	"github.com/openflynn/flynn/controller"
	"github.com/openflynn/flynn/pkg/httpjson"
)

// HostLister is the optional part of a JobRunner that lists the cluster's
// hosts. A runner without it answers GET /hosts with service_unavailable.
type HostLister interface {
	// Hosts lists every host registered in discoverd, ordered by id, each
	// with what it answered in time or HostUnreachable.
	Hosts(ctx context.Context) ([]*controller.Host, error)
}

// HostStatsLister is the optional part of a HostLister that also reads
// what each host's jobs use. A runner without it answers
// GET /hosts?stats=true with its plain list: every host without stats,
// as if none had answered them.
type HostStatsLister interface {
	// HostsWithStats is Hosts with each reachable host's Stats; a host
	// whose stats could not be read in time is listed without.
	HostsWithStats(ctx context.Context) ([]*controller.Host, error)
}

// listHosts serves GET /hosts: the cluster's nodes, for `flynn hosts`;
// ?stats=true adds what each host's jobs use, for the dashboard.
func (s *Server) listHosts(w http.ResponseWriter, r *http.Request, _ httprouter.Params) error {
	lister, ok := s.opts.Runner.(HostLister)
	if !ok {
		return &httpjson.Error{Code: httpjson.CodeServiceUnavailable, Message: "this controller cannot reach hosts to list them", Retry: true}
	}
	withStats := false
	if v := r.URL.Query().Get("stats"); v != "" {
		var err error
		if withStats, err = strconv.ParseBool(v); err != nil {
			return httpjson.ValidationError("stats", "must be true or false")
		}
	}
	list := lister.Hosts
	if sl, ok := lister.(HostStatsLister); ok && withStats {
		list = sl.HostsWithStats
	}
	hosts, err := list(r.Context())
	if err != nil {
		return err
	}
	if hosts == nil {
		hosts = []*controller.Host{}
	}
	httpjson.Write(w, http.StatusOK, hosts)
	return nil
}

package server

import (
	"context"
	"net/http"

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

// listHosts serves GET /hosts: the cluster's nodes, for `flynn hosts`.
func (s *Server) listHosts(w http.ResponseWriter, r *http.Request, _ httprouter.Params) error {
	lister, ok := s.opts.Runner.(HostLister)
	if !ok {
		return &httpjson.Error{Code: httpjson.CodeServiceUnavailable, Message: "this controller cannot reach hosts to list them", Retry: true}
	}
	hosts, err := lister.Hosts(r.Context())
	if err != nil {
		return err
	}
	if hosts == nil {
		hosts = []*controller.Host{}
	}
	httpjson.Write(w, http.StatusOK, hosts)
	return nil
}

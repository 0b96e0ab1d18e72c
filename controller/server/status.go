package server

import (
	"net/http"

	"github.com/julienschmidt/httprouter"

	"github.com/openflynn/flynn/controller"
	"github.com/openflynn/flynn/pkg/httpjson"
	"github.com/openflynn/flynn/pkg/version"
)

// status answers controller.Status: this controller's build and the
// default route domain.
func (s *Server) status(w http.ResponseWriter, _ *http.Request, _ httprouter.Params) error {
	httpjson.Write(w, http.StatusOK, &controller.Status{Version: version.String(), DefaultRouteDomain: s.opts.DefaultRouteDomain})
	return nil
}

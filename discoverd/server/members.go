package server

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/julienschmidt/httprouter"

	"github.com/openflynn/flynn/discoverd"
	"github.com/openflynn/flynn/pkg/httpjson"
)

// managed answers for a discoverd on an operator's etcd, whose membership
// is the operator's: no other discoverd joins it through this one.
func (a *API) managed(w http.ResponseWriter, r *http.Request) bool {
	if a.cluster == nil {
		a.fail(w, r, httpjson.NotFound("this discoverd uses an etcd it does not manage (--etcd-endpoints)"))
		return false
	}
	return true
}

func (a *API) etcdMembers(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	if !a.managed(w, r) {
		return
	}
	m, err := a.cluster.Members(r.Context())
	if err != nil {
		a.fail(w, r, err)
		return
	}
	httpjson.Write(w, http.StatusOK, m)
}

func (a *API) addEtcdMember(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	if !a.managed(w, r) {
		return
	}
	var req discoverd.EtcdMemberAdd
	if err := httpjson.Decode(w, r, maxInstanceBody, &req); err != nil {
		a.fail(w, r, err)
		return
	}
	if err := validateMemberAdd(&req); err != nil {
		a.fail(w, r, err)
		return
	}
	joined, err := a.cluster.AddMember(r.Context(), req.Name, req.PeerURL)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	a.logger.Info("etcd member added", "name", req.Name, "peer_url", req.PeerURL, "member", joined.Member.ID)
	httpjson.Write(w, http.StatusCreated, joined)
}

// validateMemberAdd checks what becomes part of etcd's --initial-cluster
// (name=url,…): a name without its separators, an http(s) URL of a host
// and port.
func validateMemberAdd(req *discoverd.EtcdMemberAdd) error {
	if req.Name == "" || len(req.Name) > 128 || strings.ContainsAny(req.Name, "=, \t\n") {
		return httpjson.ValidationError("name", "member name %q must be 1-128 characters without '=', ',' or spaces", req.Name)
	}
	u, err := url.Parse(req.PeerURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Hostname() == "" || u.Port() == "" || (u.Path != "" && u.Path != "/") || strings.Contains(req.PeerURL, ",") {
		return httpjson.ValidationError("peer_url", "peer URL %q must be http(s)://host:port", req.PeerURL)
	}
	return nil
}

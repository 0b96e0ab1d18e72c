package server

import (
	"errors"
	"net/http"

	"github.com/julienschmidt/httprouter"

	"github.com/openflynn/flynn/controller"
	"github.com/openflynn/flynn/controller/postgres"
	"github.com/openflynn/flynn/pkg/httpjson"
	"github.com/openflynn/flynn/pkg/random"
)

// This file serves people's API keys (routes.go lists the API; auth.go
// uses them).

// apiKeySecretBytes is the randomness of an API key's secret.
const apiKeySecretBytes = 32

func (s *Server) listAPIKeys(w http.ResponseWriter, r *http.Request, _ httprouter.Params) error {
	p, err := page(r)
	if err != nil {
		return err
	}
	list, next, err := s.store.APIKeys.List(r.Context(), p)
	if err != nil {
		return err
	}
	writePage(w, r, p, list, next)
	return nil
}

// createAPIKey makes a key with a new secret, which only this reply
// carries: the store keeps its hash.
func (s *Server) createAPIKey(w http.ResponseWriter, r *http.Request, _ httprouter.Params) error {
	var req struct {
		Name string `json:"name"`
	}
	if err := s.decode(w, r, "api_key", &req); err != nil {
		return err
	}
	if !controller.ValidAPIKeyName(req.Name) {
		return httpjson.ValidationError("name", "must match %s", controller.APIKeyNamePattern)
	}
	if postgres.IsUUID(req.Name) {
		return httpjson.ValidationError("name", "must not look like an id")
	}
	secret := random.Hex(apiKeySecretBytes)
	hash := hashSecret(secret)
	k := &controller.APIKey{Name: req.Name}
	if err := s.store.APIKeys.Create(r.Context(), k, hash[:]); err != nil {
		return err
	}
	s.logger.Info("API key created", "api_key.id", k.ID, "api_key.name", k.Name, "by", callerName(r))
	k.Secret = secret
	httpjson.Write(w, http.StatusCreated, k)
	return nil
}

func (s *Server) getAPIKey(w http.ResponseWriter, r *http.Request, ps httprouter.Params) error {
	k, err := s.store.APIKeys.Get(r.Context(), ps.ByName("id"))
	if err != nil {
		return err
	}
	httpjson.Write(w, http.StatusOK, k)
	return nil
}

// revokeAPIKey deletes a key by id or name; requests with it fail from
// then on. A person may revoke any key but the last one (which is then
// their own): that would leave nobody but holders of the cluster key able
// to get in, so it takes the cluster key.
func (s *Server) revokeAPIKey(w http.ResponseWriter, r *http.Request, ps httprouter.Params) error {
	k, err := s.store.APIKeys.Delete(r.Context(), ps.ByName("id"), !callerOf(r.Context()).system)
	if errors.Is(err, postgres.ErrLastAPIKey) {
		return httpjson.Errorf(httpjson.CodePreconditionFailed,
			"%s is the last API key: add another first, or revoke it with the cluster key (flynn --system)", ps.ByName("id"))
	}
	if err != nil {
		return err
	}
	s.keys.forget(k.ID)
	s.logger.Info("API key revoked", "api_key.id", k.ID, "api_key.name", k.Name, "by", callerName(r))
	httpjson.Write(w, http.StatusOK, k)
	return nil
}

// callerName names who made r, for the log.
func callerName(r *http.Request) string {
	c := callerOf(r.Context())
	if c.key != nil {
		return "api-key:" + c.key.Name
	}
	return "system"
}

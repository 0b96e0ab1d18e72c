package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/julienschmidt/httprouter"

	"github.com/openflynn/flynn/controller"
	"github.com/openflynn/flynn/controller/postgres"
	"github.com/openflynn/flynn/host"
	"github.com/openflynn/flynn/pkg/httpjson"
)

func (s *Server) listProviders(w http.ResponseWriter, r *http.Request, _ httprouter.Params) error {
	p, err := page(r)
	if err != nil {
		return err
	}
	list, next, err := s.store.Providers.List(r.Context(), p)
	if err != nil {
		return err
	}
	writePage(w, r, p, list, next)
	return nil
}

func (s *Server) createProvider(w http.ResponseWriter, r *http.Request, _ httprouter.Params) error {
	var p controller.Provider
	if err := s.decode(w, r, "provider", &p); err != nil {
		return err
	}
	if err := s.store.Providers.Create(r.Context(), &p); err != nil {
		return err
	}
	httpjson.Write(w, http.StatusCreated, &p)
	return nil
}

func (s *Server) getProvider(w http.ResponseWriter, r *http.Request, ps httprouter.Params) error {
	p, err := s.store.Providers.Get(r.Context(), ps.ByName("id"))
	if err != nil {
		return err
	}
	httpjson.Write(w, http.StatusOK, p)
	return nil
}

func (s *Server) listProviderResources(w http.ResponseWriter, r *http.Request, ps httprouter.Params) error {
	p, err := s.store.Providers.Get(r.Context(), ps.ByName("id"))
	if err != nil {
		return err
	}
	list, err := s.store.Resources.ListByProvider(r.Context(), p.ID)
	if err != nil {
		return err
	}
	httpjson.Write(w, http.StatusOK, list)
	return nil
}

func (s *Server) getResource(w http.ResponseWriter, r *http.Request, ps httprouter.Params) error {
	p, err := s.store.Providers.Get(r.Context(), ps.ByName("id"))
	if err != nil {
		return err
	}
	res, err := s.store.Resources.Get(r.Context(), p.ID, ps.ByName("resource_id"))
	if err != nil {
		return err
	}
	httpjson.Write(w, http.StatusOK, res)
	return nil
}

func (s *Server) listAppResources(w http.ResponseWriter, r *http.Request, ps httprouter.Params) error {
	app, err := s.store.Apps.Get(r.Context(), ps.ByName("id"))
	if err != nil {
		return err
	}
	list, err := s.store.Resources.ListByApp(r.Context(), app.ID)
	if err != nil {
		return err
	}
	httpjson.Write(w, http.StatusOK, list)
	return nil
}

// provisionResource asks the provider for a resource, then stores it and
// gives each app named a release with its env.
func (s *Server) provisionResource(w http.ResponseWriter, r *http.Request, ps httprouter.Params) error {
	var req controller.ResourceRequest
	if err := s.decode(w, r, "resource_request", &req); err != nil {
		return err
	}
	p, err := s.store.Providers.Get(r.Context(), ps.ByName("id"))
	if err != nil {
		return err
	}
	// Check the apps before provisioning, so a typo does not leave a
	// resource behind at the provider.
	for i, name := range req.Apps {
		app, err := s.store.Apps.Get(r.Context(), name)
		if errors.Is(err, postgres.ErrNotFound) {
			return httpjson.ValidationError(fmt.Sprintf("apps.%d", i), "app %q does not exist", name)
		} else if err != nil {
			return err
		}
		// Each app gets a new release with the resource's env.
		if err := mayChange(r.Context(), app); err != nil {
			return err
		}
	}
	provisioned, err := s.provision(r.Context(), p, req.Config)
	if err != nil {
		return err
	}
	res := &controller.Resource{ProviderID: p.ID, ExternalID: provisioned.ID, Env: provisioned.Env}
	deployments, err := s.store.Resources.Create(r.Context(), res, req.Apps)
	if err != nil {
		return err
	}
	s.logger.Info("resource provisioned", "provider", p.Name, "resource.id", res.ID, "apps", res.Apps, "deployments", len(deployments))
	httpjson.Write(w, http.StatusCreated, res)
	return nil
}

// maxProviderReply bounds what a provider may answer.
const maxProviderReply = 1 << 20

func (s *Server) provision(ctx context.Context, p *controller.Provider, config json.RawMessage) (*controller.ProvisionedResource, error) {
	if len(config) == 0 {
		config = json.RawMessage(`{}`)
	}
	body, err := json.Marshal(struct {
		Config json.RawMessage `json:"config"`
	}{config})
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.URL, bytes.NewReader(body))
	if err != nil {
		return nil, httpjson.ValidationError("url", "provider %s has an unusable URL: %v", p.Name, err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := s.opts.HTTPClient.Do(req)
	if err != nil {
		return nil, &httpjson.Error{Code: httpjson.CodeServiceUnavailable, Retry: true, Message: fmt.Sprintf("provider %s: %v", p.Name, err)}
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return nil, &httpjson.Error{Code: httpjson.CodeServiceUnavailable, Message: fmt.Sprintf("provider %s answered %s: %s", p.Name, resp.Status, bytes.TrimSpace(msg))}
	}
	var out controller.ProvisionedResource
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxProviderReply)).Decode(&out); err != nil {
		return nil, &httpjson.Error{Code: httpjson.CodeServiceUnavailable, Message: fmt.Sprintf("provider %s: unreadable reply: %v", p.Name, err)}
	}
	if out.ID == "" {
		return nil, &httpjson.Error{Code: httpjson.CodeServiceUnavailable, Message: fmt.Sprintf("provider %s: reply has no resource id", p.Name)}
	}
	if name, bad := badEnvName(out.Env); bad {
		// Its apps' jobs could not start with it.
		return nil, &httpjson.Error{Code: httpjson.CodeServiceUnavailable, Message: fmt.Sprintf("provider %s: reply has the invalid variable name %q (%s)", p.Name, name, host.EnvNameRule)}
	}
	return &out, nil
}

// deprovision tells a resource's provider that it is gone: DELETE on the
// provider's URL followed by the resource's id. The resource is deleted
// here already, so a provider that does not answer is only logged (its
// resource is then left for its operator to remove).
func (s *Server) deprovision(ctx context.Context, res *controller.Resource) {
	log := s.logger.With("resource.id", res.ID, "provider.id", res.ProviderID, "external_id", res.ExternalID)
	p, err := s.store.Providers.Get(ctx, res.ProviderID)
	if err != nil {
		log.Warn("deprovision: provider unreadable", "err", err)
		return
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodDelete, strings.TrimRight(p.URL, "/")+"/"+url.PathEscape(res.ExternalID), nil)
	if err != nil {
		log.Warn("deprovision: bad provider URL", "err", err)
		return
	}
	resp, err := s.opts.HTTPClient.Do(req)
	if err != nil {
		log.Warn("deprovision: provider did not answer", "err", err)
		return
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 && resp.StatusCode != http.StatusNotFound {
		log.Warn("deprovision: provider refused", "status", resp.Status)
		return
	}
	log.Info("resource deprovisioned", "provider", p.Name)
}

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
	"slices"
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

// provider returns the provider idOrName names. When there is none, its
// not_found error lists the providers there are, so that `flynn resource
// add mysql` says what may be added instead.
func (s *Server) provider(ctx context.Context, idOrName string) (*controller.Provider, error) {
	p, err := s.store.Providers.Get(ctx, idOrName)
	if !errors.Is(err, postgres.ErrNotFound) {
		return p, err
	}
	list, _, lerr := s.store.Providers.List(ctx, postgres.Page{Limit: postgres.MaxPageSize})
	if lerr != nil {
		return nil, err
	}
	names := make([]string, len(list))
	for i, p := range list {
		names[i] = p.Name
	}
	slices.Sort(names)
	if len(names) == 0 {
		return nil, httpjson.NotFound("no provider %q; none is registered", idOrName)
	}
	return nil, httpjson.NotFound("no provider %q; providers: %s", idOrName, strings.Join(names, ", "))
}

func (s *Server) getProvider(w http.ResponseWriter, r *http.Request, ps httprouter.Params) error {
	p, err := s.provider(r.Context(), ps.ByName("id"))
	if err != nil {
		return err
	}
	httpjson.Write(w, http.StatusOK, p)
	return nil
}

func (s *Server) listProviderResources(w http.ResponseWriter, r *http.Request, ps httprouter.Params) error {
	p, err := s.provider(r.Context(), ps.ByName("id"))
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
	p, err := s.provider(r.Context(), ps.ByName("id"))
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
	p, err := s.provider(r.Context(), ps.ByName("id"))
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
		// Nothing here knows of what the provider made: undo it, even
		// when the client has gone.
		if derr := s.askDeprovision(context.WithoutCancel(r.Context()), p, res); derr != nil {
			s.logger.Warn("provisioned resource left at its provider", "provider", p.Name, "external_id", res.ExternalID, "err", derr)
		}
		return err
	}
	s.logger.Info("resource provisioned", "provider", p.Name, "resource.id", res.ID, "apps", res.Apps, "deployments", len(deployments))
	httpjson.Write(w, http.StatusCreated, res)
	return nil
}

// providerRefusal says what a provider answered with a status that is
// not a success: "answered <status>: <the start of its body>".
func providerRefusal(resp *http.Response) string {
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	return fmt.Sprintf("answered %s: %s", resp.Status, bytes.TrimSpace(msg))
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
		return nil, httpjson.ValidationError("url", "provider %s has an unusable URL: %v", p.Name, redactErr(err))
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := s.opts.HTTPClient.Do(req)
	if err != nil {
		return nil, &httpjson.Error{Code: httpjson.CodeServiceUnavailable, Retry: true, Message: fmt.Sprintf("provider %s: %v", p.Name, redactErr(err))}
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return nil, &httpjson.Error{Code: httpjson.CodeServiceUnavailable, Message: fmt.Sprintf("provider %s %s", p.Name, providerRefusal(resp))}
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

// deprovision tells a resource's provider that it is gone, after an app
// deletion took it: the resource is deleted here already, so a provider
// that does not answer is only logged (its resource is then left for its
// operator to remove).
func (s *Server) deprovision(ctx context.Context, res *controller.Resource) {
	log := s.logger.With("resource.id", res.ID, "provider.id", res.ProviderID, "external_id", res.ExternalID)
	p, err := s.store.Providers.Get(ctx, res.ProviderID)
	if err != nil {
		log.Warn("deprovision: provider unreadable", "err", err)
		return
	}
	if err := s.askDeprovision(ctx, p, res); err != nil {
		log.Warn("deprovision failed", "err", err)
		return
	}
	log.Info("resource deprovisioned", "provider", p.Name)
}

// askDeprovision sends DELETE on the provider's URL followed by the
// resource's external id. A provider that answers 404 has no such
// resource, which is what was asked: a retry after a deprovision whose
// answer was lost, say.
func (s *Server) askDeprovision(ctx context.Context, p *controller.Provider, res *controller.Resource) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodDelete, strings.TrimRight(p.URL, "/")+"/"+url.PathEscape(res.ExternalID), nil)
	if err != nil {
		return httpjson.ValidationError("url", "provider %s has an unusable URL: %v", p.Name, redactErr(err))
	}
	resp, err := s.opts.HTTPClient.Do(req)
	if err != nil {
		return &httpjson.Error{Code: httpjson.CodeServiceUnavailable, Retry: true, Message: fmt.Sprintf("provider %s: %v", p.Name, redactErr(err))}
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 && resp.StatusCode != http.StatusNotFound {
		return &httpjson.Error{Code: httpjson.CodeServiceUnavailable, Retry: resp.StatusCode >= 500,
			Message: fmt.Sprintf("provider %s %s", p.Name, providerRefusal(resp))}
	}
	return nil
}

// removeResource deprovisions a resource at its provider, then deletes it
// and gives each app that had it a new release without its env (see
// postgres.ResourceRepo.Delete), answering the resource as it was. The
// provider goes first: when it refuses, nothing changes here and the
// removal may be tried again; when the deletion here then fails, a retry
// finds the provider answering 404, which counts as done.
func (s *Server) removeResource(w http.ResponseWriter, r *http.Request, ps httprouter.Params) error {
	p, err := s.provider(r.Context(), ps.ByName("id"))
	if err != nil {
		return err
	}
	res, err := s.store.Resources.Get(r.Context(), p.ID, ps.ByName("resource_id"))
	if err != nil {
		return err
	}
	for _, appID := range res.Apps {
		app, err := s.store.Apps.Get(r.Context(), appID)
		if errors.Is(err, postgres.ErrNotFound) {
			continue
		} else if err != nil {
			return err
		}
		if err := mayChange(r.Context(), app); err != nil {
			return err
		}
	}
	if err := s.askDeprovision(r.Context(), p, res); err != nil {
		return err
	}
	removed, deployments, err := s.store.Resources.Delete(r.Context(), p.ID, res.ID)
	if err != nil {
		return err
	}
	s.logger.Info("resource removed", "provider", p.Name, "resource.id", removed.ID, "external_id", removed.ExternalID, "apps", removed.Apps, "deployments", len(deployments))
	httpjson.Write(w, http.StatusOK, removed)
	return nil
}

// redactErr returns err without a provider key that the URL it may quote
// carries (see controller.RedactURL): net/http hides a URL's password,
// but not a user name given alone, and url.Parse's errors quote the URL
// as it is.
func redactErr(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return &url.Error{Op: ue.Op, URL: controller.RedactURL(ue.URL), Err: ue.Err}
	}
	return err
}

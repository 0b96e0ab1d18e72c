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
	"os"
	"strings"

	"github.com/openflynn/flynn/appliance/postgres/backup/archive"
	"github.com/openflynn/flynn/controller"
	"github.com/openflynn/flynn/controller/postgres"
)

// The resources of providers other than backupProvider (Redis servers,
// say) are in a backup as entries of the controller's own, one per
// resource: archive.ResourceEntry(resource id), whatever the resource's
// provider gives at
//
//	GET  <provider URL>/<external id>/backup   → 200, the resource's data as a stream
//
// and a restore, once the controller's state is imported (the resources
// with it, env and all), asks each provider to make its resources again
// and, where the backup holds their data, to load it:
//
//	PUT  <provider URL>/<external id>          {"env": the resource's env} → 200 (made, or there already)
//	POST <provider URL>/<external id>/restore  body: the entry → 200 {"keys": n}
//
// A backup fails when a provider cannot give a resource's data: a backup
// that quietly lacked a database would be found out only when needed. A
// restore goes on past a resource it cannot bring back, and says so in its
// report: the apps and their databases are back by then.

// otherProviders lists the providers but backupProvider.
func (s *Server) otherProviders(ctx context.Context) ([]*controller.Provider, error) {
	var out []*controller.Provider
	page := postgres.Page{Limit: postgres.MaxPageSize}
	for {
		list, next, err := s.store.Providers.List(ctx, page)
		if err != nil {
			return nil, err
		}
		for _, p := range list {
			if p.Name != backupProvider {
				out = append(out, p)
			}
		}
		if next == "" {
			return out, nil
		}
		page.Cursor = next
	}
}

// resourceURL is the URL of a resource at its provider, with suffix.
func resourceURL(p *controller.Provider, res *controller.Resource, suffix string) string {
	return strings.TrimRight(p.URL, "/") + "/" + url.PathEscape(res.ExternalID) + suffix
}

// backupResources adds the data of every resource of the other providers
// to aw, each fetched into a temporary file first (a tar entry's size
// comes before its content). It returns how many it added.
func (s *Server) backupResources(ctx context.Context, aw *archive.Writer) (int, error) {
	providers, err := s.otherProviders(ctx)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, p := range providers {
		resources, err := s.store.Resources.ListByProvider(ctx, p.ID)
		if err != nil {
			return n, err
		}
		for _, res := range resources {
			if err := s.backupResource(ctx, aw, p, res); err != nil {
				return n, fmt.Errorf("resource %s of provider %s: %w", res.ID, p.Name, err)
			}
			n++
		}
	}
	return n, nil
}

func (s *Server) backupResource(ctx context.Context, aw *archive.Writer, p *controller.Provider, res *controller.Resource) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, resourceURL(p, res, "/backup"), nil)
	if err != nil {
		return fmt.Errorf("unusable provider URL: %w", redactErr(err))
	}
	resp, err := s.streamClient().Do(req)
	if err != nil {
		return fmt.Errorf("the provider does not answer: %w", redactErr(err))
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("the provider %s", providerRefusal(resp))
	}
	f, err := os.CreateTemp("", "flynn-backup-resource-")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	size, err := io.Copy(f, resp.Body)
	if err != nil {
		return fmt.Errorf("the provider's stream broke after %d bytes: %w", size, redactErr(err))
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return err
	}
	return aw.Add(archive.ResourceEntry(res.ID), size, f)
}

// resourceEntries is a Sink that keeps the resources' entries of an
// archive in files and passes over the rest.
type resourceEntries struct{ dir *archive.Dir }

func (k resourceEntries) Create(name string, size int64) (io.WriteCloser, error) {
	if !strings.HasPrefix(name, archive.ResourcePrefix) {
		return archive.Discard.Create(name, size)
	}
	return k.dir.Create(name, size)
}

// keptResources is what a restore's second reader of the archive kept.
type keptResources struct {
	dir *archive.Dir
	err error
}

// restoreResources makes the imported resources of the other providers
// again at their providers and loads the data the backup holds for them,
// returning a note for each it could not bring back.
func (s *Server) restoreResources(ctx context.Context, kept keptResources, progress func(string)) []string {
	providers, err := s.otherProviders(ctx)
	if err != nil {
		return []string{fmt.Sprintf("the resources of providers other than %s were not brought back: %v", backupProvider, err)}
	}
	var notes []string
	for _, p := range providers {
		resources, err := s.store.Resources.ListByProvider(ctx, p.ID)
		if err != nil {
			notes = append(notes, fmt.Sprintf("the resources of provider %s were not brought back: %v", p.Name, err))
			continue
		}
		for _, res := range resources {
			progress(fmt.Sprintf("bringing back resource %s of provider %s", res.ID, p.Name))
			note, err := s.restoreResource(ctx, kept, p, res)
			if err != nil {
				notes = append(notes, fmt.Sprintf("resource %s of provider %s (apps %s) was not brought back: %v; remove it and add a new one", res.ID, p.Name, strings.Join(res.Apps, ", "), err))
				continue
			}
			if note != "" {
				notes = append(notes, note)
			}
		}
	}
	return notes
}

func (s *Server) restoreResource(ctx context.Context, kept keptResources, p *controller.Provider, res *controller.Resource) (string, error) {
	body, err := json.Marshal(struct {
		Env map[string]string `json:"env"`
	}{res.Env})
	if err != nil {
		return "", err
	}
	if err := s.callProvider(ctx, http.MethodPut, resourceURL(p, res, ""), "application/json", bytes.NewReader(body), -1, nil); err != nil {
		return "", fmt.Errorf("make it again: %w", err)
	}
	path := ""
	if kept.err == nil && kept.dir != nil {
		path, _ = kept.dir.Path(archive.ResourceEntry(res.ID))
	}
	if path == "" {
		return fmt.Sprintf("resource %s of provider %s is back empty: the backup holds no data of it", res.ID, p.Name), nil
	}
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return "", err
	}
	var out struct {
		Keys int `json:"keys"`
	}
	if err := s.callProvider(ctx, http.MethodPost, resourceURL(p, res, "/restore"), "application/octet-stream", f, fi.Size(), &out); err != nil {
		return "", fmt.Errorf("load its data: %w", err)
	}
	s.logger.Info("resource restored", "provider", p.Name, "resource.id", res.ID, "keys", out.Keys)
	return "", nil
}

// callProvider sends body to a provider and decodes its JSON answer into
// out (when not nil); any status but 2xx is an error with the provider's
// words. size is the body's length, -1 if unknown.
func (s *Server) callProvider(ctx context.Context, method, u, contentType string, body io.Reader, size int64, out any) error {
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return fmt.Errorf("unusable provider URL: %w", redactErr(err))
	}
	if size >= 0 {
		req.ContentLength = size
	}
	req.Header.Set("Content-Type", contentType)
	resp, err := s.streamClient().Do(req)
	if err != nil {
		return fmt.Errorf("the provider does not answer: %w", redactErr(err))
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("the provider %s", providerRefusal(resp))
	}
	if out == nil {
		return nil
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxProviderReply)).Decode(out); err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("unreadable answer from the provider: %w", err)
	}
	return nil
}

// teeToPipe is a request body that hands what it reads to a pipe as
// well, and closes the pipe at its end.
type teeToPipe struct {
	r  io.Reader
	pw *io.PipeWriter
}

func (t *teeToPipe) Read(p []byte) (int, error) {
	n, err := t.r.Read(p)
	if n > 0 {
		if _, werr := t.pw.Write(p[:n]); werr != nil {
			return n, werr
		}
	}
	switch {
	case errors.Is(err, io.EOF):
		_ = t.pw.Close()
	case err != nil:
		_ = t.pw.CloseWithError(err)
	}
	return n, err
}

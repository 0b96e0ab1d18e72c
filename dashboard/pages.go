package dashboard

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"slices"
	"sort"
	"strings"

	"github.com/julienschmidt/httprouter"
	"github.com/openflynn/flynn/controller"
	"github.com/openflynn/flynn/host"
	"github.com/openflynn/flynn/pkg/httpjson"
	"golang.org/x/sync/errgroup"
)

// view is what a page's templates get.
type view struct {
	// Page names the page's template ("apps", "app", "cluster"); a
	// section's is Page + "-" + the section's name.
	Page  string
	Title string
	// CSRF is the session's token, for the forms.
	CSRF string
	// Flash is the outcome of the last form posted without the script.
	Flash *flash
	// LiveApp is the app whose events keep the page live ("": every app's).
	LiveApp string
	// Asset is the embedded assets' version, for their URLs.
	Asset string
	Data  any
}

// sections are the parts of each page the script may re-render alone.
var sections = map[string][]string{
	"apps":    {"list"},
	"app":     {"summary", "formation", "releases", "env", "routes", "resources", "graphs"},
	"cluster": {"nodes", "deployments"},
}

// page serves a page whose data load reads; ?section=NAME serves one of
// its sections.
func (s *Server) page(load func(ctx context.Context, r *request) (*view, error)) httprouter.Handle {
	return s.signedIn(func(w http.ResponseWriter, r *request) {
		ctx, cancel := r.ctx()
		defer cancel()
		v, err := load(ctx, r)
		if err != nil {
			s.pageError(w, r, err)
			return
		}
		v.CSRF, v.Asset = r.sess.CSRF, s.assetVersion
		name := "layout"
		if sec := r.URL.Query().Get("section"); sec != "" {
			if !slices.Contains(sections[v.Page], sec) {
				http.Error(w, "no such section", http.StatusNotFound)
				return
			}
			name = v.Page + "-" + sec
		} else {
			v.Flash = takeFlash(w, r.Request)
		}
		s.render(w, http.StatusOK, name, v)
	})
}

// render executes template name into a buffer first, so that a failing
// template answers 500 rather than half a page.
func (s *Server) render(w http.ResponseWriter, status int, name string, data any) {
	var buf bytes.Buffer
	if err := s.tmpl.ExecuteTemplate(&buf, name, data); err != nil {
		s.logger.Error("render page", "template", name, "err", err)
		http.Error(w, "the page could not be rendered", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// pageError answers a page whose data could not be read: a key the
// controller no longer takes ends the session.
func (s *Server) pageError(w http.ResponseWriter, r *request, err error) {
	switch {
	case httpjson.IsCode(err, httpjson.CodeUnauthorized):
		http.SetCookie(w, sessionCookie("", -1))
		if wantsFragment(r.Request) {
			http.Error(w, "signed out", http.StatusUnauthorized)
			return
		}
		http.Redirect(w, r.Request, "/login", http.StatusSeeOther)
	case httpjson.IsNotFound(err):
		s.render(w, http.StatusNotFound, "layout", &view{Page: "notfound", Title: "Not found", CSRF: r.sess.CSRF, Asset: s.assetVersion, Data: errorText(err)})
	default:
		s.logger.Warn("read page", "path", r.URL.Path, "err", err)
		s.render(w, http.StatusBadGateway, "layout", &view{Page: "error", Title: "Controller unavailable", CSRF: r.sess.CSRF, Asset: s.assetVersion, Data: errorText(err)})
	}
}

// errorText is what a person reads of err: the controller's message
// without its code.
func errorText(err error) string {
	var he *httpjson.Error
	if errors.As(err, &he) {
		if he.Field != "" && !strings.Contains(he.Message, he.Field) {
			return he.Field + ": " + he.Message
		}
		return he.Message
	}
	return err.Error()
}

// wantsFragment reports whether the page's script asked (a section or an
// action), so the answer is not a redirect.
func wantsFragment(r *http.Request) bool {
	return r.URL.Query().Get("section") != "" || r.Header.Get(scriptHeader) != ""
}

// scriptHeader marks the requests of static/app.js.
const scriptHeader = "X-Flynn-Dashboard"

// appRow is one app in the list.
type appRow struct {
	App       *controller.App
	Version   int
	Processes []processCount
	Domain    string
}

type processCount struct {
	Type  string
	Count int
}

// apps is the apps page: every app with its release, formation and route.
func (s *Server) appsPage(ctx context.Context, r *request) (*view, error) {
	apps, err := r.api.Apps(ctx)
	if err != nil {
		return nil, err
	}
	rows := make([]*appRow, len(apps))
	err = each(ctx, len(apps), func(ctx context.Context, i int) error {
		a := apps[i]
		row := &appRow{App: a}
		rows[i] = row
		routes, err := r.api.AppRoutes(ctx, a.ID)
		if err != nil {
			return err
		}
		for _, rt := range routes {
			if rt.Type == "http" {
				row.Domain = rt.Domain
				break
			}
		}
		if a.ReleaseID == "" {
			return nil
		}
		rel, err := r.api.Release(ctx, a.ReleaseID)
		if err != nil {
			return err
		}
		row.Version = rel.Version
		f, err := r.api.Formation(ctx, a.ID, a.ReleaseID)
		if err != nil && !httpjson.IsNotFound(err) {
			return err
		}
		if f != nil {
			row.Processes = counts(f.Processes)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	// People's apps first, then the platform's, each by name.
	sort.SliceStable(rows, func(i, j int) bool {
		if rows[i].App.System != rows[j].App.System {
			return !rows[i].App.System
		}
		return rows[i].App.Name < rows[j].App.Name
	})
	return &view{Page: "apps", Title: "Apps", Data: rows}, nil
}

func counts(m map[string]int) []processCount {
	out := make([]processCount, 0, len(m))
	for t, n := range m {
		out = append(out, processCount{t, n})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Type < out[j].Type })
	return out
}

// each runs fn for 0…n-1, at most eight at once (the controller calls of
// one page), and returns the first error, which cancels the others.
func each(ctx context.Context, n int, fn func(ctx context.Context, i int) error) error {
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(8)
	for i := 0; i < n; i++ {
		g.Go(func() error { return fn(ctx, i) })
	}
	return g.Wait()
}

// jobUp reports whether a job serves.
func jobUp(j *controller.Job) bool { return host.JobState(j.State) == host.StateUp }

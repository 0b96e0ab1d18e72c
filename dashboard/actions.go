package dashboard

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/julienschmidt/httprouter"
	"github.com/openflynn/flynn/controller"
	"github.com/openflynn/flynn/pkg/httpjson"
)

// result is what an action did: a message for the person and where to go
// next ("": back where they were).
type result struct {
	Message  string `json:"message,omitempty"`
	Location string `json:"location,omitempty"`
	// signOut ends the session.
	signOut bool
}

// errBadInput is a form that makes no sense; its message is shown as is.
type errBadInput struct{ msg string }

func (e errBadInput) Error() string { return e.msg }

func badInput(format string, args ...any) error { return errBadInput{fmt.Sprintf(format, args...)} }

// action serves a form's POST: signed in, from this site, with the
// session's CSRF token. The script's requests get JSON ({"message",
// "location"} or {"error"}); a plain form is sent back where it came from
// with the outcome in a flash.
func (s *Server) action(h func(ctx context.Context, r *request) (result, error)) httprouter.Handle {
	return func(w http.ResponseWriter, hr *http.Request, ps httprouter.Params) {
		if err := checkOrigin(hr); err != nil {
			http.Error(w, err.Error(), http.StatusForbidden)
			return
		}
		sess, err := s.sessionOf(hr)
		if err != nil {
			http.Error(w, "not signed in", http.StatusUnauthorized)
			return
		}
		hr.Body = http.MaxBytesReader(w, hr.Body, maxFormBytes)
		if err := hr.ParseForm(); err != nil {
			http.Error(w, "the form could not be read", http.StatusBadRequest)
			return
		}
		if !checkCSRF(hr, sess) {
			http.Error(w, "refused: the form did not carry this session's token (reload the page)", http.StatusForbidden)
			return
		}
		r := &request{Request: hr, sess: sess, api: s.cfg.Controller(sess.Key), ps: ps}
		ctx, cancel := r.ctx()
		defer cancel()
		res, err := h(ctx, r)
		status := http.StatusOK
		if err != nil {
			status = http.StatusBadGateway
			var bad errBadInput
			var he *httpjson.Error
			switch {
			case errors.As(err, &bad):
				status = http.StatusBadRequest
			case errors.As(err, &he):
				status = he.Status()
			default:
				s.logger.Warn("action failed", "path", hr.URL.Path, "err", err)
			}
			if status == http.StatusUnauthorized {
				http.SetCookie(w, sessionCookie("", -1))
			}
		}
		if res.signOut {
			http.SetCookie(w, sessionCookie("", -1))
		}
		if hr.Header.Get(scriptHeader) != "" {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(status)
			out := map[string]string{"message": res.Message, "location": res.Location}
			if err != nil {
				out = map[string]string{"error": errorText(err)}
			}
			_ = json.NewEncoder(w).Encode(out)
			return
		}
		back := res.Location
		if back == "" {
			back = localReferer(hr)
		}
		if err != nil {
			setFlash(w, &flash{Error: true, Text: errorText(err)})
		} else if res.Message != "" {
			setFlash(w, &flash{Text: res.Message})
		}
		http.Redirect(w, hr, back, http.StatusSeeOther)
	}
}

// localReferer is the page a form was posted from, when it is one of
// ours; else the apps page.
func localReferer(r *http.Request) string {
	u, err := url.Parse(r.Referer())
	if err != nil || u.Host != r.Host || !strings.HasPrefix(u.Path, "/") {
		return "/"
	}
	return u.Path
}

// flash is an action's outcome shown on the next page, for forms posted
// without the script.
type flash struct {
	Error bool   `json:"e,omitempty"`
	Text  string `json:"t"`
}

const flashCookie = "flynn_flash"

func setFlash(w http.ResponseWriter, f *flash) {
	b, _ := json.Marshal(f)
	http.SetCookie(w, &http.Cookie{Name: flashCookie, Value: base64.RawURLEncoding.EncodeToString(b), Path: "/", MaxAge: 60,
		HttpOnly: true, Secure: true, SameSite: http.SameSiteStrictMode})
}

// takeFlash reads and clears the flash.
func takeFlash(w http.ResponseWriter, r *http.Request) *flash {
	c, err := r.Cookie(flashCookie)
	if err != nil {
		return nil
	}
	http.SetCookie(w, &http.Cookie{Name: flashCookie, Path: "/", MaxAge: -1, HttpOnly: true, Secure: true, SameSite: http.SameSiteStrictMode})
	b, err := base64.RawURLEncoding.DecodeString(c.Value)
	if err != nil {
		return nil
	}
	var f flash
	if json.Unmarshal(b, &f) != nil || f.Text == "" || !utf8.ValidString(f.Text) {
		return nil
	}
	return &f
}

func (s *Server) loginPage(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	if _, err := s.sessionOf(r); err == nil {
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return
	}
	s.render(w, http.StatusOK, "layout", &view{Page: "login", Title: "Sign in", Asset: s.assetVersion})
}

// login checks the key with the controller (any request it answers
// proves the key) and starts a session. A wrong key gets no cookie.
func (s *Server) login(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	fail := func(status int, msg string) {
		s.render(w, status, "layout", &view{Page: "login", Title: "Sign in", Asset: s.assetVersion, Flash: &flash{Error: true, Text: msg}})
	}
	if err := checkOrigin(r); err != nil {
		fail(http.StatusForbidden, err.Error())
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	key := strings.TrimSpace(r.PostFormValue("key"))
	if key == "" {
		fail(http.StatusBadRequest, "Enter a key.")
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), requestTimeout)
	defer cancel()
	if _, err := s.cfg.Controller(key).Status(ctx); err != nil {
		if httpjson.IsCode(err, httpjson.CodeUnauthorized) {
			s.logger.Info("sign-in refused", "remote", r.RemoteAddr)
			fail(http.StatusUnauthorized, "The controller refused that key.")
			return
		}
		s.logger.Warn("sign-in: controller", "err", err)
		fail(http.StatusBadGateway, "The controller could not be reached: "+errorText(err))
		return
	}
	value, err := s.seal.seal(s.seal.newSession(key))
	if err != nil {
		fail(http.StatusInternalServerError, err.Error())
		return
	}
	http.SetCookie(w, sessionCookie(value, int(SessionTTL.Seconds())))
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

func (s *Server) logout(_ context.Context, _ *request) (result, error) {
	return result{Location: "/login", signOut: true}, nil
}

func (s *Server) createApp(ctx context.Context, r *request) (result, error) {
	name := strings.TrimSpace(r.PostFormValue("name"))
	if name == "" {
		return result{}, badInput("Enter a name for the app.")
	}
	app := &controller.App{Name: name}
	if err := r.api.CreateApp(ctx, app); err != nil {
		return result{}, err
	}
	return result{Message: "Created " + app.Name + ".", Location: "/apps/" + url.PathEscape(app.Name)}, nil
}

func (s *Server) deleteApp(ctx context.Context, r *request) (result, error) {
	app, err := r.api.App(ctx, r.ps.ByName("app"))
	if err != nil {
		return result{}, err
	}
	if r.PostFormValue("confirm") != app.Name {
		return result{}, badInput("Type the app's name, %s, to delete it.", app.Name)
	}
	if _, err := r.api.DeleteApp(ctx, app.ID); err != nil {
		return result{}, err
	}
	return result{Message: "Deleted " + app.Name + ".", Location: "/"}, nil
}

// scale sets one process type's count in the current release's
// formation, keeping the others.
func (s *Server) scale(ctx context.Context, r *request) (result, error) {
	typ := r.PostFormValue("type")
	n, err := strconv.Atoi(strings.TrimSpace(r.PostFormValue("count")))
	if err != nil || n < 0 || n > 1000 {
		return result{}, badInput("The count must be a whole number from 0 to 1000.")
	}
	app, err := r.api.App(ctx, r.ps.ByName("app"))
	if err != nil {
		return result{}, err
	}
	if app.ReleaseID == "" {
		return result{}, badInput("%s has no release to scale yet: deploy it first.", app.Name)
	}
	rel, err := r.api.Release(ctx, app.ReleaseID)
	if err != nil {
		return result{}, err
	}
	if _, ok := rel.Processes[typ]; !ok {
		return result{}, badInput("v%d has no process type %q.", rel.Version, typ)
	}
	procs := map[string]int{}
	f, err := r.api.Formation(ctx, app.ID, rel.ID)
	switch {
	case err == nil:
		for t, c := range f.Processes {
			procs[t] = c
		}
	case !httpjson.IsNotFound(err):
		return result{}, err
	}
	procs[typ] = n
	if err := r.api.PutFormation(ctx, &controller.Formation{AppID: app.ID, ReleaseID: rel.ID, Processes: procs}); err != nil {
		return result{}, err
	}
	return result{Message: fmt.Sprintf("Scaling %s to %d.", typ, n)}, nil
}

func (s *Server) setEnv(ctx context.Context, r *request) (result, error) {
	name := strings.TrimSpace(r.PostFormValue("name"))
	if name == "" {
		return result{}, badInput("Enter the variable's name.")
	}
	return s.patchEnv(ctx, r, &controller.EnvPatch{Set: map[string]string{name: r.PostFormValue("value")}}, "Set "+name)
}

func (s *Server) unsetEnv(ctx context.Context, r *request) (result, error) {
	name := r.PostFormValue("name")
	if name == "" {
		return result{}, badInput("No variable named.")
	}
	return s.patchEnv(ctx, r, &controller.EnvPatch{Unset: []string{name}}, "Removed "+name)
}

func (s *Server) patchEnv(ctx context.Context, r *request, p *controller.EnvPatch, done string) (result, error) {
	out, err := r.api.PatchRelease(ctx, r.ps.ByName("app"), controller.ReleasePatch{Env: p})
	if err != nil {
		return result{}, err
	}
	if out.Deployment == nil || out.Release == nil {
		return result{Message: "Nothing changed."}, nil
	}
	return result{Message: fmt.Sprintf("%s: v%d is deploying.", done, out.Release.Version)}, nil
}

// deployRelease deploys a release of the app again: a rollback.
func (s *Server) deployRelease(ctx context.Context, r *request) (result, error) {
	id := r.PostFormValue("release")
	rel, err := r.api.Release(ctx, id)
	if err != nil {
		return result{}, err
	}
	if _, err := r.api.Deploy(ctx, r.ps.ByName("app"), rel.ID); err != nil {
		return result{}, err
	}
	return result{Message: fmt.Sprintf("Deploying v%d.", rel.Version)}, nil
}

func (s *Server) addRoute(ctx context.Context, r *request) (result, error) {
	app, err := r.api.App(ctx, r.ps.ByName("app"))
	if err != nil {
		return result{}, err
	}
	rt := &controller.Route{Type: r.PostFormValue("type"), Service: strings.TrimSpace(r.PostFormValue("service"))}
	if rt.Service == "" {
		rt.Service = app.Name + "-web"
	}
	switch rt.Type {
	case "http":
		rt.Domain = strings.TrimSpace(r.PostFormValue("domain"))
		if rt.Domain == "" {
			return result{}, badInput("An HTTP route needs a domain.")
		}
	case "tcp":
		if p := strings.TrimSpace(r.PostFormValue("port")); p != "" {
			if rt.Port, err = strconv.Atoi(p); err != nil {
				return result{}, badInput("The port must be a number.")
			}
		}
	default:
		return result{}, badInput("A route is http or tcp.")
	}
	if err := r.api.CreateRoute(ctx, app.ID, rt); err != nil {
		return result{}, err
	}
	if rt.Type == "tcp" {
		return result{Message: fmt.Sprintf("Added TCP port %d.", rt.Port)}, nil
	}
	return result{Message: "Added " + rt.Domain + "."}, nil
}

func (s *Server) removeRoute(ctx context.Context, r *request) (result, error) {
	if err := r.api.DeleteRoute(ctx, r.ps.ByName("app"), r.ps.ByName("route")); err != nil {
		return result{}, err
	}
	return result{Message: "Removed the route."}, nil
}

func (s *Server) addResource(ctx context.Context, r *request) (result, error) {
	app, err := r.api.App(ctx, r.ps.ByName("app"))
	if err != nil {
		return result{}, err
	}
	provider := r.PostFormValue("provider")
	if provider == "" {
		return result{}, badInput("Choose a provider.")
	}
	if _, err := r.api.ProvisionResource(ctx, provider, &controller.ResourceRequest{Apps: []string{app.ID}}); err != nil {
		return result{}, err
	}
	return result{Message: "Added a " + provider + " resource: the app is redeploying with its env."}, nil
}

package dashboard

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/openflynn/flynn/controller"
	"github.com/openflynn/flynn/controller/client"
	"github.com/openflynn/flynn/controller/controllertest"
	"github.com/openflynn/flynn/logaggregator"
	logclient "github.com/openflynn/flynn/logaggregator/client"
)

const testKey = "controller-key-of-the-test"

// browser is a test's view of the dashboard: an HTTPS client with a
// cookie jar that follows no redirect, so each answer can be looked at.
type browser struct {
	t    *testing.T
	base string
	hc   *http.Client
	csrf string
}

// newDashboard serves a dashboard over HTTPS (its cookie is Secure) in
// front of a real controller on a fresh database.
func newDashboard(t *testing.T) (*browser, *client.Client) {
	return newDashboardWith(t, nil)
}

// newDashboardWith is newDashboard whose controller reads apps' logs from
// logs.
func newDashboardWith(t *testing.T, logs *fakeLogs) (*browser, *client.Client) {
	opts := controllertest.Options{
		Key:                 testKey,
		CompleteDeployments: func(*controller.Deployment) bool { return true },
	}
	if logs != nil {
		opts.Logs = logs
	}
	ctrl := controllertest.New(t, postgres.Server(t).NewDatabase(t), opts)
	d, err := New(Config{
		Controller:    func(key string) *client.Client { return client.New(ctrl.HTTP.URL, key) },
		SessionSecret: "a-secret-for-the-tests",
		GitPort:       2222,
	}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewTLSServer(d.Handler())
	t.Cleanup(func() { srv.CloseClientConnections(); srv.Close() })
	jar, _ := cookiejar.New(nil)
	hc := srv.Client()
	hc.Jar = jar
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &browser{t: t, base: srv.URL, hc: hc}, ctrl.Client()
}

func (b *browser) do(method, path string, form url.Values, header http.Header) (*http.Response, string) {
	b.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, b.base+path, body)
	if err != nil {
		b.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := b.hc.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp, string(out)
}

// get reads a page and remembers its CSRF token.
func (b *browser) get(path string) (*http.Response, string) {
	b.t.Helper()
	resp, body := b.do("GET", path, nil, nil)
	if i := strings.Index(body, `name="csrf-token" content="`); i >= 0 {
		rest := body[i+len(`name="csrf-token" content="`):]
		b.csrf = rest[:strings.IndexByte(rest, '"')]
	}
	return resp, body
}

// post submits a form as the page's script does (JSON answer).
func (b *browser) post(path string, form url.Values) (*http.Response, string) {
	b.t.Helper()
	form.Set(csrfField, b.csrf)
	return b.do("POST", path, form, http.Header{scriptHeader: {"1"}})
}

func (b *browser) signIn(key string) *http.Response {
	b.t.Helper()
	resp, _ := b.do("POST", "/login", url.Values{"key": {key}}, nil)
	return resp
}

func sessionCookieOf(resp *http.Response) *http.Cookie {
	for _, c := range resp.Cookies() {
		if c.Name == CookieName && c.Value != "" {
			return c
		}
	}
	return nil
}

func TestSignIn(t *testing.T) {
	b, _ := newDashboard(t)
	if resp, _ := b.get("/"); resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/login" {
		t.Fatalf("GET / signed out = %d %s, want 303 to /login", resp.StatusCode, resp.Header.Get("Location"))
	}
	resp := b.signIn("wrong-key")
	if resp.StatusCode != http.StatusUnauthorized || sessionCookieOf(resp) != nil {
		t.Fatalf("a wrong key: %d, session cookie %v; want 401 and none", resp.StatusCode, sessionCookieOf(resp))
	}
	resp = b.signIn(testKey)
	c := sessionCookieOf(resp)
	if resp.StatusCode != http.StatusSeeOther || c == nil {
		t.Fatalf("the controller key: %d, cookie %v; want 303 and a session", resp.StatusCode, c)
	}
	if !c.HttpOnly || !c.Secure || c.SameSite != http.SameSiteStrictMode {
		t.Errorf("session cookie %+v: want HttpOnly, Secure, SameSite=Strict", c)
	}
	if strings.Contains(c.Value, testKey) {
		t.Error("the cookie shows the key")
	}
	resp, body := b.get("/")
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, "<h1>Apps</h1>") {
		t.Fatalf("GET / signed in = %d:\n%s", resp.StatusCode, body)
	}
	for _, h := range []string{"Content-Security-Policy", "X-Frame-Options"} {
		if resp.Header.Get(h) == "" {
			t.Errorf("no %s header", h)
		}
	}
	if resp, _ := b.post("/logout", url.Values{}); resp.StatusCode != http.StatusOK {
		t.Fatalf("logout = %d", resp.StatusCode)
	}
	if resp, _ := b.get("/"); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("after sign-out GET / = %d, want 303 to /login", resp.StatusCode)
	}
}

func TestChangesNeedTokenAndOrigin(t *testing.T) {
	b, api := newDashboard(t)
	b.signIn(testKey)
	b.get("/")
	form := url.Values{"name": {"csrf-victim"}}
	for _, tc := range []struct {
		name   string
		form   url.Values
		header http.Header
	}{
		{"no token", url.Values{"name": {"csrf-victim"}}, nil},
		{"wrong token", url.Values{"name": {"csrf-victim"}, csrfField: {"forged"}}, nil},
		{"another site, with the token", url.Values{"name": {"csrf-victim"}, csrfField: {b.csrf}}, http.Header{"Origin": {"https://evil.example"}, "Sec-Fetch-Site": {"cross-site"}}},
	} {
		resp, body := b.do("POST", "/apps", tc.form, tc.header)
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("%s: POST /apps = %d %s, want 403", tc.name, resp.StatusCode, body)
		}
	}
	if _, err := api.App(context.Background(), "csrf-victim"); err == nil {
		t.Fatal("a refused request created the app")
	}
	if resp, body := b.post("/apps", form); resp.StatusCode != http.StatusOK || !strings.Contains(body, `"location":"/apps/csrf-victim"`) {
		t.Fatalf("POST /apps with the token = %d %s", resp.StatusCode, body)
	}
}

func TestAppPage(t *testing.T) {
	b, api := newDashboard(t)
	ctx := context.Background()
	key, err := api.CreateAPIKey(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	b.signIn(key.Secret)
	b.get("/")
	if resp, body := b.post("/apps", url.Values{"name": {"web1"}}); resp.StatusCode != http.StatusOK {
		t.Fatalf("create = %d %s", resp.StatusCode, body)
	}
	for _, v := range []string{"one", "two"} {
		if resp, body := b.post("/apps/web1/env", url.Values{"name": {"GREETING"}, "value": {v}}); resp.StatusCode != http.StatusOK || !strings.Contains(body, "is deploying") {
			t.Fatalf("env set = %d %s", resp.StatusCode, body)
		}
	}
	if resp, body := b.post("/apps/web1/env", url.Values{"name": {"1BAD"}, "value": {"x"}}); resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "1BAD") {
		t.Errorf("a bad name = %d %s, want 400 naming it", resp.StatusCode, body)
	}
	resp, body := b.get("/apps/web1")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("app page = %d", resp.StatusCode)
	}
	for _, want := range []string{
		"v2", "env ~GREETING", "env +GREETING", "by alice", "Roll back to v1",
		"git remote add flynn ssh://git@127.0.0.1:2222/web1.git",
		`<details class="value"><summary>Reveal</summary><code>two</code>`,
	} {
		if !strings.Contains(html.UnescapeString(body), want) {
			t.Errorf("the app page lacks %q", want)
		}
	}
	// A section alone, as the script asks for it.
	resp, sec := b.do("GET", "/apps/web1?section=releases", nil, nil)
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(strings.TrimSpace(sec), `<section data-section="releases"`) || strings.Contains(sec, "<html") {
		t.Errorf("?section=releases = %d:\n%s", resp.StatusCode, sec)
	}
	if resp, _ := b.do("GET", "/apps/web1?section=nope", nil, nil); resp.StatusCode != http.StatusNotFound {
		t.Errorf("?section=nope = %d, want 404", resp.StatusCode)
	}

	// Roll back to v1.
	rels, err := api.AppReleases(ctx, "web1")
	if err != nil {
		t.Fatal(err)
	}
	var v1 *controller.Release
	for _, r := range rels {
		if r.Version == 1 {
			v1 = r
		}
	}
	if resp, body := b.post("/apps/web1/deploy", url.Values{"release": {v1.ID}}); resp.StatusCode != http.StatusOK {
		t.Fatalf("rollback = %d %s", resp.StatusCode, body)
	}
	app, err := api.App(ctx, "web1")
	if err != nil || app.ReleaseID != v1.ID {
		t.Fatalf("after the rollback the app runs %v (%v), want v1 %s", app, err, v1.ID)
	}
	// A newer release is deployed again, not "rolled back to".
	if _, body := b.get("/apps/web1"); !strings.Contains(body, ">Deploy v2<") || strings.Contains(body, "Roll back to v2") {
		t.Errorf("after the rollback v2's button is not \"Deploy v2\"")
	}

	// Routes: add and remove.
	if resp, body := b.post("/apps/web1/routes", url.Values{"type": {"http"}, "domain": {"www.web1.test"}}); resp.StatusCode != http.StatusOK {
		t.Fatalf("add route = %d %s", resp.StatusCode, body)
	}
	routes, err := api.AppRoutes(ctx, "web1")
	if err != nil || len(routes) != 1 || routes[0].Domain != "www.web1.test" || routes[0].Service != "web1-web" {
		t.Fatalf("routes = %+v, %v", routes, err)
	}
	if resp, body := b.post("/apps/web1/routes/"+routes[0].ID+"/delete", url.Values{}); resp.StatusCode != http.StatusOK {
		t.Fatalf("remove route = %d %s", resp.StatusCode, body)
	}

	// Delete: only with the name typed.
	if resp, _ := b.post("/apps/web1/delete", url.Values{"confirm": {"web"}}); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("delete with the wrong name = %d, want 400", resp.StatusCode)
	}
	if resp, body := b.post("/apps/web1/delete", url.Values{"confirm": {"web1"}}); resp.StatusCode != http.StatusOK {
		t.Fatalf("delete = %d %s", resp.StatusCode, body)
	}
	if _, err := api.App(ctx, "web1"); err == nil {
		t.Error("the app is still there")
	}
}

// TestPlainForms: without the script a form posts, the server sends the
// browser back with the outcome in a flash, shown once.
func TestPlainForms(t *testing.T) {
	b, _ := newDashboard(t)
	b.signIn(testKey)
	b.get("/")
	resp, _ := b.do("POST", "/apps", url.Values{"name": {"Bad Name"}, csrfField: {b.csrf}}, http.Header{"Referer": {b.base + "/"}})
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/" {
		t.Fatalf("a refused form = %d to %q, want 303 back to /", resp.StatusCode, resp.Header.Get("Location"))
	}
	_, body := b.get("/")
	if !strings.Contains(body, `class="status error"`) {
		t.Errorf("the error is not shown:\n%s", body)
	}
	if _, body := b.get("/"); strings.Contains(body, `class="status error"`) {
		t.Error("the flash shows twice")
	}
}

// TestLive: a change of the app's objects reaches its page's event stream.
func TestLive(t *testing.T) {
	b, api := newDashboard(t)
	b.signIn(testKey)
	b.get("/")
	ctx := context.Background()
	app := &controller.App{Name: "live1"}
	if err := api.CreateApp(ctx, app); err != nil {
		t.Fatal(err)
	}
	rctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(rctx, "GET", b.base+"/live?app="+app.ID, nil)
	req.Header.Set("Accept", "text/event-stream")
	resp, err := b.hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/live = %d", resp.StatusCode)
	}
	if _, err := api.PatchRelease(ctx, app.ID, controller.ReleasePatch{Env: &controller.EnvPatch{Set: map[string]string{"A": "1"}}}); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4096)
	var got strings.Builder
	for !strings.Contains(got.String(), "event: change") {
		n, err := resp.Body.Read(buf)
		if err != nil {
			t.Fatalf("stream ended before a change event (%v); read %q", err, got.String())
		}
		got.Write(buf[:n])
	}
	if strings.Contains(got.String(), `"A"`) || strings.Contains(got.String(), "\"1\"") {
		t.Errorf("the live stream carries the event's data: %q", got.String())
	}
}

// TestSystemAppReadOnly: a platform app is shown without the controls a
// person's key could not use anyway.
func TestSystemAppReadOnly(t *testing.T) {
	b, api := newDashboard(t)
	ctx := context.Background()
	app := &controller.App{Name: "platform1", System: true}
	if err := api.CreateApp(ctx, app); err != nil {
		t.Fatal(err)
	}
	if _, err := api.PatchRelease(ctx, app.ID, controller.ReleasePatch{Env: &controller.EnvPatch{Set: map[string]string{"SECRET": "x"}}}); err != nil {
		t.Fatal(err)
	}
	b.signIn(testKey)
	resp, body := b.get("/apps/platform1")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("system app page = %d", resp.StatusCode)
	}
	if strings.Contains(body, `method="post" action="/apps/platform1`) {
		t.Errorf("the system app's page has forms that change it:\n%s", body)
	}
	if !strings.Contains(body, "SECRET") {
		t.Error("the system app's env names are not shown")
	}
}

// fakeLogs is an app's log: three lines, then the stream ends; it keeps
// the options each read was asked with.
type fakeLogs struct {
	mu    sync.Mutex
	asked []logaggregator.ReadOptions
}

func (f *fakeLogs) Read(_ context.Context, appID string, opts logaggregator.ReadOptions) (*logclient.Stream, error) {
	f.mu.Lock()
	f.asked = append(f.asked, opts)
	f.mu.Unlock()
	var buf bytes.Buffer
	for seq := uint64(1); seq <= 3; seq++ {
		if seq <= opts.After {
			continue
		}
		l := logaggregator.Line{Seq: seq, AppID: appID, ProcessType: "web", JobID: "host-job1", Stream: logaggregator.StreamStdout, Data: fmt.Sprintf("line %d\n", seq)}
		if err := json.NewEncoder(&buf).Encode(l); err != nil {
			return nil, err
		}
	}
	return logclient.NewStream(io.NopCloser(&buf)), nil
}

// TestAppLog: the log follows as SSE lines whose ids resume it: a browser
// that reconnects gets only the lines it lacks.
func TestAppLog(t *testing.T) {
	logs := &fakeLogs{}
	b, api := newDashboardWith(t, logs)
	if err := api.CreateApp(context.Background(), &controller.App{Name: "logged"}); err != nil {
		t.Fatal(err)
	}
	b.signIn(testKey)
	resp, body := b.do("GET", "/apps/logged/log?process_type=web", nil, http.Header{"Accept": {"text/event-stream"}})
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, "retry: 250") {
		t.Fatalf("log = %d:\n%s", resp.StatusCode, body)
	}
	for _, want := range []string{"id: 1\nevent: line\n", `"text":"line 3"`, `"type":"web"`} {
		if !strings.Contains(body, want) {
			t.Errorf("the log stream lacks %q:\n%s", want, body)
		}
	}
	_, body = b.do("GET", "/apps/logged/log", nil, http.Header{"Accept": {"text/event-stream"}, "Last-Event-Id": {"2"}})
	if strings.Contains(body, "line 1") || !strings.Contains(body, "line 3") {
		t.Errorf("resumed after line 2:\n%s", body)
	}
	logs.mu.Lock()
	defer logs.mu.Unlock()
	if len(logs.asked) != 2 || logs.asked[0].ProcessType != "web" || !logs.asked[0].Follow || logs.asked[1].After != 2 {
		t.Errorf("the controller was asked %+v", logs.asked)
	}
}

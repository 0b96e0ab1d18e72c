package cluster

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/openflynn/flynn/controller"
	"github.com/openflynn/flynn/pkg/poll"
	"github.com/openflynn/flynn/pkg/random"
	"github.com/openflynn/flynn/pkg/tlspin"
	"github.com/openflynn/flynn/test/browser"
)

const dashboardURL = "https://dashboard." + domain

// TestDashboard drives the dashboard of a running cluster in headless
// Chromium, through the router's HTTPS and the cluster's certificate, as
// a person would: a wrong key is refused, the admin key signs in, an app
// is created, deployed, scaled to 2 (both jobs appear without a reload),
// given an env var (a new release appears), rolled back and deleted; a
// form posted from another site changes nothing. Every page's controls
// have accessible names, and the app and cluster pages are saved as
// screenshots (test artefacts). It prints the benchmarks of the issue:
// the app page's first load, and a scale click until both jobs show as
// up against `flynn scale`.
func TestDashboard(t *testing.T) {
	repo := clusterRepo(t)
	if _, err := os.Stat("/var/lib/flynn/cluster-add"); err != nil {
		downAtEnd(t, repo)
	}
	script(t, repo, 25*time.Minute, "script/cluster", "up")
	ca := readClusterAdd(t, repo)
	api := controllerClient(ca.key)

	// The browser trusts the cluster's certificate alone, by its key:
	// fetched here and checked against the pin bootstrap printed.
	ctx := browser.New(t, browser.Options{
		HostResolverRules: "MAP *." + domain + " 127.0.0.1",
		SPKIPins:          []string{dashboardSPKIPin(t, ca.pin)},
	})
	run := func(what string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		actx, cancel := context.WithTimeout(ctx, 90*time.Second)
		defer cancel()
		if err := chromedp.Do(actx, actions...); err != nil {
			browser.Screenshot(t, ctx, "dashboard-failed")
			t.Fatalf("%s: %v", what, err)
		}
	}
	// navigate loads a page and waits for sel. Chromium aborts a load when
	// the machine's network interfaces change, which they do here each
	// time Docker starts a job: such a load is tried again.
	navigate := func(what, url, sel string) {
		t.Helper()
		for attempt := 1; ; attempt++ {
			actx, cancel := context.WithTimeout(ctx, 90*time.Second)
			err := chromedp.Do(actx, chromedp.Navigate(url), chromedp.WaitVisible(sel))
			cancel()
			if err == nil {
				return
			}
			if !strings.Contains(err.Error(), "ERR_NETWORK_CHANGED") || attempt == 5 {
				browser.Screenshot(t, ctx, "dashboard-failed")
				t.Fatalf("%s: %v", what, err)
			}
			t.Logf("%s: %v; again", what, err)
		}
	}
	waitFor := func(what, expr string) time.Duration {
		t.Helper()
		start := time.Now()
		for {
			_, err := chromedp.Run(ctx, chromedp.Poll[bool](expr, chromedp.WithPollingTimeout(90*time.Second-time.Since(start)), chromedp.WithPollingInterval(50*time.Millisecond)))
			if err == nil {
				return time.Since(start)
			}
			// The page navigating (as it does after a delete) ends the
			// poll with a DevTools server error (-32000: "navigated or
			// closed", "cannot find context"): it goes on in the new page.
			if !strings.Contains(err.Error(), "(-32000)") || time.Since(start) > 80*time.Second {
				browser.Screenshot(t, ctx, "dashboard-failed")
				t.Fatalf("%s: %v", what, err)
			}
		}
	}
	checkLabels := func(page string) {
		t.Helper()
		missing, err := browser.UnlabeledControls(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range missing {
			t.Errorf("%s: a %s without an accessible name: %s", page, c.Role, c.HTML)
		}
	}

	t.Log("a wrong key is refused and starts no session")
	navigate("the sign-in page", dashboardURL+"/", `#key`)
	run("sign in with a wrong key",
		chromedp.SendKeys(`#key`, "not-a-key"),
		chromedp.Click(`form[action="/login"] button`),
		chromedp.WaitVisible(`#status.error`),
	)
	if msg := text(t, ctx, `#status`); !strings.Contains(msg, "refused that key") {
		t.Errorf("after a wrong key the page says %q", msg)
	}
	cookies, err := chromedp.Call(ctx, network.GetCookies, network.GetCookiesParams{URLs: []string{dashboardURL + "/"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cookies.Cookies {
		if c.Name == "flynn_session" {
			t.Fatal("a wrong key got a session cookie")
		}
	}
	checkLabels("sign-in page")

	t.Log("sign in with the admin key")
	run("sign in",
		chromedp.SendKeys(`#key`, ca.key),
		chromedp.Click(`form[action="/login"] button`),
		chromedp.WaitVisible(`#new-app`),
	)
	cookies, err = chromedp.Call(ctx, network.GetCookies, network.GetCookiesParams{URLs: []string{dashboardURL + "/"}})
	if err != nil {
		t.Fatal(err)
	}
	var session *network.Cookie
	for _, c := range cookies.Cookies {
		if c.Name == "flynn_session" {
			session = c
		}
	}
	if session == nil || !session.HTTPOnly || !session.Secure || session.SameSite != network.CookieSameSiteStrict {
		t.Fatalf("session cookie %+v: want HttpOnly, Secure, SameSite=Strict", session)
	}
	checkLabels("apps page")

	name := "dash-" + random.Hex(3)
	t.Cleanup(func() { _, _ = api.DeleteApp(context.Background(), name) })
	t.Logf("create %s", name)
	run("create an app",
		chromedp.SendKeys(`#new-app`, name),
		chromedp.Click(`form[action="/apps"] button`),
		chromedp.WaitVisible(`#formation-h`),
	)
	waitFor("the app page", fmt.Sprintf(`document.querySelector("h1").textContent.trim() === %q`, name))

	// A push would make the first release; the test makes one with the
	// stack image, as the other cluster tests do, and the page shows its
	// job coming up by itself.
	app, err := api.App(t.Context(), name)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`window.notReloaded = true`)); err != nil {
		t.Fatal(err)
	}
	releaseStack(t, api, repo, app, map[string]controller.ProcessType{"web": {Cmd: []string{"python3", "-c", webServer}}}, map[string]int{"web": 1})
	waitFor("web=1 up on the page", upJobs(1))

	t.Log("scale web to 2 and watch both jobs come up")
	run("scale", chromedp.SetValue(`#scale-web`, "2"))
	clicked := time.Now()
	run("click scale", chromedp.Click(`form[action$="/scale"] button`))
	waitFor("both web jobs up on the page", upJobs(2))
	scaleClick := time.Since(clicked)
	if reloaded, _ := chromedp.Run(ctx, chromedp.Evaluate[bool](`window.notReloaded !== true`)); reloaded {
		t.Error("the page reloaded to show the jobs")
	}
	browser.Screenshot(t, ctx, "dashboard-app")

	t.Log("set an env var: a new release")
	run("set env",
		chromedp.SendKeys(`#env-name`, "GREETING"),
		chromedp.SendKeys(`#env-value`, "hello"),
		chromedp.Click(`form[action$="/env"] button`),
	)
	waitFor("v2 deployed with the new var", deployed("v2", "+GREETING"))

	t.Log("roll back to v1")
	run("roll back", chromedp.Click(`form.rollback button`))
	waitFor("v1 deployed again", deployed("v1", "first release"))
	checkLabels("app page")
	run("narrow screen", chromedp.EmulateViewport(375, 812))
	browser.Screenshot(t, ctx, "dashboard-app-375px")
	if wide, _ := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.documentElement.scrollWidth > 375`)); wide {
		t.Error("at 375 px the app page scrolls sideways")
	}
	run("wide screen", chromedp.EmulateViewport(1280, 900))

	t.Log("the cluster page")
	navigate("the cluster page", dashboardURL+"/cluster", `#nodes-h`)
	waitFor("a node up", `document.querySelectorAll("[data-section=nodes] .state.up").length >= 1`)
	checkLabels("cluster page")
	browser.Screenshot(t, ctx, "dashboard-cluster")

	t.Log("a form posted from another site changes nothing")
	victim := "csrf-" + random.Hex(3)
	evil := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintf(w, `<!doctype html><form id="f" method="post" action="%s/apps"><input name="name" value="%s"></form><script>document.getElementById("f").submit()</script>`, dashboardURL, victim)
	}))
	defer evil.Close()
	navigate("the other site", evil.URL, `body`)
	waitFor("the dashboard's answer", `location.host === "dashboard.`+domain+`"`)
	if _, err := api.App(t.Context(), victim); err == nil {
		t.Error("a form from another site created an app")
	}

	t.Log("delete the app, confirmed by its name")
	navigate("the app page", dashboardURL+"/apps/"+name, `#confirm`)
	run("delete",
		chromedp.SendKeys(`#confirm`, name),
		chromedp.Click(`form[action="/apps/`+name+`/delete"] button`),
	)
	waitFor("back on the apps page", `location.pathname === "/"`)
	if _, err := api.App(t.Context(), name); err == nil {
		t.Error("the app is still there after the delete")
	}

	// Benchmarks: the app page's first load with an empty cache, and a
	// scale from the CLI against the click above.
	bench := deployWeb(t, api, repo, "dash-bench", 1)
	if _, err := chromedp.Call(ctx, network.ClearBrowserCache, cdp.Empty{}); err != nil {
		t.Fatal(err)
	}
	navigate("first load", dashboardURL+"/apps/"+bench.Name, `#formation-h`)
	load, err := browser.PageLoad(ctx)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Printf("BENCH dashboard app page first load: %d bytes in %d requests, interactive in %s, loaded in %s\n",
		load.TransferBytes, load.Requests, load.DOMInteractive.Round(time.Millisecond), load.Load.Round(time.Millisecond))
	// The CLI's scale starts from web=1 up, as the controller reports it.
	if err := poll.Wait(t.Context(), 2*time.Minute, func() error {
		jobs, err := api.ActiveJobs(t.Context(), bench.ID)
		if err != nil {
			return err
		}
		for _, j := range jobs {
			if j.State == "up" {
				return nil
			}
		}
		return fmt.Errorf("no web job of %s up: %d jobs", bench.Name, len(jobs))
	}); err != nil {
		t.Fatal(err)
	}
	cli := newCLI(t, repo)
	start := time.Now()
	cli.run(t, "-a", bench.Name, "scale", "web=2")
	cliScale := time.Since(start)
	fmt.Printf("BENCH scale web 1→2: dashboard click to both shown up %s, `flynn scale` %s (%.2fx)\n",
		scaleClick.Round(time.Millisecond), cliScale.Round(time.Millisecond), scaleClick.Seconds()/cliScale.Seconds())

	// The graphs draw what the routers and the nodes report: requests to
	// the app show as a rate once two readings (30 s apart) span them.
	if err := api.CreateRoute(t.Context(), bench.ID, &controller.Route{Type: "http", Domain: "dash-bench." + domain, Service: bench.Name + "-web"}); err != nil {
		t.Fatal(err)
	}
	requests := startRequests("127.0.0.1", "dash-bench."+domain, 2)
	defer requests.stop()
	page := sessionGetter(t, ctx, ca.pin)
	waitGraph := func(path, label string) {
		t.Helper()
		var last string
		err := poll.Wait(t.Context(), 2*time.Minute, func() error {
			body, err := page(path)
			if err != nil {
				return err
			}
			m := regexp.MustCompile(`aria-label="` + regexp.QuoteMeta(label) + `, last hour: latest ([^"]+)"`).FindStringSubmatch(body)
			if m == nil {
				return fmt.Errorf("no chart %q with a latest value in %s", label, path)
			}
			last = m[1]
			if strings.HasPrefix(last, "0 ") {
				return fmt.Errorf("%s: latest %s", label, last)
			}
			return nil
		})
		if err != nil {
			t.Errorf("the graph %q: %v", label, err)
			return
		}
		t.Logf("graph %q: latest %s", label, last)
	}
	waitGraph("/apps/dash-bench?section=graphs", "Requests per second")
	waitGraph("/cluster?section=nodes", "Memory of each node&#39;s jobs")
}

// sessionGetter returns a function that reads a dashboard page with the
// browser's session, over the router's HTTPS pinned to the cluster's
// certificate.
func sessionGetter(t *testing.T, ctx context.Context, pin string) func(path string) (string, error) {
	t.Helper()
	cookies, err := chromedp.Call(ctx, network.GetCookies, network.GetCookiesParams{URLs: []string{dashboardURL + "/"}})
	if err != nil {
		t.Fatal(err)
	}
	var session string
	for _, c := range cookies.Cookies {
		if c.Name == "flynn_session" {
			session = c.Value
		}
	}
	hc := &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{
		TLSClientConfig: tlspin.Config(pin, "dashboard."+domain),
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, network, "127.0.0.1:443")
		},
	}}
	return func(path string) (string, error) {
		req, _ := http.NewRequest("GET", dashboardURL+path, nil)
		req.AddCookie(&http.Cookie{Name: "flynn_session", Value: session})
		resp, err := hc.Do(req)
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			return "", fmt.Errorf("GET %s: %d", path, resp.StatusCode)
		}
		return string(b), err
	}
}

// upJobs is a script that is true once the page's formation shows n web
// jobs up.
func upJobs(n int) string {
	return fmt.Sprintf(`document.querySelectorAll('[data-section=formation] ul[aria-label="web jobs"] li[data-state=up]').length === %d`, n)
}

// deployed is a script that is true once the page shows version as the
// current release, described with what, its deployment done and both web
// jobs of it up.
func deployed(version, what string) string {
	return fmt.Sprintf(`(() => {
		const c = document.querySelector(".releases li.current");
		const up = document.querySelector('[data-up="web"]');
		return !!c && c.querySelector("strong").textContent === %q && c.textContent.includes(%q) &&
			!c.querySelector(".tag.bad") && !document.querySelector(".deploying") && !!up && up.textContent === "2 of 2 up";
	})()`, version, what)
}

func text(t *testing.T, ctx context.Context, sel string) string {
	t.Helper()
	s, err := chromedp.Run(ctx, chromedp.Text(sel))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// dashboardSPKIPin fetches the certificate the router serves for the
// dashboard, checks it against the cluster's pin (of the whole
// certificate) and returns the pin of its public key, which is what
// Chromium takes.
func dashboardSPKIPin(t *testing.T, pin string) string {
	t.Helper()
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 10 * time.Second}, "tcp", "127.0.0.1:443", tlspin.Config(pin, "dashboard."+domain))
	if err != nil {
		t.Fatalf("the router's certificate for dashboard.%s: %v", domain, err)
	}
	defer conn.Close()
	return browser.SPKIPin(conn.ConnectionState().PeerCertificates[0])
}

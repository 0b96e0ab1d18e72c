package browser

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"image/png"
	"io"
	"log"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// formPage has one control of each kind with a name and one without; the
// unnamed ones are the only elements with a data-unlabeled attribute. It is
// taller than the window, to show that a screenshot covers the whole page.
const formPage = `<!doctype html>
<html lang="en"><head><title>form</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="/style.css">
</head>
<body>
<label for="named">App name</label><input id="named" type="text">
<button type="button">Deploy</button>
<input type="text" data-unlabeled="input">
<button type="button" data-unlabeled="button"></button>
<input type="hidden" name="csrf" value="x">
<div style="height: 2000px"></div>
<script>console.error("boom: " + 6 * 7);</script>
</body></html>`

// newFormServer serves formPage and a style sheet, so that a load has more
// than one request. The page's icon is inline: Chromium fetches /favicon.ico
// some time after the load, and that request would show in PageLoad or not
// depending on when it ran.
func newFormServer(t *testing.T) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		w.Write([]byte(formPage))
	})
	mux.HandleFunc("GET /style.css", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/css")
		w.Header().Set("Cache-Control", "no-store")
		w.Write([]byte("body { font-family: sans-serif; }\n"))
	})
	ts := httptest.NewServer(mux)
	t.Cleanup(ts.Close)
	return ts
}

// navigate loads url in ctx's tab, failing the test if it does not load.
func navigate(t *testing.T, ctx context.Context, url string) {
	t.Helper()
	tctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(tctx, chromedp.Navigate(url)); err != nil {
		t.Fatalf("navigating to %s: %v", url, err)
	}
}

func TestPage(t *testing.T) {
	ts := newFormServer(t)
	// Console errors go to a channel as well as to the log, so that the
	// test can wait for the one the page writes.
	logged := make(chan string, 100)
	ctx := New(t, Options{Logf: func(format string, args ...any) {
		line := fmt.Sprintf(format, args...)
		t.Log(line)
		select {
		case logged <- line:
		default: // the test has what it needs
		}
	}})
	navigate(t, ctx, ts.URL)

	t.Run("UnlabeledControls", func(t *testing.T) {
		got, err := UnlabeledControls(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var roles []string
		for _, c := range got {
			if !strings.Contains(c.HTML, "data-unlabeled") {
				t.Errorf("UnlabeledControls reported %s, which has a name", c)
			}
			roles = append(roles, c.Role)
		}
		if want := []string{"textbox", "button"}; strings.Join(roles, ",") != strings.Join(want, ",") {
			t.Errorf("UnlabeledControls roles = %q, want %q; controls: %v", roles, want, got)
		}
	})

	t.Run("Screenshot", func(t *testing.T) {
		t.Setenv(ArtifactsEnv, t.TempDir())
		path := Screenshot(t, ctx, t.Name())
		if !strings.HasPrefix(path, os.Getenv(ArtifactsEnv)) || !strings.HasSuffix(path, "TestPage_Screenshot.png") {
			t.Errorf("Screenshot path = %s, want TestPage_Screenshot.png in $%s", path, ArtifactsEnv)
		}
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.HasPrefix(data, []byte("\x89PNG\r\n\x1a\n")) {
			t.Fatalf("%s does not start with the PNG signature: % x", path, data[:min(len(data), 8)])
		}
		img, err := png.DecodeConfig(bytes.NewReader(data))
		if err != nil {
			t.Fatal(err)
		}
		// The page is 2000px tall, the window 900px.
		if img.Width != 1280 || img.Height < 2000 {
			t.Errorf("screenshot is %dx%d, want 1280 wide and the whole page (>= 2000) tall", img.Width, img.Height)
		}
	})

	t.Run("PageLoad", func(t *testing.T) {
		got, err := PageLoad(ctx)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("PageLoad = %+v", got)
		if got.TransferBytes < int64(len(formPage)) {
			t.Errorf("TransferBytes = %d, want at least the page's %d bytes", got.TransferBytes, len(formPage))
		}
		if got.Requests != 2 {
			t.Errorf("Requests = %d, want 2 (the page and its style sheet)", got.Requests)
		}
		if got.DOMInteractive <= 0 || got.DOMInteractive > 30*time.Second {
			t.Errorf("DOMInteractive = %v, want in (0, 30s]", got.DOMInteractive)
		}
		if got.Load < got.DOMInteractive {
			t.Errorf("Load = %v, want at least DOMInteractive %v", got.Load, got.DOMInteractive)
		}
	})

	t.Run("ConsoleError", func(t *testing.T) {
		// The page computes the message, so finding it proves the log shows
		// what the browser ran, not the page's source.
		const want = "boom: 42"
		var lines []string
		deadline := time.After(10 * time.Second)
		for {
			select {
			case line := <-logged:
				if strings.Contains(line, want) {
					return
				}
				lines = append(lines, line)
			case <-deadline:
				t.Fatalf("the page's console.error(%q) was not logged; logged: %q", want, lines)
			}
		}
	})

	t.Run("WaitVisible", func(t *testing.T) {
		if err := WaitVisible(ctx, chromedp.CSS("#named"), 10*time.Second); err != nil {
			t.Error(err)
		}
		err := WaitVisible(ctx, chromedp.CSS("#missing"), 200*time.Millisecond)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("WaitVisible(#missing) = %v, want a deadline error", err)
		}
	})
}

// newTLSServer serves a page over HTTPS with a self-signed certificate for
// *.flynn.test, as a cluster does, and returns the server and the
// certificate.
func newTLSServer(t *testing.T) (*httptest.Server, *x509.Certificate) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "dashboard.flynn.test"},
		DNSNames:     []string{"*.flynn.test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IsCA:         true,

		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Write([]byte(`<!doctype html><title>pinned</title><h1 id="ok">pinned</h1>`))
	}))
	// The unpinned browser rejects the certificate, which the server
	// would log to stderr; the test checks the browser's side instead.
	ts.Config.ErrorLog = log.New(io.Discard, "", 0)
	ts.TLS = &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}
	ts.StartTLS()
	t.Cleanup(ts.Close)
	return ts, cert
}

// TestSPKIPins shows that the pin is what makes the self-signed certificate
// acceptable: the same page fails to load without it.
func TestSPKIPins(t *testing.T) {
	ts, cert := newTLSServer(t)
	u, err := url.Parse(ts.URL)
	if err != nil {
		t.Fatal(err)
	}
	// The name is only in the certificate and the resolver rules, as a
	// cluster's is.
	dashboard := "https://dashboard.flynn.test:" + u.Port() + "/"
	const rules = "MAP *.flynn.test 127.0.0.1"

	t.Run("pinned", func(t *testing.T) {
		ctx := New(t, Options{HostResolverRules: rules, SPKIPins: []string{SPKIPin(cert)}})
		navigate(t, ctx, dashboard)
		title, err := chromedp.Run(ctx, chromedp.Title())
		if err != nil {
			t.Fatal(err)
		}
		if title != "pinned" {
			t.Errorf("title = %q, want %q", title, "pinned")
		}
	})

	t.Run("not pinned", func(t *testing.T) {
		ctx := New(t, Options{HostResolverRules: rules})
		tctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		err := chromedp.Do(tctx, chromedp.Navigate(dashboard))
		var loadErr *chromedp.LoadError
		if !errors.As(err, &loadErr) || !strings.HasPrefix(loadErr.ErrorText, "net::ERR_CERT_") {
			t.Fatalf("navigating without the pin: err = %v, want a net::ERR_CERT_* load error", err)
		}
		t.Logf("without the pin: %v", err)
	})
}

func TestSPKIPin(t *testing.T) {
	ts := httptest.NewTLSServer(http.NotFoundHandler())
	defer ts.Close()
	// The pin of httptest's fixed certificate, computed with the openssl
	// pipeline that Options.SPKIPins shows.
	const want = "OJ+e3lINvDPSrrxIkkatieIh0ewV9pPDSMWLCCGTZ6o="
	got := SPKIPin(ts.Certificate())
	if got != want {
		t.Errorf("SPKIPin = %q, want %q", got, want)
	}
}

// TestCleanup shows that no chromium process outlives the test, whether the
// browser closes normally or has crashed.
func TestCleanup(t *testing.T) {
	for _, tc := range []struct {
		name  string
		crash bool
	}{
		{name: "closed", crash: false},
		{name: "crashed", crash: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// New's profile is a t.TempDir too, so it is under root; this
			// cleanup, registered first, runs after New's.
			root := filepath.Dir(t.TempDir())
			t.Cleanup(func() {
				if pids := processesUsing(root); len(pids) > 0 {
					t.Errorf("chromium processes %v still run after the test", pids)
				}
			})
			ctx := New(t, Options{})
			if got := processesUsing(root); len(got) == 0 {
				t.Fatalf("found no chromium process using a profile under %s while the browser runs", root)
			}
			if tc.crash {
				if err := chromedp.FromContext(ctx).Browser.Process().Kill(); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}

func TestNames(t *testing.T) {
	for _, tc := range []struct {
		name    string
		cmdline string
		want    bool
	}{
		{name: "argv", cmdline: "chromium\x00--user-data-dir=/tmp/T/002\x00about:blank\x00", want: true},
		{name: "rewritten title", cmdline: "chromium --type=renderer --user-data-dir=/tmp/T/002/profile --no-sandbox\x00", want: true},
		{name: "last", cmdline: "chromium --user-data-dir=/tmp/T/002", want: true},
		{name: "crash handler", cmdline: "chrome_crashpad_handler\x00--database=/tmp/T/002/config/chromium/Crash Reports\x00", want: true},
		{name: "longer name", cmdline: "chromium --user-data-dir=/tmp/T/0021\x00", want: false},
		{name: "other directory", cmdline: "chromium --user-data-dir=/tmp/U/002\x00", want: false},
		{name: "none", cmdline: "chromium\x00about:blank\x00", want: false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := names([]byte(tc.cmdline), "/tmp/T/002"); got != tc.want {
				t.Errorf("names(%q) = %v, want %v", tc.cmdline, got, tc.want)
			}
		})
	}
}

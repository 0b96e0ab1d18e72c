// Package browser is test support: it starts a headless Chromium for a test
// and gives the checks that end-to-end tests of a web page commonly need on
// top of github.com/chromedp/chromedp: screenshots kept as test artefacts,
// controls that lack an accessible name, and what a page load cost.
//
// A test calls New, which returns a chromedp context bound to the test, and
// drives the page with chromedp:
//
//	ctx := browser.New(t, browser.Options{SPKIPins: []string{pin}})
//	if err := chromedp.Do(ctx, chromedp.Navigate(url)); err != nil {
//		t.Fatal(err)
//	}
//	browser.Screenshot(t, ctx, "dashboard")
//
// Its files are not _test.go files so that the tests of other packages
// (test/cluster) can import it; nothing outside tests should.
package browser

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/openflynn/flynn/pkg/testdeps"
)

// debianPackage is what provides the browser; script/install-deps installs it.
const debianPackage = "chromium"

// Options configures the browser that New starts. The zero value is a
// 1280x900 headless Chromium found in PATH that trusts only the system's
// certificate authorities.
type Options struct {
	// Exec is the Chromium binary. Default: $CHROMIUM, else "chromium" or
	// "chromium-browser" from PATH.
	Exec string

	// Width and Height are the window size in CSS pixels: the viewport the
	// page lays out in, and the width of a Screenshot. Default: 1280 and
	// 900.
	Width, Height int

	// HostResolverRules is passed as --host-resolver-rules, so that names
	// which no DNS server knows reach the cluster, for example
	// "MAP *.flynn.test 127.0.0.1". Several rules are separated by commas.
	// Default: none, the system resolver answers.
	HostResolverRules string

	// SPKIPins are the certificates, by public key, that the browser accepts
	// even though no trusted authority signed them; it is passed as
	// --ignore-certificate-errors-spki-list. Each pin is the standard base64
	// (with padding) of the SHA-256 of a certificate's DER
	// SubjectPublicKeyInfo, as RFC 7469 section 2.4 defines it and SPKIPin
	// computes; the same as
	//
	//	openssl x509 -pubkey -noout -in cert.pem | openssl pkey -pubin -outform der |
	//		openssl dgst -sha256 -binary | base64
	//
	// A connection is accepted when any certificate of the server's chain
	// has a pinned key, whatever else is wrong with the chain (unknown
	// authority, name mismatch): pin only keys the test made or the cluster
	// it started owns. Chromium ignores the flag without --user-data-dir,
	// which New always sets. Default: none.
	SPKIPins []string

	// Logf receives the page's console errors, its uncaught exceptions and
	// chromedp's own errors. Default: t.Logf. Tests of the harness set it to
	// see what it logs; New stops calling it before the test ends.
	Logf func(format string, args ...any)
}

// closeTimeout bounds how long the cleanup waits for Chromium to close
// gracefully before its context is cancelled, which kills it.
const closeTimeout = 10 * time.Second

// New starts a headless Chromium for the test and returns a chromedp context
// on a blank tab of it; pass it to chromedp.Do, chromedp.Run and the
// functions of this package. The browser has its own profile in a t.TempDir
// and is stopped, with every process it started, in t.Cleanup.
//
// When no Chromium is installed, New skips the test, or fails it when CI=true
// (see pkg/testdeps): CI must not pass without having run it.
//
// Chromium runs with --no-sandbox: the tests run as root, and Chromium
// refuses to start its sandbox as root. The pages it loads are the test's own.
func New(t testing.TB, opts Options) context.Context {
	t.Helper()
	exe := findChromium(t, opts.Exec)
	width, height := opts.Width, opts.Height
	if width == 0 {
		width = 1280
	}
	if height == 0 {
		height = 900
	}
	logf := opts.Logf
	if logf == nil {
		logf = t.Logf
	}
	log := &guardedLog{logf: logf}
	// Everything the browser writes goes under dir, and every process it
	// starts names dir in its command line.
	dir := t.TempDir()
	profile := filepath.Join(dir, "profile")
	var output syncBuffer

	flags := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(exe),
		// The new headless mode is the real browser without a window; the
		// old one is a separate implementation whose rendering differs.
		chromedp.Flag("headless", "new"),
		chromedp.NoSandbox,
		chromedp.WindowSize(width, height),
		chromedp.UserDataDir(profile),
		// A proxy taken from the environment would not know the names that
		// HostResolverRules maps, and the cluster is reached directly.
		chromedp.Flag("no-proxy-server", true),
		// Chromium starts its crash handler even with --disable-breakpad,
		// and keeps its database in $XDG_CONFIG_HOME/chromium, not in the
		// profile; --disable-crashpad-for-testing makes its network
		// service crash instead. So the handler gets the test's directory
		// too, where nothing is shared between tests and the leftover
		// check below finds it.
		chromedp.Env("XDG_CONFIG_HOME="+filepath.Join(dir, "config")),
		chromedp.CombinedOutput(&output),
	)
	if opts.HostResolverRules != "" {
		flags = append(flags, chromedp.Flag("host-resolver-rules", opts.HostResolverRules))
	}
	if len(opts.SPKIPins) > 0 {
		flags = append(flags, chromedp.Flag("ignore-certificate-errors-spki-list", strings.Join(opts.SPKIPins, ",")))
	}

	// Not t.Context(): it is cancelled before the cleanups run, which would
	// kill Chromium instead of letting the cleanup close it.
	allocCtx, allocCancel := chromedp.NewExecAllocator(context.Background(), flags...)
	// chromedp reports what it cannot handle (a malformed message, a lost
	// session) through its error logger, by default the log package.
	ctx, cancel := chromedp.NewContext(allocCtx, chromedp.WithErrorf(log.printf))

	consoleDone := make(chan struct{})
	stop := func() {
		closeCtx, closeCancel := context.WithTimeout(ctx, closeTimeout)
		if err := chromedp.Cancel(closeCtx); err != nil && !errors.Is(err, context.Canceled) {
			log.printf("browser: closing chromium: %v", err)
		}
		closeCancel()
		cancel()
		// The allocator's cancel waits until the main process has exited
		// and chromedp has stopped watching it.
		allocCancel()
		// After a graceful close nothing is left. After a crash, or a kill
		// when closing took too long, the zygotes and renderers of the
		// profile may still run, reparented to init.
		if n := killProcessesUsing(dir); n > 0 {
			log.printf("browser: killed %d chromium processes left running", n)
		}
		<-consoleDone
		if t.Failed() {
			if out := chromiumOutput(output.String()); out != "" {
				log.printf("browser: chromium output:\n%s", out)
			}
		}
		log.stop()
	}

	// Subscribe before anything runs in the tab, so that no console message
	// of the first navigation is lost. Console starts the browser.
	messages := chromedp.Console(ctx)
	if err := chromedp.Do(ctx); err != nil {
		close(consoleDone)
		stop()
		t.Fatalf("browser: starting %s: %v\n%s", exe, err, chromiumOutput(output.String()))
	}
	go func() {
		defer close(consoleDone)
		for m, err := range messages {
			if err != nil {
				return // the context ended: the test is over
			}
			if m.Type != chromedp.ConsoleError && !m.IsException() {
				continue
			}
			if m.URL == "" {
				log.printf("browser console: %s", m)
				continue
			}
			// The protocol counts lines from 0, editors from 1.
			log.printf("browser console: %s (%s:%d)", m, m.URL, m.Line+1)
		}
	}()
	t.Cleanup(stop)
	return ctx
}

// findChromium returns the browser binary that opts and the environment name,
// or stops the test when there is none.
func findChromium(t testing.TB, configured string) string {
	t.Helper()
	if configured == "" {
		configured = os.Getenv("CHROMIUM")
	}
	if configured != "" {
		// A binary that someone named on purpose and that is not there is a
		// mistake to report, not a missing dependency to skip.
		p, err := exec.LookPath(configured)
		if err != nil {
			t.Fatalf("browser: the configured chromium %q: %v", configured, err)
		}
		return p
	}
	var lookErr error
	for _, name := range []string{"chromium", "chromium-browser"} {
		p, err := exec.LookPath(name)
		if err == nil {
			return p
		}
		lookErr = errors.Join(lookErr, err)
	}
	testdeps.Missing(t, fmt.Sprintf("chromium (Debian package %q)", debianPackage), lookErr)
	return ""
}

// chromiumOutput returns what Chromium printed, less its complaints that it
// finds no D-Bus: there is none in a container or on CI, and the dozens of
// lines about it hide the ones that matter.
func chromiumOutput(out string) string {
	var kept []string
	for line := range strings.Lines(out) {
		if !strings.Contains(line, ":ERROR:dbus/") {
			kept = append(kept, line)
		}
	}
	return strings.TrimSpace(strings.Join(kept, ""))
}

// guardedLog forwards to a test's log until stop: testing panics when a
// goroutine logs after its test has completed, and chromedp's goroutines may
// report an error while they shut down.
type guardedLog struct {
	mu      sync.Mutex
	logf    func(format string, args ...any)
	stopped bool
}

func (l *guardedLog) printf(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.stopped {
		l.logf(format, args...)
	}
}

func (l *guardedLog) stop() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.stopped = true
}

// syncBuffer collects Chromium's output, which chromedp writes from its own
// goroutine while the cleanup may read it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

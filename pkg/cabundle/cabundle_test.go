package cabundle

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/openflynn/flynn/controller"
)

func TestEnvVarIsTheControllers(t *testing.T) {
	if EnvVar != controller.CACertsEnv {
		t.Errorf("EnvVar = %q, controller.CACertsEnv = %q: jobs would not find the certificates", EnvVar, controller.CACertsEnv)
	}
}

// tlsServer is a TLS server whose certificate is its own CA; its PEM is
// what an operator would hand the cluster.
func tlsServer(t *testing.T) (*httptest.Server, string) {
	t.Helper()
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok")) }))
	t.Cleanup(srv.Close)
	return srv, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}))
}

func lookupAll(env []string, names ...string) map[string]string {
	got := map[string]string{}
	for _, name := range names {
		got[name] = lookup(env, name)
	}
	return got
}

func TestInstall(t *testing.T) {
	_, ca := tlsServer(t)
	const system = "# the system's bundle\n-----BEGIN CERTIFICATE-----\nsystem\n-----END CERTIFICATE-----" // no final newline
	tests := []struct {
		name       string
		env        []string
		noSystem   bool     // the system bundle cannot be read
		appSystem  bool     // SSL_CERT_FILE names the app's own bundle
		wantPath   bool     // a bundle is written
		wantKept   []string // variables that keep the app's value
		wantSystem bool     // the bundle starts with the system's
		wantErr    string
	}{
		{name: "no extra certificates", env: []string{"PATH=/bin"}},
		{name: "empty", env: []string{EnvVar + "= \n"}},
		{name: "added to the system's", env: []string{EnvVar + "=" + ca}, wantPath: true, wantSystem: true},
		{name: "comments around the PEM", env: []string{EnvVar + "=my proxy's CA:\n" + ca + "\n# end\n"}, wantPath: true, wantSystem: true},
		{name: "no system bundle", env: []string{EnvVar + "=" + ca}, noSystem: true, wantPath: true},
		{name: "the app's choices stay", env: []string{EnvVar + "=" + ca, "REQUESTS_CA_BUNDLE=/app/certs.pem", "GIT_SSL_CAINFO=/app/git.pem"}, wantPath: true, wantSystem: true, wantKept: []string{"REQUESTS_CA_BUNDLE", "GIT_SSL_CAINFO"}},
		{name: "the app's SSL_CERT_FILE is the base", env: []string{EnvVar + "=" + ca}, appSystem: true, wantPath: true, wantSystem: true, wantKept: []string{"SSL_CERT_FILE"}},
		{name: "not PEM", env: []string{EnvVar + "=hello"}, wantErr: "FLYNN_CA_CERTS: no PEM certificate in it"},
		{name: "a key", env: []string{EnvVar + "=-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"}, wantErr: "PEM block 1 is a PRIVATE KEY, not a CERTIFICATE"},
		{name: "a broken certificate", env: []string{EnvVar + "=" + ca + "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"}, wantErr: "PEM block 2: x509:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			opts := Options{Path: filepath.Join(dir, "bundle.crt"), SystemBundle: filepath.Join(dir, "system.crt")}
			env := slices.Clone(tt.env)
			if tt.appSystem {
				opts.SystemBundle = ""
				env = append(env, "SSL_CERT_FILE="+filepath.Join(dir, "app.crt"))
				if err := os.WriteFile(filepath.Join(dir, "app.crt"), []byte(system), 0o644); err != nil {
					t.Fatal(err)
				}
			} else if !tt.noSystem {
				if err := os.WriteFile(opts.SystemBundle, []byte(system), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			before := lookupAll(env, Vars()...)
			got, path, err := Install(env, opts)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !tt.wantPath {
				if path != "" || !slices.Equal(got, env) {
					t.Errorf("Install = %q, %q; want env unchanged and no path", got, path)
				}
				if _, err := os.Stat(opts.Path); err == nil {
					t.Error("a bundle was written")
				}
				return
			}
			if path != opts.Path {
				t.Errorf("path = %q, want %q", path, opts.Path)
			}
			for name, value := range lookupAll(got, Vars()...) {
				want := opts.Path
				if slices.Contains(tt.wantKept, name) {
					want = before[name]
				}
				if value != want {
					t.Errorf("%s = %q, want %q", name, value, want)
				}
			}
			if lookup(got, EnvVar) == "" {
				t.Errorf("%s was removed; the app may read it too", EnvVar)
			}
			info, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			if info.Mode().Perm() != 0o644 {
				t.Errorf("mode %v, want 0644", info.Mode().Perm())
			}
			data, _ := os.ReadFile(path)
			if hasSystem := strings.HasPrefix(string(data), system+"\n"); hasSystem != tt.wantSystem {
				t.Errorf("bundle starts with the system's: %v, want %v:\n%s", hasSystem, tt.wantSystem, data)
			}
			if !strings.HasSuffix(string(data), ca) || strings.Contains(string(data), "my proxy") {
				t.Errorf("bundle does not end with the certificate alone:\n%s", data)
			}
		})
	}
}

// A TLS client that trusts the bundle reaches a server whose CA is only in
// the extra certificates.
func TestBundleIsTrusted(t *testing.T) {
	srv, ca := tlsServer(t)
	path := filepath.Join(t.TempDir(), "bundle.crt")
	if _, _, err := Install([]string{EnvVar + "=" + ca}, Options{Path: path, SystemBundle: DefaultSystemBundle}); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(data) {
		t.Fatal("the bundle holds no certificate")
	}
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	defer client.CloseIdleConnections()
	resp, err := client.Get(srv.URL)
	if err != nil {
		t.Fatalf("GET with the bundle: %v", err)
	}
	resp.Body.Close()
}

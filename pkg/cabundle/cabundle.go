// Package cabundle makes a job trust the cluster's extra CA certificates
// (a private registry's, a TLS-inspecting proxy's) besides the system's.
//
// The certificates reach a job as PEM text in the variable EnvVar (the
// controller's CACertsEnv). Install writes the system bundle followed by
// them to one file and points the variables that TLS clients read at it:
//
//	system bundle (SSL_CERT_FILE, else /etc/ssl/certs/ca-certificates.crt)
//	  + $FLYNN_CA_CERTS ──► /tmp/flynn-ca-certificates.crt (0644)
//	  ◄── SSL_CERT_FILE (OpenSSL, Go, Ruby, Python's ssl), NODE_EXTRA_CA_CERTS,
//	      PIP_CERT, REQUESTS_CA_BUNDLE, CURL_CA_BUNDLE, GIT_SSL_CAINFO
//
// A variable the app already set keeps its value: the app chose its trust.
// slugbuilder does this before any buildpack runs, slugrunner before the
// app's process starts; the file is in /tmp because both run as an
// unprivileged user that cannot change /etc.
package cabundle

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// EnvVar carries the extra certificates, as PEM, into a job; it is the
// controller's CACertsEnv.
const EnvVar = "FLYNN_CA_CERTS"

// DefaultPath is where Install writes the combined bundle.
const DefaultPath = "/tmp/flynn-ca-certificates.crt"

// DefaultSystemBundle is Debian's bundle of the system's trusted CAs.
const DefaultSystemBundle = "/etc/ssl/certs/ca-certificates.crt"

// vars are pointed at the combined bundle. NODE_EXTRA_CA_CERTS would do
// with the extra certificates alone; the combined file serves it as well
// and keeps one file to look at.
var vars = [...]string{"SSL_CERT_FILE", "NODE_EXTRA_CA_CERTS", "PIP_CERT", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "GIT_SSL_CAINFO"}

// Vars returns the variables Install points at the bundle.
func Vars() []string { return vars[:] }

// Options are where Install reads and writes; the zero value is right in
// a job.
type Options struct {
	// Path receives the combined bundle; default DefaultPath.
	Path string
	// SystemBundle is the bundle the extra certificates are added to;
	// default: env's SSL_CERT_FILE when set, else DefaultSystemBundle.
	// One that cannot be read is left out: the file then holds the extra
	// certificates alone.
	SystemBundle string
}

// Install adds the certificates of env's EnvVar to the system bundle in
// opts.Path and returns env with the variables of Vars pointing at it (each
// one env already sets to something else is kept), and the path. When env
// has no extra certificates it returns env unchanged and path "". It fails
// when the variable holds no certificate or a block that is not one.
func Install(env []string, opts Options) (newEnv []string, path string, err error) {
	extra := strings.TrimSpace(lookup(env, EnvVar))
	if extra == "" {
		return env, "", nil
	}
	certs, err := parse(extra)
	if err != nil {
		return nil, "", fmt.Errorf("%s: %w", EnvVar, err)
	}
	if opts.Path == "" {
		opts.Path = DefaultPath
	}
	if opts.SystemBundle == "" {
		opts.SystemBundle = lookup(env, "SSL_CERT_FILE")
	}
	if opts.SystemBundle == "" {
		opts.SystemBundle = DefaultSystemBundle
	}
	var bundle bytes.Buffer
	if system, err := os.ReadFile(opts.SystemBundle); err == nil {
		bundle.Write(system)
		if len(system) > 0 && system[len(system)-1] != '\n' {
			bundle.WriteByte('\n')
		}
	}
	bundle.WriteString("# The cluster's extra CA certificates (" + EnvVar + ")\n")
	bundle.Write(certs)
	if err := writeFile(opts.Path, bundle.Bytes()); err != nil {
		return nil, "", err
	}
	newEnv = append([]string(nil), env...)
	for _, name := range vars {
		if lookup(env, name) == "" {
			newEnv = set(newEnv, name, opts.Path)
		}
	}
	return newEnv, opts.Path, nil
}

// parse returns the certificates of text re-encoded, one block after the
// other: text between blocks (comments, a subject line) is dropped, and a
// block that is not a parseable certificate is an error rather than
// something a TLS library chokes on later.
func parse(text string) ([]byte, error) {
	var out bytes.Buffer
	rest := []byte(text)
	for n := 1; ; n++ {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("PEM block %d is a %s, not a CERTIFICATE", n, block.Type)
		}
		if _, err := x509.ParseCertificate(block.Bytes); err != nil {
			return nil, fmt.Errorf("PEM block %d: %w", n, err)
		}
		if err := pem.Encode(&out, &pem.Block{Type: block.Type, Bytes: block.Bytes}); err != nil {
			return nil, err
		}
	}
	if out.Len() == 0 {
		return nil, errors.New("no PEM certificate in it")
	}
	return out.Bytes(), nil
}

// writeFile replaces path through a rename, so that a process reading it
// never sees half a bundle.
func writeFile(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+"-*")
	if err != nil {
		return fmt.Errorf("write the CA bundle: %w", err)
	}
	defer os.Remove(tmp.Name()) // after the rename, a no-op
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("write the CA bundle: %w", err)
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return fmt.Errorf("write the CA bundle: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write the CA bundle: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write the CA bundle: %w", err)
	}
	return nil
}

// lookup returns name's value in env; the last one wins, as in exec.Cmd.
func lookup(env []string, name string) string {
	value := ""
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, name+"="); ok {
			value = v
		}
	}
	return value
}

// set replaces or adds name in env.
func set(env []string, name, value string) []string {
	out := env[:0]
	for _, kv := range env {
		if !strings.HasPrefix(kv, name+"=") {
			out = append(out, kv)
		}
	}
	return append(out, name+"="+value)
}

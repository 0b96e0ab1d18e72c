package cli

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/openflynn/flynn/cli/config"
	"github.com/openflynn/flynn/pkg/testdeps"
)

// newHostKey returns a new host key and its public half in
// authorized_keys form, without a comment.
func newHostKey(t *testing.T) (ssh.Signer, string) {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return signer, strings.TrimSpace(string(ssh.MarshalAuthorizedKey(signer.PublicKey())))
}

func (h *harness) knownHostsPath() string { return filepath.Join(h.env.Home, ".ssh", "known_hosts") }

// knownHosts returns the harness user's known_hosts, "" when there is none.
func (h *harness) knownHosts() string {
	h.t.Helper()
	data, err := os.ReadFile(h.knownHostsPath())
	if err != nil && !os.IsNotExist(err) {
		h.t.Fatal(err)
	}
	return string(data)
}

// TestClusterAddKnownHosts: `cluster add --git-host-key` keeps the key
// and writes it to known_hosts for the git host, where ssh finds it; a
// second cluster at the same address adds no second line; a cluster-add
// line without the key (from an older bootstrap) still works and writes
// nothing.
func TestClusterAddKnownHosts(t *testing.T) {
	h := newHarness(t)
	signer, pub := newHostKey(t)
	add := func(name, key string) result {
		args := []string{"cluster", "add", "--no-check", "--controller-url", "http://127.0.0.1:9", "-g", "127.0.0.1:2222"}
		if key != "" {
			args = append(args, "--git-host-key", key)
		}
		return h.run(append(args, name, "example.test", "k")...)
	}

	res := add("prod", pub+" gitreceive host key") // a comment is dropped
	if res.code != 0 {
		t.Fatalf("cluster add: exit %d, %s", res.code, res.stderr)
	}
	fp := ssh.FingerprintSHA256(signer.PublicKey())
	if want := "Added gitreceive's host key (" + fp + ") for [127.0.0.1]:2222 to " + h.knownHostsPath() + ".\n"; !strings.Contains(res.stdout, want) {
		t.Fatalf("cluster add printed %q, want %q", res.stdout, want)
	}
	f, err := config.Load(h.env.ConfigPath)
	if err != nil {
		t.Fatal(err)
	}
	if cl, _ := f.Cluster("prod"); cl == nil || cl.GitHostKey != pub {
		t.Fatalf("saved cluster %+v, want git host key %q", cl, pub)
	}
	if got, want := h.knownHosts(), "[127.0.0.1]:2222 "+pub+"\n"; got != want {
		t.Fatalf("known_hosts = %q, want %q", got, want)
	}
	if info, err := os.Stat(h.knownHostsPath()); err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("known_hosts: %v, mode %v; want 0600", err, info.Mode())
	}
	checkKnownHost(t, h.knownHostsPath(), "127.0.0.1:2222", signer.PublicKey())
	keygen := testdeps.LookPath(t, "ssh-keygen")
	out, err := exec.Command(keygen, "-F", "[127.0.0.1]:2222", "-f", h.knownHostsPath()).Output()
	if err != nil || !strings.Contains(string(out), pub) {
		t.Fatalf("ssh-keygen -F [127.0.0.1]:2222: %v\n%s", err, out)
	}

	if res := add("again", pub); res.code != 0 || strings.Contains(res.stdout, "Added gitreceive's host key") {
		t.Fatalf("a second cluster with the same key: %+v, want no second line", res)
	}
	if n := strings.Count(h.knownHosts(), "\n"); n != 1 {
		t.Fatalf("known_hosts has %d lines after the same key twice:\n%s", n, h.knownHosts())
	}

	h.fails("--git-host-key: not an SSH public key", "cluster", "add", "--no-check", "--controller-url", "http://127.0.0.1:9", "--git-host-key", "SHA256:abc", "bad", "example.test", "k")

	old := *h
	old.env.Home = t.TempDir()
	if res := old.run("cluster", "add", "--no-check", "--controller-url", "http://127.0.0.1:9", "legacy", "example.test", "k"); res.code != 0 || strings.Contains(res.stdout, "host key") {
		t.Fatalf("cluster add without a host key: %+v", res)
	}
	if _, err := os.Stat(old.knownHostsPath()); !os.IsNotExist(err) {
		t.Fatalf("a cluster without a host key wrote known_hosts (stat: %v)", err)
	}
}

// checkKnownHost checks that known_hosts vouches for key at addr, and
// for no other key.
func checkKnownHost(t *testing.T, path, addr string, key ssh.PublicKey) {
	t.Helper()
	check, err := knownhosts.New(path)
	if err != nil {
		t.Fatal(err)
	}
	remote := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 2222}
	if err := check(addr, remote, key); err != nil {
		t.Fatalf("known_hosts does not vouch for the cluster's key: %v", err)
	}
	_, other := newHostKey(t)
	otherKey, _, _, _, _ := ssh.ParseAuthorizedKey([]byte(other))
	var keyErr *knownhosts.KeyError
	if err := check(addr, remote, otherKey); !errors.As(err, &keyErr) || len(keyErr.Want) == 0 {
		t.Fatalf("another key for %s: %v, want a mismatch", addr, err)
	}
}

// TestTrustGitHostReplaces: a key for the git host's address alone is
// replaced (in plain or hashed form: a former cluster at that address);
// other hosts' lines, markers and comments stay, and a line that also
// names other hosts stays with a warning.
func TestTrustGitHostReplaces(t *testing.T) {
	_, oldKey := newHostKey(t)
	_, pub := newHostKey(t)
	const host = "[127.0.0.1]:2222"
	hashed := knownhosts.HashHostname(host)
	tests := []struct {
		name, before, after string
		says                []string // on stdout
		warns               string   // on stderr, after "flynn: <path>/"
	}{
		{name: "no file", after: host + " " + pub + "\n", says: []string{"Added"}},
		{
			name:   "already there",
			before: "# mine\n" + host + " " + pub + "\n",
			after:  "# mine\n" + host + " " + pub + "\n",
		},
		{
			name:   "a former key, plain and hashed",
			before: "other.test " + oldKey + "\n" + host + " " + oldKey + "\n" + hashed + " " + oldKey + "\n@revoked " + host + " " + oldKey + "\n",
			after:  "other.test " + oldKey + "\n@revoked " + host + " " + oldKey + "\n" + host + " " + pub + "\n",
			says:   []string{"Added", "replacing 2 line(s)"},
		},
		{
			name:   "a former key among other hosts",
			before: "a.test," + host + " " + oldKey, // and no final newline
			after:  "a.test," + host + " " + oldKey + "\n" + host + " " + pub + "\n",
			warns:  "known_hosts line 1 trusts another key for " + host + " (with other hosts); left as it is\n",
			says:   []string{"Added"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			home := t.TempDir()
			path := filepath.Join(home, ".ssh", "known_hosts")
			if tt.before != "" {
				if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, []byte(tt.before), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			var stdout, stderr strings.Builder
			if err := trustGitHost(home, &config.Cluster{Name: "c", GitHost: "127.0.0.1:2222", GitHostKey: pub}, &stdout, &stderr); err != nil {
				t.Fatal(err)
			}
			msg := stdout.String()
			if want := "flynn: " + filepath.Join(home, ".ssh") + "/" + tt.warns; (tt.warns == "" && stderr.Len() > 0) || (tt.warns != "" && stderr.String() != want) {
				t.Errorf("warned %q, want %q", stderr.String(), want)
			}
			got, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.after {
				t.Errorf("known_hosts =\n%s\nwant\n%s", got, tt.after)
			}
			if len(tt.says) == 0 && msg != "" {
				t.Errorf("said %q, want nothing", msg)
			}
			for _, s := range tt.says {
				if !strings.Contains(msg, s) {
					t.Errorf("said %q, want %q", msg, s)
				}
			}
			if info, err := os.Stat(path); err == nil && tt.before != "" && info.Mode().Perm() != 0o644 {
				t.Errorf("mode %v, want the file's own 0644 kept", info.Mode())
			}
		})
	}
}

// TestSSHVerifiesGitHost: with the line `cluster add` wrote, OpenSSH (as
// git runs it) accepts the cluster's host key without asking, and refuses
// a server with another key.
func TestSSHVerifiesGitHost(t *testing.T) {
	sshBin := testdeps.LookPath(t, "ssh")
	signer, pub := newHostKey(t)
	impostor, _ := newHostKey(t)
	tests := []struct {
		name   string
		server ssh.Signer
		says   string
	}{
		{"the cluster's key", signer, "Permission denied"}, // past the host key, to authentication
		{"another key", impostor, "Host key verification failed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr := serveSSH(t, tt.server)
			home := t.TempDir()
			if err := trustGitHost(home, &config.Cluster{Name: "c", GitHost: addr, GitHostKey: pub}, io.Discard, io.Discard); err != nil {
				t.Fatal(err)
			}
			host, port, _ := net.SplitHostPort(addr)
			ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, sshBin, "-F", "/dev/null",
				"-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes",
				"-o", "UserKnownHostsFile="+filepath.Join(home, ".ssh", "known_hosts"), "-o", "GlobalKnownHostsFile=/dev/null",
				"-o", "PubkeyAuthentication=no", "-o", "ConnectTimeout=10",
				"-p", port, "git@"+host, "true")
			out, err := cmd.CombinedOutput()
			if err == nil || !strings.Contains(string(out), tt.says) {
				t.Fatalf("ssh: %v\n%s\nwant it to say %q", err, out, tt.says)
			}
		})
	}
}

// serveSSH runs an SSH server with host key signer that admits no one,
// and returns its address.
func serveSSH(t *testing.T, signer ssh.Signer) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg := &ssh.ServerConfig{PublicKeyCallback: func(ssh.ConnMetadata, ssh.PublicKey) (*ssh.Permissions, error) {
		return nil, errors.New("no one is admitted")
	}}
	cfg.AddHostKey(signer)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer conn.Close()
				_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
				if sc, _, _, err := ssh.NewServerConn(conn, cfg); err == nil {
					sc.Close()
				}
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		wg.Wait()
	})
	return ln.Addr().String()
}

// TestCreateWritesKnownHosts: `flynn create` in a git work tree writes
// the cluster's git host key to known_hosts when it is missing there, and
// says nothing when it is not.
func TestCreateWritesKnownHosts(t *testing.T) {
	h := newHarness(t)
	gitInit(t, h)
	signer, pub := newHostKey(t)
	f, err := config.Load(h.env.ConfigPath)
	if err != nil {
		t.Fatal(err)
	}
	f.Clusters[0].GitHostKey = pub
	if err := f.Save(h.env.ConfigPath); err != nil {
		t.Fatal(err)
	}
	if out := h.ok("create", "--no-remote", "elsewhere"); strings.Contains(out, "host key") {
		t.Fatalf("create --no-remote printed %q, want known_hosts left alone", out)
	}
	if out := h.ok("create", "example"); !strings.Contains(out, "Added gitreceive's host key") {
		t.Fatalf("create printed %q, want the host key added", out)
	}
	checkKnownHost(t, h.knownHostsPath(), "127.0.0.1:2222", signer.PublicKey())
	res := h.run("create", "second") // the remote exists already
	if res.code != 0 || strings.Contains(res.stdout, "host key") {
		t.Fatalf("create with the key in known_hosts: %+v, want nothing said of it", res)
	}
	if n := strings.Count(h.knownHosts(), "\n"); n != 1 {
		t.Fatalf("known_hosts has %d lines:\n%s", n, h.knownHosts())
	}
}

// TestAPIKeyLineCarriesHostKey: the cluster-add line `api-key add` prints
// for a colleague carries the git host key, quoted for the shell.
func TestAPIKeyLineCarriesHostKey(t *testing.T) {
	h := newHarness(t)
	_, pub := newHostKey(t)
	f, err := config.Load(h.env.ConfigPath)
	if err != nil {
		t.Fatal(err)
	}
	f.Clusters[0].GitHostKey = pub
	if err := f.Save(h.env.ConfigPath); err != nil {
		t.Fatal(err)
	}
	out := h.ok("api-key", "add", "carol")
	if want := " -g 127.0.0.1:2222 --git-host-key '" + pub + "' --controller-url "; !strings.Contains(out, want) {
		t.Fatalf("api-key add printed:\n%s\nwant a line with %q", out, want)
	}
}

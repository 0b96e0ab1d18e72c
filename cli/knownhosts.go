package cli

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha1" //nolint:gosec // OpenSSH's hashed known_hosts names are HMAC-SHA1
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/openflynn/flynn/cli/config"
)

// parseHostKey checks a host key given in authorized_keys form and
// returns it without its comment, as the config keeps it.
func parseHostKey(s string) (string, error) {
	key, _, _, _, err := ssh.ParseAuthorizedKey([]byte(s))
	if err != nil {
		return "", fmt.Errorf("not an SSH public key (want \"ssh-ed25519 AAAA…\"): %w", err)
	}
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(key))), nil
}

// trustGitHost makes the user's ~/.ssh/known_hosts vouch for cl's
// gitreceive host key at cl.GitHost, so that git's ssh verifies the first
// push instead of asking, and refuses another key. The cluster's key
// comes from its cluster-add line, which bootstrap printed with the key
// it gave gitreceive, so it replaces the lines that name only that
// address with another key: they are a former cluster's at the same
// address (`make cluster` again), and would otherwise stay trusted
// beside it. What it changed goes to stdout and warnings to stderr;
// nothing is said when the file already held the key or cl has none.
func trustGitHost(home string, cl *config.Cluster, stdout, stderr io.Writer) error {
	if cl.GitHostKey == "" {
		return nil // added by an older cluster-add line: ssh asks on first use
	}
	key, _, _, _, err := ssh.ParseAuthorizedKey([]byte(cl.GitHostKey))
	if err != nil {
		return fmt.Errorf("cluster %s: git host key: %w", cl.Name, err)
	}
	if home == "" {
		return errors.New("no home directory for ~/.ssh/known_hosts")
	}
	dir := filepath.Join(home, ".ssh")
	path := filepath.Join(dir, "known_hosts")
	host := knownhosts.Normalize(cl.GitHost)
	data, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("read %s: %w", path, err)
	}
	kept, found, replaced, others := filterKnownHosts(data, host, key)
	for _, n := range others {
		fmt.Fprintf(stderr, "flynn: %s line %d trusts another key for %s (with other hosts); left as it is\n", path, n, host)
	}
	if found && replaced == 0 {
		return nil
	}
	if !found {
		kept = append(kept, []byte(knownhosts.Line([]string{host}, key)+"\n")...)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := writeFileAtomic(path, kept, 0o600); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "Added gitreceive's host key (%s) for %s to %s", ssh.FingerprintSHA256(key), host, path)
	if replaced > 0 {
		fmt.Fprintf(stdout, ", replacing %d line(s) with another key for it", replaced)
	}
	fmt.Fprintln(stdout, ".")
	return nil
}

// filterKnownHosts returns the lines of a known_hosts file without those
// that name only host and hold another key than key (replaced counts
// them), whether host's line with key is among them (found), and the
// numbers of lines that hold another key for host among other hosts,
// which are kept. Lines it does not understand (markers, patterns,
// comments, keys it cannot parse) are kept as they are.
func filterKnownHosts(data []byte, host string, key ssh.PublicKey) (kept []byte, found bool, replaced int, others []int) {
	for i, line := range bytes.SplitAfter(data, []byte("\n")) {
		if len(line) == 0 {
			continue
		}
		hosts, lineKey, ok := parseKnownHostsLine(string(line))
		if !ok || !namesHost(hosts, host) {
			kept = append(kept, line...)
			continue
		}
		switch {
		case bytes.Equal(lineKey.Marshal(), key.Marshal()):
			found = true
		case len(strings.Split(hosts, ",")) == 1:
			replaced++
			continue
		default:
			others = append(others, i+1)
		}
		kept = append(kept, line...)
	}
	if len(kept) > 0 && kept[len(kept)-1] != '\n' {
		kept = append(kept, '\n')
	}
	return kept, found, replaced, others
}

// parseKnownHostsLine splits a known_hosts line into its hosts field and
// its key; ok is false for comments, blank lines, marked lines
// (@cert-authority, @revoked) and keys it cannot parse.
func parseKnownHostsLine(line string) (hosts string, key ssh.PublicKey, ok bool) {
	fields := strings.Fields(line)
	if len(fields) < 3 || strings.HasPrefix(fields[0], "#") || strings.HasPrefix(fields[0], "@") {
		return "", nil, false
	}
	key, _, _, _, err := ssh.ParseAuthorizedKey([]byte(strings.Join(fields[1:], " ")))
	if err != nil {
		return "", nil, false
	}
	return fields[0], key, true
}

// namesHost reports whether a known_hosts hosts field names host exactly,
// in plain or hashed (HashKnownHosts) form. Patterns are not expanded.
func namesHost(hosts, host string) bool {
	for _, h := range strings.Split(hosts, ",") {
		if h == host || hashedNameIs(h, host) {
			return true
		}
	}
	return false
}

// hashedNameIs reports whether h, "|1|<salt>|<hash>", is host hashed.
func hashedNameIs(h, host string) bool {
	parts := strings.Split(h, "|")
	if len(parts) != 4 || parts[0] != "" || parts[1] != "1" {
		return false
	}
	salt, err1 := base64.StdEncoding.DecodeString(parts[2])
	sum, err2 := base64.StdEncoding.DecodeString(parts[3])
	if err1 != nil || err2 != nil {
		return false
	}
	mac := hmac.New(sha1.New, salt)
	mac.Write([]byte(host))
	return hmac.Equal(mac.Sum(nil), sum)
}

// writeFileAtomic replaces path with data: a temporary file renamed over
// it, so that ssh never reads half a file. An existing file keeps its
// mode, and a symbolic link its target.
func writeFileAtomic(path string, data []byte, mode fs.FileMode) error {
	if real, err := filepath.EvalSymlinks(path); err == nil {
		path = real // a known_hosts kept elsewhere (dotfiles) stays a link
	}
	if info, err := os.Stat(path); err == nil {
		mode = info.Mode().Perm()
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer os.Remove(tmp.Name()) // fails harmlessly once renamed
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

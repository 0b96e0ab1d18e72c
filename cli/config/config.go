// Package config reads and writes the flynn CLI's configuration file,
// ~/.flynnrc: the clusters the user added and which one is the default.
//
// The file is JSON; the original Flynn's TOML file is refused with
// ErrOldFormat, which says what to do. It holds controller keys, so it is
// written with mode 0600, atomically (a temporary file renamed over the
// old one), and a file that others can read is refused on load.
package config

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
)

// Mode is the permission the file is written with.
const Mode fs.FileMode = 0o600

// Cluster is one cluster the CLI can talk to.
type Cluster struct {
	// Name is how the user refers to the cluster ("default").
	Name string `json:"name"`
	// Domain is the cluster's domain; apps live under it.
	Domain string `json:"domain"`
	// ControllerURL is where the controller API is,
	// "https://controller.<Domain>" unless given.
	ControllerURL string `json:"controller_url"`
	// ControllerAddr, when set, is the "host:port" dialled for the
	// controller instead of resolving ControllerURL's host, so a cluster
	// without a DNS entry works; TLS (SNI, Host, the pin) still uses the
	// URL's host.
	ControllerAddr string `json:"controller_addr,omitempty"`
	// Key is the user's API key (see `flynn api-key`); a cluster added
	// before API keys existed may hold the controller key here instead.
	Key string `json:"key"`
	// TLSPin is the base64 SHA-256 of the controller certificate's DER
	// (see pkg/tlspin); required for https URLs.
	TLSPin string `json:"tls_pin,omitempty"`
	// GitHost is the "host:port" of gitreceive, used in git remotes.
	GitHost string `json:"git_host"`
	// GitHostKey is gitreceive's SSH host key in authorized_keys form
	// ("ssh-ed25519 AAAA…"), as bootstrap prints it in the cluster-add
	// line; `cluster add` and `create` write it to ~/.ssh/known_hosts for
	// GitHost, so git verifies the first push. Empty for a cluster added
	// without one: ssh then asks on first use, as before.
	GitHostKey string `json:"git_host_key,omitempty"`
}

// GitURL is the git remote of app on this cluster.
func (c *Cluster) GitURL(app string) string {
	return "ssh://git@" + c.GitHost + "/" + app + ".git"
}

// File is the content of ~/.flynnrc.
type File struct {
	// Default names the cluster used when none is given.
	Default  string     `json:"default,omitempty"`
	Clusters []*Cluster `json:"clusters"`
}

// ErrNotFound is returned for a cluster name that is not in the file.
var ErrNotFound = errors.New("no such cluster")

// ErrOldFormat is returned for a file the original Flynn's CLI wrote: TOML,
// which this one does not read.
var ErrOldFormat = errors.New("an old Flynn (TOML) config")

// tomlTable is a TOML table header: "[cluster]", "[[cluster]]".
var tomlTable = regexp.MustCompile(`^\[\[?[A-Za-z0-9_.-]+\]\]?$`)

// oldFormat reports whether data, which is not JSON, looks like the
// original Flynn's TOML: a "[[cluster]]" table or a "default = …" key.
// Only the first line that is not blank or a comment is looked at.
func oldFormat(data []byte) bool {
	for line := range strings.Lines(string(data)) {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		key, _, isKey := strings.Cut(line, "=")
		return tomlTable.MatchString(line) || (isKey && strings.TrimSpace(key) == "default")
	}
	return false
}

// Load reads the file at path; a missing file is an empty configuration.
func Load(path string) (*File, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return &File{Clusters: []*Cluster{}}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	info, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	if perm := info.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("config %s has mode %#o and holds cluster keys; run chmod 600 %s", path, perm, path)
	}
	var f File
	if err := json.Unmarshal(data, &f); err != nil {
		if oldFormat(data) {
			return nil, fmt.Errorf("%s is %w; move it aside and add the cluster again with `flynn cluster add` (see `flynn cluster add --help`)", path, ErrOldFormat)
		}
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	if f.Clusters == nil {
		f.Clusters = []*Cluster{}
	}
	return &f, nil
}

// Save writes the file to path with mode 0600, replacing it atomically.
func (f *File) Save(path string) error {
	data, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return fmt.Errorf("encode config: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("write config: %w", err)
	}
	defer os.Remove(tmp.Name()) // fails harmlessly once renamed
	if err := tmp.Chmod(Mode); err != nil {
		tmp.Close()
		return fmt.Errorf("write config: %w", err)
	}
	if _, err := tmp.Write(append(data, '\n')); err != nil {
		tmp.Close()
		return fmt.Errorf("write config: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write config: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write config: %w", err)
	}
	return nil
}

// Cluster returns the cluster called name, or the default one when name is
// empty.
func (f *File) Cluster(name string) (*Cluster, error) {
	if name == "" {
		name = f.Default
		if name == "" {
			if len(f.Clusters) == 0 {
				return nil, errors.New("no cluster configured; add one with `flynn cluster add`")
			}
			return nil, errors.New("no default cluster; choose one with `flynn cluster default NAME` or -c NAME")
		}
	}
	for _, c := range f.Clusters {
		if c.Name == name {
			return c, nil
		}
	}
	return nil, fmt.Errorf("%w %q", ErrNotFound, name)
}

// Add adds c; the first cluster added becomes the default.
func (f *File) Add(c *Cluster) error {
	if strings.TrimSpace(c.Name) == "" {
		return errors.New("a cluster needs a name")
	}
	if slices.ContainsFunc(f.Clusters, func(o *Cluster) bool { return o.Name == c.Name }) {
		return fmt.Errorf("cluster %q exists already; remove it first", c.Name)
	}
	f.Clusters = append(f.Clusters, c)
	if f.Default == "" {
		f.Default = c.Name
	}
	return nil
}

// Remove removes the cluster called name, and the default with it when it
// was.
func (f *File) Remove(name string) error {
	i := slices.IndexFunc(f.Clusters, func(c *Cluster) bool { return c.Name == name })
	if i < 0 {
		return fmt.Errorf("%w %q", ErrNotFound, name)
	}
	f.Clusters = slices.Delete(f.Clusters, i, i+1)
	if f.Default == name {
		f.Default = ""
		if len(f.Clusters) == 1 {
			f.Default = f.Clusters[0].Name
		}
	}
	return nil
}

// SetDefault makes the cluster called name the default.
func (f *File) SetDefault(name string) error {
	if _, err := f.Cluster(name); err != nil {
		return err
	}
	f.Default = name
	return nil
}

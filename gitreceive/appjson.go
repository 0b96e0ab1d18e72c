package gitreceive

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/openflynn/flynn/host"
	"github.com/openflynn/flynn/pkg/random"
)

// appJSONMaxSize bounds the app.json a push reads: a manifest is a few
// kilobytes, and the file is read into memory.
const appJSONMaxSize = 1 << 20

// appJSONSecretBytes is how many random bytes a "secret" generator makes
// (hex encoded, so twice as many characters), as Heroku's does.
const appJSONSecretBytes = 32

// appJSONDescriptive are app.json fields that describe the app and change
// nothing about how it runs: they are neither used nor reported ignored.
var appJSONDescriptive = []string{"name", "description", "keywords", "website", "repository", "logo", "success_url"}

// appManifest is what a push uses of Heroku's app manifest, app.json at the
// top of the pushed tree: on an app's first deploy, its env and its
// postdeploy script. Heroku reads the file when an app is created; so do
// we, and later pushes ignore it.
type appManifest struct {
	// env are the variables the app should have, by name.
	env map[string]appEnvVar
	// postdeploy is scripts.postdeploy: a command line run once, as a
	// one-off job of the first release, after its deploy.
	postdeploy string
	// ignored are the other fields that would change the app (addons,
	// formation, buildpacks, …), sorted; scripts other than postdeploy
	// appear as "scripts.NAME".
	ignored []string
}

// appEnvVar is one entry of app.json's env: a string (its value) or an
// object.
type appEnvVar struct {
	value       string
	description string
	// required is Heroku's default, true, unless the entry says
	// "required": false. A string entry is never required: it has its
	// value.
	required  bool
	generator string
}

// parseAppJSON reads an app.json. A malformed file is the pusher's to fix:
// the error says what is wrong and, for a JSON error, on which line.
func parseAppJSON(data []byte) (*appManifest, error) {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(data, &top); err != nil {
		return nil, appJSONError(data, err)
	}
	if top == nil {
		return nil, errors.New("app.json: want an object")
	}
	m := &appManifest{env: map[string]appEnvVar{}}
	for _, name := range slices.Sorted(maps.Keys(top)) {
		raw := top[name]
		switch {
		case name == "env":
			if err := m.parseEnv(raw); err != nil {
				return nil, err
			}
		case name == "scripts":
			if err := m.parseScripts(raw); err != nil {
				return nil, err
			}
		case slices.Contains(appJSONDescriptive, name):
		default:
			m.ignored = append(m.ignored, name)
		}
	}
	slices.Sort(m.ignored)
	return m, nil
}

func (m *appManifest) parseEnv(raw json.RawMessage) error {
	var entries map[string]json.RawMessage
	if err := json.Unmarshal(raw, &entries); err != nil {
		return errors.New("app.json: env: want an object of variables")
	}
	for name, raw := range entries {
		if !host.ValidEnvName(name) {
			return fmt.Errorf("app.json: env: invalid variable name %q: %s", name, host.EnvNameRule)
		}
		var s string
		if err := json.Unmarshal(raw, &s); err == nil {
			m.env[name] = appEnvVar{value: s}
			continue
		}
		var o struct {
			Value       *string `json:"value"`
			Description string  `json:"description"`
			Required    *bool   `json:"required"`
			Generator   string  `json:"generator"`
		}
		if err := json.Unmarshal(raw, &o); err != nil {
			return fmt.Errorf("app.json: env.%s: want a string or an object with value, description, required and generator", name)
		}
		v := appEnvVar{description: o.Description, required: o.Required == nil || *o.Required, generator: o.Generator}
		if o.Value != nil {
			v.value = *o.Value
		}
		if v.generator != "" && v.generator != "secret" {
			return fmt.Errorf("app.json: env.%s: unknown generator %q (the one generator is \"secret\")", name, v.generator)
		}
		m.env[name] = v
	}
	return nil
}

func (m *appManifest) parseScripts(raw json.RawMessage) error {
	var scripts map[string]json.RawMessage
	if err := json.Unmarshal(raw, &scripts); err != nil {
		return errors.New("app.json: scripts: want an object of scripts")
	}
	for name, raw := range scripts {
		if name != "postdeploy" {
			m.ignored = append(m.ignored, "scripts."+name)
			continue
		}
		// Heroku takes a command line or {"command": …, "size": …}.
		if err := json.Unmarshal(raw, &m.postdeploy); err == nil {
			continue
		}
		var o struct {
			Command string `json:"command"`
		}
		if err := json.Unmarshal(raw, &o); err != nil {
			return errors.New("app.json: scripts.postdeploy: want a command line or an object with a command")
		}
		m.postdeploy = o.Command
	}
	m.postdeploy = strings.TrimSpace(m.postdeploy)
	return nil
}

// appJSONError is a JSON error of app.json with the line it is on.
func appJSONError(data []byte, err error) error {
	var offset int64 = -1
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syntax):
		offset = syntax.Offset
	case errors.As(err, &typ):
		offset = typ.Offset
	}
	if offset < 0 {
		return fmt.Errorf("app.json: %w", err)
	}
	line := 1 + bytes.Count(data[:min(int(offset), len(data))], []byte("\n"))
	return fmt.Errorf("app.json: line %d: %w", line, err)
}

// summary is the line that tells the pusher what of app.json is used and
// what is not; "" when the file holds nothing but a description.
func (m *appManifest) summary() string {
	var used []string
	if len(m.env) > 0 {
		used = append(used, "env")
	}
	if m.postdeploy != "" {
		used = append(used, "scripts.postdeploy")
	}
	if len(used) == 0 && len(m.ignored) == 0 {
		return ""
	}
	line := "-----> app.json: "
	if len(used) == 0 {
		line += "nothing to use"
	} else {
		line += "using " + strings.Join(used, " and ")
	}
	if len(m.ignored) > 0 {
		line += "; ignoring: " + strings.Join(m.ignored, ", ")
	}
	return line
}

// resolveEnv returns the variables app.json gives an app whose env is have:
// each one have lacks gets its value, or a new secret from its generator.
// A required variable with neither, and not in have, fails the push before
// its build, saying how to set it.
func (m *appManifest) resolveEnv(have map[string]string) (map[string]string, error) {
	set := map[string]string{}
	var missing []string
	for _, name := range slices.Sorted(maps.Keys(m.env)) {
		v := m.env[name]
		if _, ok := have[name]; ok {
			continue
		}
		switch {
		case v.value != "":
			set[name] = v.value
		case v.generator == "secret":
			set[name] = random.Hex(appJSONSecretBytes)
		case v.required:
			what := name
			if v.description != "" {
				what += " (" + v.description + ")"
			}
			missing = append(missing, fmt.Sprintf("app.json needs %s; set it with `flynn env set %s=…`", what, name))
		}
	}
	if len(missing) > 0 {
		return nil, &userError{strings.Join(missing, "\n !     ")}
	}
	return set, nil
}

// readAppJSON returns the app.json of commit, or nil when it has none.
func (b *builder) readAppJSON(ctx context.Context, repo, commit string, gitEnv map[string]string) ([]byte, error) {
	data, err := b.readTreeFile(ctx, repo, commit, gitEnv, "app.json", appJSONMaxSize)
	if errors.Is(err, errTooLarge) {
		return nil, &userError{fmt.Sprintf("app.json: larger than %d MiB", appJSONMaxSize>>20)}
	}
	return data, err
}

// errTooLarge is readTreeFile's answer for a file over its limit.
var errTooLarge = errors.New("file too large")

// readTreeFile returns the file at path in commit's tree, or nil when
// there is none (or a directory of that name); errTooLarge when it holds
// more than limit bytes.
func (b *builder) readTreeFile(ctx context.Context, repo, commit string, gitEnv map[string]string, path string, limit int64) ([]byte, error) {
	// ls-tree -l: "<mode> <type> <object> <size>\t<path>", nothing when
	// the file is not there.
	listing, err := b.git(ctx, repo, gitEnv, 4096, "ls-tree", "-l", "-z", commit, "--", path)
	if err != nil {
		return nil, err
	}
	fields := strings.Fields(strings.TrimRight(string(listing), "\x00"))
	if len(fields) != 5 || fields[1] != "blob" {
		return nil, nil
	}
	if size, err := strconv.ParseInt(fields[3], 10, 64); err != nil || size > limit {
		return nil, errTooLarge
	}
	return b.git(ctx, repo, gitEnv, limit, "cat-file", "blob", fields[2])
}

// git runs a git command in repo, with the push's object directories, and
// returns at most limit bytes of its output.
func (b *builder) git(ctx context.Context, repo string, gitEnv map[string]string, limit int64, args ...string) ([]byte, error) {
	cmd := b.gitCommand(ctx, repo, gitEnv, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	out, readErr := io.ReadAll(io.LimitReader(stdout, limit))
	_, _ = io.Copy(io.Discard, stdout) // what is over the limit, so git can exit
	if err := cmd.Wait(); err != nil {
		return nil, fmt.Errorf("git %s: %w: %s", args[0], err, bytes.TrimSpace(stderr.Bytes()))
	}
	return out, readErr
}

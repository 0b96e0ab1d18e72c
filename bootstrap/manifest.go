package bootstrap

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"strings"

	"github.com/openflynn/flynn/controller"
)

// Manifest is a bootstrap manifest: the steps that bring a cluster up, in
// order.
type Manifest struct {
	// Controller says how steps after the controller's start reach it.
	Controller ControllerRef `json:"controller"`
	// Steps run in order; the first failure stops the run.
	Steps []Step `json:"steps"`
}

// ControllerRef names the controller's discoverd service and key.
type ControllerRef struct {
	// Service is the discoverd service the controller registers in; its
	// first instance is the controller steps talk to.
	Service string `json:"service"`
	// Key is the controller key, normally "{{controller-key}}".
	Key string `json:"key"`
}

// URL is the base URL that reaches the controller by its discoverd service
// name ("http://controller.discoverd"), for a client that dials discoverd
// names.
func (c ControllerRef) URL() string { return serviceURL(c.Service) }

// Step is one step of a manifest: an id, an action and the action's
// fields, kept raw until the step runs so that "{{name}}" references to
// earlier steps' outputs expand then.
type Step struct {
	ID     string
	Action string
	// Raw is the whole step object.
	Raw json.RawMessage
}

// UnmarshalJSON reads a step's id and action and keeps the rest raw.
func (s *Step) UnmarshalJSON(b []byte) error {
	var head struct {
		ID     string `json:"id"`
		Action string `json:"action"`
	}
	if err := json.Unmarshal(b, &head); err != nil {
		return err
	}
	s.ID, s.Action, s.Raw = head.ID, head.Action, append(json.RawMessage(nil), b...)
	return nil
}

// MarshalJSON writes the step as it was read.
func (s Step) MarshalJSON() ([]byte, error) { return s.Raw, nil }

var stepIDPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)

// ReadManifest reads and checks a manifest file.
func ReadManifest(path string) (*Manifest, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read manifest: %w", err)
	}
	m, err := ParseManifest(data)
	if err != nil {
		return nil, fmt.Errorf("manifest %s: %w", path, err)
	}
	return m, nil
}

// ParseManifest decodes a manifest and checks what can be checked before
// anything runs: known actions, unique ids, well-formed action fields.
func ParseManifest(data []byte) (*Manifest, error) {
	var m Manifest
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("decode: %w", err)
	}
	if len(m.Steps) == 0 {
		return nil, fmt.Errorf("no steps")
	}
	seen := map[string]bool{}
	for i, s := range m.Steps {
		if !stepIDPattern.MatchString(s.ID) {
			return nil, fmt.Errorf("step %d: id %q: want lowercase letters, digits and '-'", i, s.ID)
		}
		if seen[s.ID] {
			return nil, fmt.Errorf("step %s: id used twice", s.ID)
		}
		seen[s.ID] = true
		a, ok := actions[s.Action]
		if !ok {
			return nil, fmt.Errorf("step %s: unknown action %q", s.ID, s.Action)
		}
		// Decoding the unexpanded step catches unknown and mistyped fields
		// now rather than halfway through a run.
		if err := strictDecode(s.Raw, a.new()); err != nil {
			return nil, fmt.Errorf("step %s (%s): %w", s.ID, s.Action, err)
		}
	}
	return &m, nil
}

func strictDecode(raw json.RawMessage, v any) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	return nil
}

// stepHead is embedded in every action's fields so that strict decoding
// accepts the id and action.
type stepHead struct {
	ID     string `json:"id"`
	Action string `json:"action"`
}

var refPattern = regexp.MustCompile(`\{\{\s*([A-Za-z0-9_.-]+)\s*\}\}`)

// expand replaces every "{{name}}" in the string values of raw with the
// named value. It works on decoded strings, so values holding quotes or
// newlines (PEM blocks) stay valid JSON.
func expand(raw json.RawMessage, values map[string]string) (json.RawMessage, error) {
	var v any
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	var missing []string
	var walk func(any) any
	walk = func(x any) any {
		switch x := x.(type) {
		case string:
			return refPattern.ReplaceAllStringFunc(x, func(ref string) string {
				name := refPattern.FindStringSubmatch(ref)[1]
				val, ok := values[name]
				if !ok {
					missing = append(missing, name)
				}
				return val
			})
		case map[string]any:
			for k, e := range x {
				x[k] = walk(e)
			}
		case []any:
			for i, e := range x {
				x[i] = walk(e)
			}
		}
		return x
	}
	v = walk(v)
	if len(missing) > 0 {
		return nil, fmt.Errorf("unknown value %s (defined by no earlier step)", strings.Join(missing, ", "))
	}
	return json.Marshal(v)
}

// expandString is expand for one string.
func expandString(s string, values map[string]string) (string, error) {
	quoted, err := json.Marshal(s)
	if err != nil {
		return "", err
	}
	raw, err := expand(quoted, values)
	if err != nil {
		return "", err
	}
	var out string
	if err := json.Unmarshal(raw, &out); err != nil {
		return "", err
	}
	return out, nil
}

// AppSpec describes an app of the cluster, as run-app, scale-app and
// deploy-app take it.
type AppSpec struct {
	// App names the app (and carries its meta).
	App controller.App `json:"app"`
	// Image is the key of the app's image in the images manifest
	// (bin/images.json), e.g. "controller".
	Image string `json:"image"`
	// Release holds the process types and env; ids are assigned by bootstrap.
	Release controller.Release `json:"release"`
	// Processes is the formation: jobs per process type.
	Processes map[string]int `json:"processes"`
}

func (a *AppSpec) check() error {
	if !controller.ValidAppName(a.App.Name) {
		return fmt.Errorf("app.name %q must match %s", a.App.Name, controller.AppNamePattern)
	}
	if a.Image == "" {
		return fmt.Errorf("image is required (a key of the images manifest)")
	}
	if len(a.Release.Processes) == 0 {
		return fmt.Errorf("release.processes is empty")
	}
	for typ, n := range a.Processes {
		if _, ok := a.Release.Processes[typ]; !ok {
			return fmt.Errorf("processes: %q is not a process type of the release", typ)
		}
		if n < 0 {
			return fmt.Errorf("processes: %s=%d is negative", typ, n)
		}
	}
	return nil
}

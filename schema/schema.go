// Package schema holds the JSON Schemas of the controller API's request
// bodies, one file per resource, and validates documents against them. The
// server validates every request body with it, and the tests use the same
// schemas, so the two cannot drift apart.
package schema

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"sort"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/santhosh-tekuri/jsonschema/v6/kind"
	"golang.org/x/text/language"
	"golang.org/x/text/message"

	"github.com/openflynn/flynn/pkg/httpjson"
)

//go:embed *.json
var files embed.FS

// baseURL is the schemas' $id prefix; it never goes to the network.
const baseURL = "https://flynn.local/schema/"

// Set is the compiled schemas, safe for concurrent use.
type Set struct {
	schemas map[string]*jsonschema.Schema
	printer *message.Printer
}

// Load compiles every embedded schema.
func Load() (*Set, error) {
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	names, err := fs.Glob(files, "*.json")
	if err != nil {
		return nil, err
	}
	for _, name := range names {
		data, err := files.ReadFile(name)
		if err != nil {
			return nil, err
		}
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
		if err != nil {
			return nil, fmt.Errorf("schema %s: %w", name, err)
		}
		if err := c.AddResource(baseURL+name, doc); err != nil {
			return nil, fmt.Errorf("schema %s: %w", name, err)
		}
	}
	s := &Set{schemas: make(map[string]*jsonschema.Schema, len(names)), printer: message.NewPrinter(language.English)}
	for _, name := range names {
		sch, err := c.Compile(baseURL + name)
		if err != nil {
			return nil, fmt.Errorf("compile schema %s: %w", name, err)
		}
		s.schemas[strings.TrimSuffix(name, ".json")] = sch
	}
	return s, nil
}

// Names lists the schemas by name (file name without ".json").
func (s *Set) Names() []string {
	names := make([]string, 0, len(s.schemas))
	for n := range s.schemas {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Validate checks the JSON document doc against the named schema. A
// document that is not JSON or does not match gives a validation_error
// *httpjson.Error whose Field is the offending value's path ("processes.web").
func (s *Set) Validate(name string, doc []byte) error {
	sch, ok := s.schemas[name]
	if !ok {
		return fmt.Errorf("schema: no schema %q", name)
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(doc))
	if err != nil {
		return httpjson.ValidationError("", "request body is not valid JSON: %v", err)
	}
	err = sch.Validate(inst)
	if err == nil {
		return nil
	}
	var verr *jsonschema.ValidationError
	if !errors.As(err, &verr) {
		return httpjson.ValidationError("", "%v", err)
	}
	leaf, location := deepest(verr)
	return httpjson.ValidationError(strings.Join(location, "."), "%s", leaf.ErrorKind.LocalizedString(s.printer))
}

// deepest follows the first cause down to the most specific failure, which
// names the field a person should fix, and returns it with the deepest
// location on the way (a failure about a property's name has none of its
// own, but its parent names the object).
//
// Below a failure of propertyNames (an env variable's name), locations are
// not taken: they are the name's, not the document's, and the library sets
// that failure's own location to a slice it goes on appending to, so it
// may name a later sibling field instead of the object.
func deepest(e *jsonschema.ValidationError) (*jsonschema.ValidationError, []string) {
	location := e.InstanceLocation
	inName := false
	for len(e.Causes) > 0 {
		e = e.Causes[0]
		if _, ok := e.ErrorKind.(*kind.PropertyNames); ok {
			inName = true
		}
		if !inName && len(e.InstanceLocation) >= len(location) {
			location = e.InstanceLocation
		}
	}
	return e, location
}

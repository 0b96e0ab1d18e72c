package slugbuilder

import (
	"bufio"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
)

// processTypeName is what a Procfile process type may be called: the
// controller's rule for a release's process types (process_type_name in
// schema/common.json), since gitreceive makes a release with every type a
// build reports, and a type the controller refuses would fail the push only
// after the whole build.
var processTypeName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$`)

// ValidProcessType reports whether name may name a process type.
func ValidProcessType(name string) bool { return processTypeName.MatchString(name) }

// ParseProcfile reads a Procfile: one `type: command` per line; blank lines
// and lines starting with # are ignored. A malformed line or an invalid or
// repeated type is an error naming its line, since a Procfile silently
// missing a process would deploy an app that does not start.
func ParseProcfile(r io.Reader) (map[string]string, error) {
	types := map[string]string{}
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, cmd, ok := strings.Cut(line, ":")
		name, cmd = strings.TrimSpace(name), strings.TrimSpace(cmd)
		switch {
		case !ok:
			return nil, fmt.Errorf("invalid Procfile, line %d: want \"type: command\", got %q", n, line)
		case !ValidProcessType(name):
			return nil, fmt.Errorf("invalid Procfile, line %d: process type %q must match %s", n, name, processTypeName)
		case cmd == "":
			return nil, fmt.Errorf("invalid Procfile, line %d: process type %q has no command", n, name)
		}
		if _, dup := types[name]; dup {
			return nil, fmt.Errorf("invalid Procfile, line %d: process type %q appears twice", n, name)
		}
		types[name] = cmd
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read Procfile: %w", err)
	}
	return types, nil
}

// ParseRelease reads the default_process_types of a buildpack's bin/release
// output. That output is YAML, but buildpacks only ever print this shape:
//
//	---
//	addons: []
//	default_process_types:
//	  web: npm start
//
// so a reader of that subset (a top-level key, then indented `type: command`
// lines whose command may be quoted) avoids a YAML dependency. Other
// top-level keys are ignored.
func ParseRelease(r io.Reader) (map[string]string, error) {
	types := map[string]string{}
	in := false
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		raw := sc.Text()
		line := strings.TrimSpace(raw)
		if line == "" || line == "---" || strings.HasPrefix(line, "#") {
			continue
		}
		if raw[0] != ' ' && raw[0] != '\t' {
			key, rest, _ := strings.Cut(line, ":")
			in = key == "default_process_types"
			if in && strings.TrimSpace(rest) != "" && strings.TrimSpace(rest) != "{}" && strings.TrimSpace(rest) != "~" {
				return nil, fmt.Errorf("release line %d: inline default_process_types are not supported: %q", n, line)
			}
			continue
		}
		if !in {
			continue
		}
		name, cmd, ok := strings.Cut(line, ":")
		name, cmd = unquote(strings.TrimSpace(name)), unquote(strings.TrimSpace(cmd))
		if !ok || !ValidProcessType(name) || cmd == "" {
			return nil, fmt.Errorf("release line %d: want \"  type: command\", got %q", n, line)
		}
		types[name] = cmd
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read release: %w", err)
	}
	return types, nil
}

// unquote removes YAML single or double quotes.
func unquote(s string) string {
	if len(s) >= 2 && s[0] == '\'' && s[len(s)-1] == '\'' {
		return strings.ReplaceAll(s[1:len(s)-1], "''", "'")
	}
	if len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"' {
		if u, err := strconv.Unquote(s); err == nil {
			return u
		}
	}
	return s
}

package slugbuilder

import (
	"bytes"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// controllerProcessType is the controller's rule for a process type name
// (schema/common.json process_type_name, schema/release.json processes):
// gitreceive makes a release with one process per type a build reports, so
// a type the Procfile parser accepts and the controller refuses fails the
// push after the whole build.
var controllerProcessType = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_-]{0,62}$`)

// FuzzParseProcfile parses arbitrary Procfiles. What it accepts has valid
// type names (by the controller's rule too) and trimmed, non-empty,
// one-line commands; written back as a Procfile it parses to the same
// types; and it reaches gitreceive whole through the build's
// FLYNN_PROCESS_TYPES line.
func FuzzParseProcfile(f *testing.F) {
	for _, s := range []string{
		"web: node server.js --port $PORT\nworker:bundle exec sidekiq\n",
		"# the app\r\n\r\nweb: ./run\r\n  \n",
		"web: bash -c 'echo a:b'\n",
		"release-phase_1: ./migrate\n",
		"",
		"web ./run\n",
		"web.1: ./run\n",
		"my web: ./run\n",
		"web:\n",
		"web: a\nweb: b\n",
		"-web: x\n",
		"_: x\n",
		strings.Repeat("w", 64) + ": x\n",
		"web: a\rb\n",
		"web:\t\u00a0cmd\u00a0\n",
		"web: caf\xc3\xa9 \xff\n",
		"web: echo \"<&>\" && true\n",
		"  web  :  spaced  \n#x: y\n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, procfile string) {
		types, err := ParseProcfile(strings.NewReader(procfile))
		if err != nil {
			return
		}
		for name, cmd := range types {
			if !ValidProcessType(name) || !controllerProcessType.MatchString(name) {
				t.Fatalf("Procfile %q: type %q accepted, but the controller refuses it", procfile, name)
			}
			if cmd == "" || cmd != strings.TrimSpace(cmd) || strings.ContainsAny(cmd, "\n") {
				t.Fatalf("Procfile %q: type %q has command %q: empty, untrimmed or several lines", procfile, name, cmd)
			}
		}

		// Written back, it reads the same.
		var b strings.Builder
		for _, name := range slices.Sorted(maps.Keys(types)) {
			fmt.Fprintf(&b, "%s: %s\n", name, types[name])
		}
		again, err := ParseProcfile(strings.NewReader(b.String()))
		if err != nil || !maps.Equal(again, types) {
			t.Fatalf("Procfile %q parsed to %q; written back as %q it parses to %q, %v", procfile, types, b.String(), again, err)
		}

		// The build's last line carries the types to gitreceive.
		var line bytes.Buffer
		if err := writeProcessTypesLine(&line, types); err != nil {
			t.Fatal(err)
		}
		got, ok := ParseProcessTypesLine(line.String())
		if !ok || !slices.Equal(slices.Sorted(maps.Keys(got)), slices.Sorted(maps.Keys(types))) {
			t.Fatalf("Procfile %q: types %q came through the build's last line %q as %q (%v)", procfile, types, line.String(), got, ok)
		}
	})
}

// FuzzParseRelease parses arbitrary buildpack bin/release output: what it
// accepts has valid type names and non-empty commands, and writeRelease
// (the .release slugrunner reads) writes it so that it parses back to the
// same types.
func FuzzParseRelease(f *testing.F) {
	for _, s := range []string{
		"---\naddons: []\nconfig_vars:\n  PATH: /app/bin\ndefault_process_types:\n  web: npm start\n  worker: 'node w.js'\n  api: \"node \\\"api\\\".js\"\n",
		"---\naddons: []\n",
		"---\ndefault_process_types: {}\n",
		"default_process_types: {web: x}\n",
		"default_process_types:\n  web\n",
		"default_process_types:\n  web: 'it''s'\n\tworker: \"tab\\tbed\"\n",
		"default_process_types:\n  web: \"\\xff\"\n  x: '\n",
		"default_process_types:\n  web: \"a\\nb\"\n",
		"default_process_types:\n  web: '  padded  '\n",
		"default_process_types:\n  \"web\": ''\n",
		"default_process_types: ~\n  web: x\nother:\n  worker: y\n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, out string) {
		types, err := ParseRelease(strings.NewReader(out))
		if err != nil {
			return
		}
		for name, cmd := range types {
			if !ValidProcessType(name) || !controllerProcessType.MatchString(name) {
				t.Fatalf("release %q: type %q accepted, but the controller refuses it", out, name)
			}
			if cmd == "" {
				t.Fatalf("release %q: type %q has an empty command", out, name)
			}
		}
		written := releaseText(types)
		again, err := ParseRelease(strings.NewReader(written))
		if err != nil || !maps.Equal(again, types) {
			t.Fatalf("release %q parsed to %q; written as %q it parses to %q, %v", out, types, written, again, err)
		}
	})
}

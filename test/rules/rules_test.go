// Package rules checks the rules of the codebase's shape that no compiler
// checks: every package says what it is, the layers depend one way, the
// API types packages stay light, and the shared helpers in pkg/ stay
// leaves.
package rules

import (
	"go/build"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/openflynn/flynn"

// pkg is one package of the module.
type pkg struct {
	path    string // import path
	dir     string
	doc     string
	imports []string // the module's own packages it imports (not tests)
	std     bool     // it imports nothing outside the standard library
}

// packages reads every package of the module (not testdata, not the
// generated bin/).
func packages(t *testing.T) []pkg {
	t.Helper()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	var out []pkg
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			return nil
		}
		switch name := d.Name(); {
		case path != root && (strings.HasPrefix(name, ".") || name == "testdata" || name == "node_modules"),
			path == filepath.Join(root, "bin"):
			return filepath.SkipDir
		}
		bp, err := build.Default.ImportDir(path, 0)
		if err != nil {
			if _, ok := err.(*build.NoGoError); ok {
				return nil
			}
			t.Errorf("%s: %v", path, err)
			return nil
		}
		rel, _ := filepath.Rel(root, path)
		p := pkg{path: module, dir: rel, doc: bp.Doc, std: true}
		if rel != "." {
			p.path = module + "/" + filepath.ToSlash(rel)
		}
		if p.doc == "" && len(bp.GoFiles) == 0 {
			// A package of tests alone (or of files behind a build tag)
			// says what it is in one of those.
			p.doc = testDoc(t, path, slices.Concat(bp.TestGoFiles, bp.XTestGoFiles, bp.IgnoredGoFiles))
		}
		for _, imp := range bp.Imports {
			if strings.HasPrefix(imp, module) {
				p.imports = append(p.imports, imp)
			} else if first, _, _ := strings.Cut(imp, "/"); strings.Contains(first, ".") {
				p.std = false
			}
		}
		out = append(out, p)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(out) < 40 {
		t.Fatalf("found %d packages; the walk is broken", len(out))
	}
	return out
}

// testDoc returns the package doc comment of the first of files that has
// one.
func testDoc(t *testing.T, dir string, files []string) string {
	for _, f := range files {
		af, err := parser.ParseFile(token.NewFileSet(), filepath.Join(dir, f), nil, parser.PackageClauseOnly|parser.ParseComments)
		if err != nil {
			t.Errorf("%s: %v", f, err)
			continue
		}
		if af.Doc != nil {
			return af.Doc.Text()
		}
	}
	return ""
}

// under reports whether import path p is the module's folder dir or below it.
func under(p, dir string) bool {
	full := module + "/" + dir
	return p == full || strings.HasPrefix(p, full+"/")
}

// TestEveryPackageHasADocComment: a newcomer learns what a package is for
// from its doc comment (`go doc`), so each has one, which names it.
func TestEveryPackageHasADocComment(t *testing.T) {
	for _, p := range packages(t) {
		if strings.TrimSpace(p.doc) == "" {
			t.Errorf("package %s (%s) has no package doc comment", p.path, p.dir)
		}
	}
}

// layer1 are the folders of layer 1: ordinary jobs layer 0 runs, and the
// tools built on them. The log aggregator's server is one; its wire types,
// client and shipper are not, since flynn-host ships every job's lines
// with them (labelled with the job's metadata, opaque to it).
var layer1 = []string{"controller", "router", "gitreceive", "blobstore", "slugbuilder", "slugrunner", "bootstrap", "cli", "images", "logaggregator/server", "logaggregator/drain"}

// TestLayerZeroNeverImportsLayerOne: flynn-host and discoverd know nothing
// of apps; they run jobs and track services. (flynn-host's operator
// commands live beside the CLI, in cli/hostcli, for that reason.)
func TestLayerZeroNeverImportsLayerOne(t *testing.T) {
	for _, p := range packages(t) {
		if !under(p.path, "host") && !under(p.path, "discoverd") {
			continue
		}
		for _, imp := range p.imports {
			for _, l1 := range layer1 {
				if under(imp, l1) {
					t.Errorf("layer-0 package %s imports layer-1 package %s", p.path, imp)
				}
			}
		}
	}
}

// apiTypes are the components' API types packages: the wire types that
// servers, clients and every consumer share.
var apiTypes = []string{"controller", "host", "discoverd", "router", "blobstore", "logaggregator"}

// TestAPITypesStayLight: an API types package imports only the standard
// library and other components' API types, so importing a component's
// types never pulls in its server.
func TestAPITypesStayLight(t *testing.T) {
	for _, p := range packages(t) {
		if !slices.Contains(apiTypes, p.dir) {
			continue
		}
		if !p.std {
			t.Errorf("API types package %s imports outside the standard library", p.path)
		}
		for _, imp := range p.imports {
			if !slices.Contains(apiTypes, strings.TrimPrefix(imp, module+"/")) {
				t.Errorf("API types package %s imports %s, which is not an API types package", p.path, imp)
			}
		}
	}
}

// TestSharedHelpersAreLeaves: pkg/ holds small helpers every component may
// use; they import no component (and no test helper that does).
func TestSharedHelpersAreLeaves(t *testing.T) {
	for _, p := range packages(t) {
		if !under(p.path, "pkg") {
			continue
		}
		for _, imp := range p.imports {
			if !under(imp, "pkg") {
				t.Errorf("shared helper %s imports %s, outside pkg/", p.path, imp)
			}
		}
	}
}

// TestNamedDependencies holds the dependencies the code once got wrong.
func TestNamedDependencies(t *testing.T) {
	forbidden := []struct{ from, to, why string }{
		{"bootstrap", "controller/scheduler", "bootstrap builds jobs with controller/hostjob, not the scheduler"},
		{"controller/hostrunner", "controller/scheduler", "one-off jobs and formation jobs share controller/hostjob"},
		{"router", "controller/postgres", "the router follows the controller's API, never its database"},
		{"cli", "controller/postgres", "the CLI speaks the API"},
	}
	for _, p := range packages(t) {
		for _, f := range forbidden {
			if !under(p.path, f.from) {
				continue
			}
			for _, imp := range p.imports {
				if under(imp, f.to) {
					t.Errorf("%s imports %s: %s", p.path, imp, f.why)
				}
			}
		}
	}
	if _, err := os.Stat("../../controller/hostjob"); err != nil {
		t.Errorf("controller/hostjob, which owns the controller→host job translation, is missing: %v", err)
	}
}

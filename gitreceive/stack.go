package gitreceive

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/openflynn/flynn/pkg/stacks"
)

// StackImages are the two images of a stack: the build job's and the one
// its slugs run on.
type StackImages struct {
	Slugbuilder string
	Slugrunner  string
}

// imagesOf returns the images of the stack named name, and whether this
// cluster builds it.
func (b *builder) imagesOf(name string) (StackImages, bool) {
	if name == stacks.Default {
		return StackImages{Slugbuilder: b.cfg.SlugbuilderImage, Slugrunner: b.cfg.SlugrunnerImage}, true
	}
	imgs, ok := b.cfg.Stacks[name]
	return imgs, ok
}

// builtStacks lists the stacks this cluster builds, the default first,
// and the ones whose images it does not have (yet: a new cluster builds
// the other stacks' images after it starts).
func (b *builder) builtStacks() (built, unbuilt []stacks.Stack) {
	for _, st := range stacks.All() {
		if _, ok := b.imagesOf(st.Name); ok {
			built = append(built, st)
		} else {
			unbuilt = append(unbuilt, st)
		}
	}
	return built, unbuilt
}

// builderApp is the system app whose release runs a stack's build jobs:
// one app per stack, as a release has one image.
func (b *builder) builderApp(st stacks.Stack) string { return b.cfg.BuilderApp + st.ImageSuffix }

// chooseStack returns the stack a push builds on: the app's own when it
// selected one; else the default, unless the pushed source asks for a
// Python or Node.js version that only another built stack has (Heroku
// makes people choose the stack; a version file saying what is wanted is
// choice enough). When no stack has what is asked for, the default builds
// and its buildpack fails with the versions side by side.
func (b *builder) chooseStack(ctx context.Context, p *push, commit string, gitEnv map[string]string, out io.Writer) (stacks.Stack, error) {
	built, unbuilt := b.builtStacks()
	wants, err := b.languageWants(ctx, p.repo, commit, gitEnv)
	if err != nil {
		return stacks.Stack{}, err
	}
	if name := p.app.Stack; name != "" {
		for _, st := range built {
			if st.Name != name {
				continue
			}
			// The app chose: it builds there, and a version the stack
			// lacks fails in its buildpack. Where another stack has it,
			// say which.
			if !satisfiesAll(st, wants) {
				for _, other := range built {
					if other.Name != st.Name && satisfiesAll(other, wants) {
						fmt.Fprintf(out, "-----> %s: the app's stack %s lacks it; %s has it (`flynn stack set %s`)\n",
							askedFor(wants), st.Name, other.Name, other.Name)
						break
					}
				}
			}
			return st, nil
		}
		return stacks.Stack{}, &userError{fmt.Sprintf("%s's stack %s is not built on this cluster (built: %s); change it with `flynn stack set`",
			p.app.Name, name, stackNames(built))}
	}
	def := built[0]
	if satisfiesAll(def, wants) {
		return def, nil
	}
	for _, st := range built[1:] {
		if satisfiesAll(st, wants) {
			fmt.Fprintf(out, "-----> %s: building on stack %s (Debian %s), which has it; `flynn stack set %s` keeps it\n",
				askedFor(wants), st.Name, st.Debian, st.Name)
			return st, nil
		}
	}
	// No stack has it: the default builds, and its buildpack fails if it
	// needs the language; what each stack has is said here once.
	var have []string
	for _, st := range built {
		var langs []string
		for _, w := range wants {
			langs = append(langs, w.lang+" "+w.version(st))
		}
		have = append(have, fmt.Sprintf("%s: %s", st.Name, strings.Join(langs, ", ")))
	}
	// A stack whose images are not built might have it.
	for _, st := range unbuilt {
		have = append(have, st.Name+": not built on this cluster")
	}
	fmt.Fprintf(out, "-----> %s: no built stack has it (%s)\n", askedFor(wants), strings.Join(have, "; "))
	return def, nil
}

// askedFor says what the wants ask for: "Python 3.13 (.python-version)".
func askedFor(wants []languageWant) string {
	var asked []string
	for _, w := range wants {
		asked = append(asked, fmt.Sprintf("%s %s (%s)", w.lang, w.requested, w.source))
	}
	return strings.Join(asked, ", ")
}

func stackNames(list []stacks.Stack) string {
	names := make([]string, len(list))
	for i, st := range list {
		names[i] = st.Name
	}
	return strings.Join(names, ", ")
}

// languageWant is a language version the pushed source asks for.
type languageWant struct {
	lang      string // "Python", "Node.js"
	requested string
	source    string // the file that asks
	// allows reports whether a stack's major.minor has it.
	allows func(major, minor int) bool
	// version picks the stack's version of the language.
	version func(stacks.Stack) string
}

func satisfiesAll(st stacks.Stack, wants []languageWant) bool {
	for _, w := range wants {
		major, minor, ok := stacks.MajorMinor(w.version(st))
		if !ok || !w.allows(major, minor) {
			return false
		}
	}
	return true
}

// versionFileLimit bounds the version files read from a push.
const versionFileLimit = 64 << 10

// languageWants reads the versions the source at commit asks for, in the
// files the bundled buildpacks read: .python-version (else runtime.txt)
// and package.json's engines.node. What cannot be understood here asks
// for nothing: the buildpack reads it again and says what is wrong.
func (b *builder) languageWants(ctx context.Context, repo, commit string, gitEnv map[string]string) ([]languageWant, error) {
	read := func(path string) (string, error) {
		data, err := b.readTreeFile(ctx, repo, commit, gitEnv, path, versionFileLimit)
		if errors.Is(err, errTooLarge) {
			return "", nil
		}
		return string(data), err
	}
	var wants []languageWant
	python := func(st stacks.Stack) string { return st.Python }
	pv, err := read(".python-version")
	if err != nil {
		return nil, err
	}
	if v, ok := pythonVersionFile(pv); ok {
		wants = append(wants, pythonWant(v, ".python-version", python))
	} else {
		rt, err := read("runtime.txt")
		if err != nil {
			return nil, err
		}
		if v, ok := strings.CutPrefix(strings.TrimSpace(rt), "python-"); ok {
			wants = append(wants, pythonWant(v, "runtime.txt", python))
		}
	}
	pkg, err := read("package.json")
	if err != nil {
		return nil, err
	}
	var manifest struct {
		Engines struct {
			Node string `json:"node"`
		} `json:"engines"`
	}
	if json.Unmarshal([]byte(pkg), &manifest) == nil && manifest.Engines.Node != "" {
		rng := manifest.Engines.Node
		if _, understood := nodeRangeAllows(rng, 0, 0); understood {
			wants = append(wants, languageWant{lang: "Node.js", requested: rng, source: "package.json engines.node",
				allows:  func(major, minor int) bool { ok, _ := nodeRangeAllows(rng, major, minor); return ok },
				version: func(st stacks.Stack) string { return st.Node }})
		}
	}
	// Keep only what was understood: a Python version that is not
	// major.minor asks for nothing here.
	var out []languageWant
	for _, w := range wants {
		if w.allows != nil {
			out = append(out, w)
		}
	}
	return out, nil
}

// pythonVersionFile returns the version a .python-version file names: its
// first line that is not empty or a comment.
func pythonVersionFile(content string) (string, bool) {
	for _, line := range strings.Split(content, "\n") {
		line = strings.TrimSpace(line)
		if line != "" && !strings.HasPrefix(line, "#") {
			return line, true
		}
	}
	return "", false
}

// pythonWant asks for Python major.minor v (a patch level is a wish the
// buildpack reports); a version that is not major.minor asks nothing.
func pythonWant(v, source string, version func(stacks.Stack) string) languageWant {
	w := languageWant{lang: "Python", requested: v, source: source, version: version}
	if major, minor, ok := stacks.MajorMinor(v); ok {
		w.allows = func(M, m int) bool { return M == major && m == minor }
	}
	return w
}

// nodeRangeAllows reports whether a Node.js major.minor satisfies an npm
// version range, judged on major and minor only, and whether the range
// was understood at all: alternatives (||), hyphen ranges, comparators
// (>=, >, <=, <, =), caret and tilde ranges, x-ranges and plain versions.
func nodeRangeAllows(rng string, major, minor int) (allowed, understood bool) {
	understood = true
	for _, alt := range strings.Split(rng, "||") {
		fields := strings.Fields(alt)
		// "A - B" is ">=A <=B".
		if len(fields) == 3 && fields[1] == "-" {
			fields = []string{">=" + fields[0], "<=" + fields[2]}
		}
		all := true
		for _, f := range fields {
			ok, known := nodeComparator(f, major, minor)
			if !known {
				return false, false
			}
			all = all && ok
		}
		if all {
			allowed = true
		}
	}
	return allowed, understood
}

// nodeComparator judges one comparator of a range.
func nodeComparator(c string, major, minor int) (ok, known bool) {
	op := ""
	for _, p := range []string{">=", "<=", ">", "<", "=", "^", "~"} {
		if rest, found := strings.CutPrefix(c, p); found {
			op, c = p, rest
			break
		}
	}
	c = strings.TrimPrefix(c, "v")
	parts := strings.Split(c, ".")
	if len(parts) > 3 {
		return false, false
	}
	// X and Y are the range's major and minor; -1 is a wildcard.
	X, Y := -1, -1
	for i, p := range parts[:min(2, len(parts))] {
		if p == "x" || p == "X" || p == "*" {
			break
		}
		n, err := strconv.Atoi(strings.SplitN(p, "-", 2)[0])
		if err != nil || n < 0 {
			return false, false
		}
		if i == 0 {
			X = n
		} else {
			Y = n
		}
	}
	cmp := func() int { // the stack against X.Y, wildcards equal
		switch {
		case X < 0:
			return 0
		case major != X:
			return compareInts(major, X)
		case Y < 0:
			return 0
		default:
			return compareInts(minor, Y)
		}
	}
	switch op {
	case "", "=":
		return cmp() == 0, true
	case ">=":
		return cmp() >= 0, true
	case "<=":
		return cmp() <= 0, true
	case ">":
		return cmp() > 0, true
	case "<":
		return cmp() < 0, true
	case "~":
		return cmp() == 0, true
	case "^":
		if X < 0 {
			return true, true
		}
		if X == 0 && Y >= 0 {
			return major == 0 && minor == Y, true
		}
		return major == X && (Y < 0 || minor >= Y), true
	}
	return false, false
}

func compareInts(a, b int) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// stackImages pairs the --stack-slugbuilder and --stack-slugrunner
// values (NAME=IMAGE) into Config.Stacks. Each stack must be one package
// pkg/stacks knows, other than the default, and have both images.
func stackImages(builders, runners []string) (map[string]StackImages, error) {
	out := map[string]StackImages{}
	for _, list := range []struct {
		flag   string
		values []string
		set    func(*StackImages, string)
	}{
		{"--stack-slugbuilder", builders, func(s *StackImages, ref string) { s.Slugbuilder = ref }},
		{"--stack-slugrunner", runners, func(s *StackImages, ref string) { s.Slugrunner = ref }},
	} {
		for _, v := range list.values {
			name, ref, ok := strings.Cut(v, "=")
			if !ok || ref == "" {
				return nil, fmt.Errorf("%s %q: want NAME=IMAGE", list.flag, v)
			}
			if _, known := stacks.Lookup(name); !known || name == stacks.Default {
				return nil, fmt.Errorf("%s %q: %s is not a stack other than the default (%s)", list.flag, v, name, strings.Join(stacks.Names()[1:], ", "))
			}
			imgs := out[name]
			list.set(&imgs, ref)
			out[name] = imgs
		}
	}
	for name, imgs := range out {
		if imgs.Slugbuilder == "" || imgs.Slugrunner == "" {
			return nil, fmt.Errorf("stack %s needs both --stack-slugbuilder and --stack-slugrunner", name)
		}
	}
	return out, nil
}

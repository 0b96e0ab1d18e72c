package images

import (
	"fmt"
	"path/filepath"
	"strings"

	"github.com/openflynn/flynn/pkg/stacks"
)

// BasePackages are installed in every image's Debian root (flynn/base):
// a shell, the CA certificates, ps and the time zones.
var BasePackages = []string{"bash", "ca-certificates", "procps", "tzdata"}

// StackPackages are added to the base in flynn/stack, the image app
// processes run in (through slugrunner): the usual tools, plus the
// runtimes the bundled buildpacks' slugs need at run time (Node.js with
// npm for `npm start`, Python 3 for Python apps and for the static-site
// buildpack's server), since slugs do not carry their own interpreters
// here.
var StackPackages = []string{"curl", "git", "netbase", "nodejs", "npm", "python3"}

// BuildPackages are added to the stack in flynn/build, the image
// buildpacks compile in: a C toolchain for native extensions, pip and venv
// for Python apps. The Go toolchain is copied from the host (Debian
// bookworm's golang-go is too old for current go.mod files).
var BuildPackages = []string{
	"gcc", "g++", "make", "libc6-dev", "pkg-config", "xz-utils", "unzip",
	"python3-pip", "python3-venv",
}

// debianExcludes keep the images small: no manual pages, documentation
// (copyright files stay) or translations. They are dpkg path filters in
// the root's dpkg configuration, so the packages later layers install
// follow them too.
var debianExcludes = []string{
	"path-exclude=/usr/share/man/*",
	"path-exclude=/usr/share/doc/*",
	"path-include=/usr/share/doc/*/copyright",
	"path-exclude=/usr/share/locale/*",
}

// debianOptions apply debianExcludes and keep apt's translations out.
//
// The filters are not mmdebstrap's --dpkgopt: given those, mmdebstrap
// pipes each essential package through mmtarfilter, a Python program
// started once a package, which made a root take 80–90 s instead of
// 50–60 s on two cores. Here a setup hook writes them into the root's
// dpkg configuration before anything is unpacked, so dpkg applies them
// to every package it installs, and a customize hook removes what the
// unfiltered unpacking of the essential packages left (and the
// alternatives' links that now point at nothing).
var debianOptions = []string{
	`--setup-hook=mkdir -p "$1/etc/dpkg/dpkg.cfg.d" && printf '%s\n' '` + strings.Join(debianExcludes, "' '") + `'` +
		` > "$1/etc/dpkg/dpkg.cfg.d/50flynn-excludes"`,
	`--customize-hook=cd "$1" && rm -rf usr/share/man/* usr/share/locale/* && ` +
		`find usr/share/doc -mindepth 2 ! -type d ! -name copyright -delete && ` +
		`for l in etc/alternatives/*; do t=$(readlink "$l"); [ -e "./$t" ] || [ -L "./$t" ] || rm -f "$l"; done`,
	`--aptopt=Acquire::Languages "none"`,
}

// AppUID and AppGID are the unprivileged user app and build jobs run as
// (flynn-host never runs them as root), "app" in the stack and build
// images, whose home is /app: the build directory and, at run time, the
// unpacked slug.
const AppUID, AppGID = 1000, 1000

// appUserCommands add the app user to an image and give it /app.
var appUserCommands = []string{
	fmt.Sprintf(`echo 'app:x:%d:%d:Flynn app:/app:/bin/bash' >> /etc/passwd`, AppUID, AppGID),
	fmt.Sprintf(`echo 'app:x:%d:' >> /etc/group`, AppGID),
	fmt.Sprintf(`mkdir -p /app && chown %d:%d /app`, AppUID, AppGID),
}

const defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// Component is a Flynn binary that runs in a container.
type Component struct {
	// Key names it in the manifest.
	Key string
	// Binary is the file name under bin/.
	Binary string
	// From is the Key of its base image ("stack" or "build").
	From string
}

// Components are the binaries that run as container jobs. flynn-host is not
// one: it runs on the host and starts the others.
var Components = []Component{
	{Key: "discoverd", Binary: "discoverd", From: "stack"},
	{Key: "controller", Binary: "flynn-controller", From: "stack"},
	{Key: "scheduler", Binary: "flynn-scheduler", From: "stack"},
	{Key: "router", Binary: "flynn-router", From: "stack"},
	{Key: "blobstore", Binary: "blobstore", From: "stack"},
	{Key: "logaggregator", Binary: "flynn-logaggregator", From: "stack"},
	{Key: "dashboard", Binary: "flynn-dashboard", From: "stack"},
	{Key: "gitreceive", Binary: "gitreceive", From: "stack"},
	{Key: "slugrunner", Binary: "slugrunner", From: "stack"},
	{Key: "slugbuilder", Binary: "slugbuilder", From: "build"},
	{Key: "postgres", Binary: "flynn-postgres", From: "postgres-base"},
	{Key: "postgres-api", Binary: "flynn-postgres-api", From: "postgres-base"},
	{Key: "redis", Binary: "flynn-redis", From: "redis-base"},
	{Key: "redis-api", Binary: "flynn-redis-api", From: "stack"},
}

// Sources says where the host files of the Flynn images are.
type Sources struct {
	// Repo is the repository root (for buildpacks/).
	Repo string
	// Bin is the directory of the built binaries; default Repo/bin.
	Bin string
	// GoRoot is the Go toolchain copied into flynn/build, normally the
	// host's `go env GOROOT`.
	GoRoot string
	// Prefix is the repository prefix of every image; default "flynn/".
	// Tests use their own so that their images are theirs to remove.
	Prefix string
}

// StackImages are the images of stack st, in build order: its Debian
// root (base), the runtime image (stack) on it, and the build image on
// that. Only the root is made by mmdebstrap; the others are apt layers,
// so the packages they share are installed once.
func StackImages(prefix, goRoot string, st stacks.Stack) []Image {
	return []Image{baseImage(prefix, st), stackImage(prefix, st), buildImage(prefix, goRoot, st)}
}

// OtherStackKeys returns the keys of the images in imgs that belong to a
// stack other than the default: those ending in its ImageSuffix (its base,
// stack and build images, and slugbuilder and slugrunner on them).
func OtherStackKeys(imgs []Image) map[string]bool {
	keys := map[string]bool{}
	for _, st := range stacks.All() {
		if st.ImageSuffix == "" {
			continue
		}
		for _, img := range imgs {
			if strings.HasSuffix(img.Key, st.ImageSuffix) {
				keys[img.Key] = true
			}
		}
	}
	return keys
}

// baseImage is the Debian root of stack st's suite that every other image
// of that suite is made from: minbase and BasePackages.
func baseImage(prefix string, st stacks.Stack) Image {
	return Image{
		Key:  "base" + st.ImageSuffix,
		Name: prefix + "base" + st.ImageSuffix,
		Debian: &Debian{
			Suite: st.Suite, Variant: "minbase", Packages: BasePackages, Options: debianOptions,
		},
		Env: []string{"PATH=" + defaultPath, "LANG=C.UTF-8"},
		Cmd: []string{"/bin/bash"},
	}
}

// stackImage is the runtime image of stack st: the platform's components
// run on the default one, apps on their stack's.
func stackImage(prefix string, st stacks.Stack) Image {
	return Image{
		Key:      "stack" + st.ImageSuffix,
		Name:     prefix + "stack" + st.ImageSuffix,
		From:     "base" + st.ImageSuffix,
		Packages: StackPackages,
		Commands: appUserCommands,
	}
}

// buildImage is the buildpack build image of stack st: the runtime image,
// the compilers and the host's Go toolchain.
func buildImage(prefix, goRoot string, st stacks.Stack) Image {
	return Image{
		Key:      "build" + st.ImageSuffix,
		Name:     prefix + "build" + st.ImageSuffix,
		From:     "stack" + st.ImageSuffix,
		Packages: BuildPackages,
		Files: []File{{
			Source: goRoot, Dest: "/usr/local/go",
			// Tests, API lists and docs are not needed to compile apps.
			Exclude: []string{"test", "api", "doc", "pkg/obj"},
		}},
		// GOTOOLCHAIN=local: a go.mod asking for a newer Go must fail clearly
		// instead of trying to download a toolchain.
		Env: []string{"PATH=/usr/local/go/bin:" + defaultPath, "GOTOOLCHAIN=local"},
	}
}

// postgresImage carries Debian's PostgreSQL 15 server and Patroni, which
// runs it highly available over the cluster's etcd: the base of the
// postgres appliance's images (flynn-postgres, flynn-postgres-api, whose
// pg_dump and psql `flynn pg` runs too).
func postgresImage(prefix string) Image {
	return Image{
		Key:  "postgres-base",
		Name: prefix + "postgres-base",
		From: "base",
		// python3-idna: Patroni reaching etcd over TLS needs it (urllib3's
		// pyOpenSSL), and no package it depends on pulls it in (urllib3
		// only suggests it).
		Packages: []string{"postgresql-15", "patroni", "python3-idna"},
		Env:      []string{"PATH=/usr/lib/postgresql/15/bin:" + defaultPath},
	}
}

// redisImage carries Debian's Redis server: the base of the redis
// appliance's server image.
func redisImage(prefix string) Image {
	return Image{
		Key:      "redis-base",
		Name:     prefix + "redis-base",
		From:     "base",
		Packages: []string{"redis-server"},
	}
}

// ComponentImage adds a component's static binary to its base image.
func ComponentImage(prefix, binDir string, c Component) Image {
	dest := "/usr/local/bin/" + c.Binary
	return Image{
		Key:        c.Key,
		Name:       prefix + c.Key,
		From:       c.From,
		Files:      []File{{Source: filepath.Join(binDir, c.Binary), Dest: dest, Mode: 0o755}},
		Entrypoint: []string{dest},
		Optional:   true,
	}
}

// Flynn returns every image of the cluster in build order.
func Flynn(src Sources) []Image {
	prefix := src.Prefix
	if prefix == "" {
		prefix = "flynn/"
	}
	bin := src.Bin
	if bin == "" {
		bin = filepath.Join(src.Repo, "bin")
	}
	def, _ := stacks.Lookup(stacks.Default)
	imgs := append(StackImages(prefix, src.GoRoot, def), postgresImage(prefix), redisImage(prefix))
	for _, c := range Components {
		img := ComponentImage(prefix, bin, c)
		if c.Key == "slugbuilder" {
			img.Files = append(img.Files, buildpacksFile(src.Repo))
		}
		imgs = append(imgs, img)
	}
	// The other stacks: their own bases, and slugbuilder and slugrunner on
	// them, with the same binaries and buildpacks.
	for _, st := range stacks.All() {
		if st.ImageSuffix == "" {
			continue
		}
		builder := ComponentImage(prefix, bin, Component{Key: "slugbuilder" + st.ImageSuffix, Binary: "slugbuilder", From: "build" + st.ImageSuffix})
		builder.Files = append(builder.Files, buildpacksFile(src.Repo))
		imgs = append(imgs, StackImages(prefix, src.GoRoot, st)...)
		imgs = append(imgs, builder,
			ComponentImage(prefix, bin, Component{Key: "slugrunner" + st.ImageSuffix, Binary: "slugrunner", From: "stack" + st.ImageSuffix}))
	}
	return imgs
}

// buildpacksFile puts the bundled buildpacks in a slugbuilder image. They
// ride with slugbuilder rather than in the build image, so editing one
// rebuilds only this small layer.
func buildpacksFile(repo string) File {
	return File{Source: filepath.Join(repo, "buildpacks"), Dest: "/buildpacks"}
}

// Select returns the images named by keys and the images they are built
// from, in build order.
func Select(imgs []Image, keys []string) []Image {
	want := map[string]bool{}
	for _, k := range keys {
		want[k] = true
	}
	// Parents come before children, so one backwards pass finds them all.
	for i := len(imgs) - 1; i >= 0; i-- {
		if want[imgs[i].Key] && imgs[i].From != "" {
			want[imgs[i].From] = true
		}
	}
	var out []Image
	for _, img := range imgs {
		if want[img.Key] {
			out = append(out, img)
		}
	}
	return out
}

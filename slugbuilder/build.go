package slugbuilder

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/openflynn/flynn/pkg/cabundle"
)

// Stack is the STACK buildpacks see unless the build's environment sets
// another (Config.Stack): the build and stack images are Debian 12
// (bookworm).
const Stack = "flynn-bookworm"

// Defaults of Config's bounds on the pushed tree: far above any real app's
// source, far below a disk.
const (
	DefaultMaxSourceBytes   = 2 << 30
	DefaultMaxSourceEntries = 200_000
)

// Config is one build; cmd/slugbuilder fills it from the job's environment.
type Config struct {
	// BuildDir holds the app's source and becomes the slug; default "/app",
	// the directory slugrunner runs it from, so absolute paths a buildpack
	// writes stay right.
	BuildDir string
	// CacheDir is the buildpacks' cache; default "/tmp/cache".
	CacheDir string
	// EnvDir receives the app's config vars; default "/tmp/env".
	EnvDir string
	// BuildpacksDir holds the bundled buildpacks; default "/buildpacks".
	BuildpacksDir string
	// FetchDir receives buildpacks named by URL; default "/tmp/buildpacks".
	FetchDir string
	// BuildpackURL, when set, replaces detection (BUILDPACK_URL).
	BuildpackURL string
	// SourceVersion is the pushed commit (SOURCE_VERSION).
	SourceVersion string
	// AppEnv are the app's config vars, written to EnvDir.
	AppEnv map[string]string
	// Env is the environment buildpacks run with (before STACK,
	// SOURCE_VERSION and the buildpack API's own are added). When it holds
	// cabundle.EnvVar, the cluster's extra CA certificates, Build first
	// adds them to the system's bundle (see package cabundle).
	Env []string
	// Stack is the STACK buildpacks see; default Stack. An operator sets
	// another for buildpacks that refuse stacks they do not know
	// (buildpacks/README.md).
	Stack string
	// CABundlePath receives the system's CA bundle and the cluster's
	// extra certificates; default cabundle.DefaultPath.
	CABundlePath string
	// SlugPutURL receives the slug (a PUT); empty skips the upload.
	SlugPutURL string
	// CacheURL is where the cache is restored from (a GET; 404 for none
	// yet); empty starts with an empty cache.
	CacheURL string
	// CachePutURL is where the cache is saved to (a PUT); empty keeps it
	// local.
	CachePutURL string
	// MaxSourceBytes bounds the unpacked size of the pushed tree (and of a
	// buildpack downloaded as an archive); default DefaultMaxSourceBytes.
	MaxSourceBytes int64
	// MaxSourceEntries bounds its number of files, directories and links;
	// default DefaultMaxSourceEntries.
	MaxSourceEntries int
	// HTTPClient talks to the blobstore and fetches buildpacks; default
	// http.DefaultClient.
	HTTPClient *http.Client
	// Stdout receives the build's output; default os.Stdout.
	Stdout io.Writer
}

func (cfg Config) withDefaults() Config {
	def := func(s *string, v string) {
		if *s == "" {
			*s = v
		}
	}
	def(&cfg.BuildDir, "/app")
	def(&cfg.CacheDir, "/tmp/cache")
	def(&cfg.EnvDir, "/tmp/env")
	def(&cfg.BuildpacksDir, "/buildpacks")
	def(&cfg.FetchDir, "/tmp/buildpacks")
	def(&cfg.Stack, Stack)
	def(&cfg.CABundlePath, cabundle.DefaultPath)
	if cfg.MaxSourceBytes <= 0 {
		cfg.MaxSourceBytes = DefaultMaxSourceBytes
	}
	if cfg.MaxSourceEntries <= 0 {
		cfg.MaxSourceEntries = DefaultMaxSourceEntries
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = http.DefaultClient
	}
	if cfg.Stdout == nil {
		cfg.Stdout = os.Stdout
	}
	return cfg
}

// Result is what a build produced.
type Result struct {
	// Buildpacks are the names of the buildpacks that compiled the app.
	Buildpacks []string
	// ProcessTypes are the buildpacks' defaults overridden by the Procfile.
	ProcessTypes map[string]string
	// SlugSize is the size of the uploaded slug in bytes (0 if not uploaded).
	SlugSize int64
	// Dockerfile is true when no buildpack matched and the app has a
	// Dockerfile to be built from instead: nothing was compiled, and
	// Buildpacks and ProcessTypes are empty.
	Dockerfile bool
}

// Run is the whole build job: unpack source (a tar; nil when BuildDir is
// already filled) into BuildDir, restore the cache, build, upload the slug,
// save the cache and print the process types line; for an app to be built
// from its Dockerfile (Result.Dockerfile) only print DockerfileLine.
func Run(ctx context.Context, cfg Config, source io.Reader, logger *slog.Logger) (*Result, error) {
	cfg = cfg.withDefaults()
	for _, dir := range []string{cfg.BuildDir, cfg.CacheDir, cfg.EnvDir, cfg.FetchDir} {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, err
		}
	}
	if source != nil {
		if err := ExtractTar(source, cfg.BuildDir, cfg.sourceLimits()); err != nil {
			// Nothing half-unpacked is left for anything to build or
			// upload.
			if cerr := clearDir(cfg.BuildDir); cerr != nil {
				logger.Warn("clear the build directory", "err", cerr)
			}
			var lim *LimitError
			if errors.As(err, &lim) {
				return nil, fmt.Errorf("refusing the pushed tree: %w (the limit for a build)", err)
			}
			return nil, fmt.Errorf("unpack the app: %w", err)
		}
	}
	if cfg.CacheURL != "" {
		found, err := restoreCache(ctx, cfg.HTTPClient, cfg.CacheURL, cfg.CacheDir)
		if err != nil {
			return nil, err
		}
		if found {
			step(cfg.Stdout, "Restoring build cache...")
			logger.Debug("build cache restored", "dir", cfg.CacheDir)
		}
	}
	res, err := Build(ctx, cfg, logger)
	if err != nil {
		return nil, err
	}
	if res.Dockerfile {
		// Nothing was built: no slug to upload, and the cache is as it
		// was restored.
		if _, err := io.WriteString(cfg.Stdout, DockerfileLine+"\n"); err != nil {
			return nil, err
		}
		return res, nil
	}
	if cfg.SlugPutURL != "" {
		step(cfg.Stdout, "Compressing and uploading the slug...")
		start := time.Now()
		size, err := putTarGz(ctx, cfg.HTTPClient, cfg.SlugPutURL, cfg.BuildDir, slugSkip)
		if err != nil {
			return nil, fmt.Errorf("upload the slug: %w", err)
		}
		res.SlugSize = size
		detail(cfg.Stdout, fmt.Sprintf("Slug size: %.1f MB (%s)", float64(size)/(1<<20), time.Since(start).Round(time.Millisecond)))
	}
	if cfg.CachePutURL != "" {
		if _, err := putTarGz(ctx, cfg.HTTPClient, cfg.CachePutURL, cfg.CacheDir, nil); err != nil {
			return nil, fmt.Errorf("save the build cache: %w", err)
		}
	}
	if err := writeProcessTypesLine(cfg.Stdout, res.ProcessTypes); err != nil {
		return nil, err
	}
	return res, nil
}

func (cfg Config) sourceLimits() Limits {
	return Limits{MaxBytes: cfg.MaxSourceBytes, MaxEntries: cfg.MaxSourceEntries}
}

// clearDir removes what dir holds, keeping dir.
func clearDir(dir string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	var errs []error
	for _, e := range entries {
		errs = append(errs, os.RemoveAll(filepath.Join(dir, e.Name())))
	}
	return errors.Join(errs...)
}

// slugSkip leaves the app's git metadata out of the slug.
func slugSkip(rel string, _ bool) bool { return rel == ".git" }

// Build runs the buildpacks over cfg.BuildDir and settles the process types.
// When no buildpack matches an app that has a Dockerfile it runs none and
// returns a Result with Dockerfile set.
func Build(ctx context.Context, cfg Config, logger *slog.Logger) (*Result, error) {
	cfg = cfg.withDefaults()
	for _, dir := range []string{cfg.CacheDir, cfg.FetchDir} {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, err
		}
	}
	cfg, err := trustExtraCAs(cfg)
	if err != nil {
		return nil, err
	}
	if cfg.Stack != Stack {
		step(cfg.Stdout, fmt.Sprintf("Buildpacks see STACK=%s (set in the build's environment)", cfg.Stack))
	}
	if err := applySlugignore(cfg.BuildDir); err != nil {
		return nil, err
	}
	if err := writeEnvDir(cfg.EnvDir, cfg.AppEnv); err != nil {
		return nil, err
	}
	packs, dockerfile, err := selectBuildpacks(ctx, cfg, logger)
	if err != nil {
		return nil, err
	}
	res := &Result{ProcessTypes: map[string]string{}}
	if dockerfile {
		step(cfg.Stdout, "No buildpack matches; building the Dockerfile")
		res.Dockerfile = true
		return res, nil
	}
	env := cfg.buildpackEnv()
	defaults := map[string]string{}
	for _, bp := range packs {
		if bp.named {
			// Named in .buildpacks or BUILDPACK_URL: it builds whatever
			// detect says, which only names it, with the variables the
			// buildpacks before it exported.
			if _, err := bp.detect(ctx, cfg, env); err != nil {
				return nil, err
			}
		}
		step(cfg.Stdout, bp.Name+" app detected")
		if err := bp.compile(ctx, cfg, env); err != nil {
			return nil, err
		}
		types, err := bp.release(ctx, cfg, env)
		if err != nil {
			return nil, err
		}
		maps.Copy(defaults, types)
		res.Buildpacks = append(res.Buildpacks, bp.Name)
		if env, err = bp.sourceExport(ctx, cfg, env); err != nil {
			return nil, err
		}
	}
	if err := writeRelease(filepath.Join(cfg.BuildDir, ".release"), defaults); err != nil {
		return nil, err
	}
	procfile, err := readProcfile(cfg.BuildDir)
	if err != nil {
		return nil, err
	}
	maps.Copy(res.ProcessTypes, defaults)
	maps.Copy(res.ProcessTypes, procfile)
	step(cfg.Stdout, "Discovered process types")
	detail(cfg.Stdout, "Procfile declares types -> "+typeList(procfile))
	detail(cfg.Stdout, "Default types for buildpack -> "+typeList(defaults))
	return res, nil
}

// buildpackEnv is what detect, compile and release run with: cfg.Env with
// the STACK and SOURCE_VERSION of this build (a STACK in cfg.Env is what
// cfg.Stack was filled from).
func (cfg Config) buildpackEnv() []string {
	env := unsetEnv(cfg.Env, "STACK", "SOURCE_VERSION")
	return append(env, "STACK="+cfg.Stack, "SOURCE_VERSION="+cfg.SourceVersion)
}

// trustExtraCAs adds the cluster's extra CA certificates, when cfg.Env has
// them, to the environment buildpacks run with and to the client that
// fetches buildpacks.
func trustExtraCAs(cfg Config) (Config, error) {
	env, bundle, err := cabundle.Install(cfg.Env, cabundle.Options{Path: cfg.CABundlePath})
	if err != nil {
		return cfg, fmt.Errorf("the cluster's extra CA certificates: %w", err)
	}
	if bundle == "" {
		return cfg, nil
	}
	cfg.Env = env
	step(cfg.Stdout, "Trusting the cluster's extra CA certificates ("+bundle+")")
	// The default client trusts only the system's roots; a client the
	// caller chose is left as it is.
	if cfg.HTTPClient == http.DefaultClient {
		pem, err := os.ReadFile(bundle)
		if err != nil {
			return cfg, err
		}
		roots, err := x509.SystemCertPool()
		if err != nil {
			roots = x509.NewCertPool()
		}
		roots.AppendCertsFromPEM(pem)
		transport := http.DefaultTransport.(*http.Transport).Clone()
		transport.TLSClientConfig = &tls.Config{RootCAs: roots}
		// A buildpack or two is fetched: no idle connection to keep
		// (nor a goroutine holding it) once Build returns.
		transport.DisableKeepAlives = true
		cfg.HTTPClient = &http.Client{Transport: transport}
	}
	return cfg, nil
}

func readProcfile(dir string) (map[string]string, error) {
	f, err := os.Open(filepath.Join(dir, "Procfile"))
	if errors.Is(err, fs.ErrNotExist) {
		return map[string]string{}, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return ParseProcfile(f)
}

// writeRelease saves the buildpacks' defaults in bin/release's format, for
// slugrunner's `start TYPE`.
func writeRelease(path string, types map[string]string) error {
	if err := os.WriteFile(path, []byte(releaseText(types)), 0o644); err != nil {
		return fmt.Errorf("write .release: %w", err)
	}
	return nil
}

// releaseText is types in bin/release's format, as ParseRelease reads it.
func releaseText(types map[string]string) string {
	var b strings.Builder
	b.WriteString("---\ndefault_process_types:\n")
	for _, name := range slices.Sorted(maps.Keys(types)) {
		fmt.Fprintf(&b, "  %s: %q\n", name, types[name])
	}
	return b.String()
}

func writeEnvDir(dir string, vars map[string]string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	for k, v := range vars {
		if k == "" || strings.ContainsAny(k, "/\x00") || k == "." || k == ".." {
			return fmt.Errorf("config var %q cannot be a file name in ENV_DIR", k)
		}
		if err := os.WriteFile(filepath.Join(dir, k), []byte(v), 0o600); err != nil {
			return fmt.Errorf("write ENV_DIR: %w", err)
		}
	}
	return nil
}

func typeList(types map[string]string) string {
	if len(types) == 0 {
		return "(none)"
	}
	return strings.Join(slices.Sorted(maps.Keys(types)), ", ")
}

// step prints a "-----> " line, the buildpack convention for a new step.
func step(w io.Writer, msg string) { fmt.Fprintf(w, "-----> %s\n", msg) }

// detail prints an indented line under a step.
func detail(w io.Writer, msg string) { fmt.Fprintf(w, "       %s\n", msg) }

package images

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"maps"
	"os"
	"slices"
	"sync"
	"time"
)

// BuildTimes are how long images took to build, by image name: the
// estimates of the next build's progress lines. flynn-images keeps them in
// a file beside the manifest (ReadBuildTimes, WriteFile).
type BuildTimes map[string]time.Duration

// ReadBuildTimes reads what WriteFile wrote; a missing file is no times.
func ReadBuildTimes(path string) (BuildTimes, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return BuildTimes{}, nil
	}
	if err != nil {
		return nil, err
	}
	var secs map[string]float64
	if err := json.Unmarshal(data, &secs); err != nil {
		return nil, fmt.Errorf("build times %s: %w", path, err)
	}
	t := BuildTimes{}
	for name, s := range secs {
		if s > 0 {
			t[name] = time.Duration(s * float64(time.Second))
		}
	}
	return t, nil
}

// WriteFile writes the times as JSON seconds by image name.
func (t BuildTimes) WriteFile(path string) error {
	secs := make(map[string]float64, len(t))
	for name, d := range t {
		secs[name] = d.Round(time.Millisecond).Seconds()
	}
	data, err := json.MarshalIndent(secs, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(data, '\n'), 0o644)
}

// Estimates for an image never built on this machine, on a 2-core
// machine beside two other builds: a Debian root, about 2 minutes; a layer
// of packages, a minute or two (the stack's Node.js and npm, about 400
// packages, the most); a layer of files only, seconds (the Go
// toolchain's, the largest, about half a minute).
const (
	typicalRootBuild     = 2 * time.Minute
	typicalPackagesBuild = 90 * time.Second
	typicalLayerBuild    = 30 * time.Second
)

// progress tracks the builds that are running, so that a long one says
// every so often which image it is, how long so far, and how long it took
// last time: nobody should stare at a silent terminal for minutes.
type progress struct {
	log       *slog.Logger
	mu        sync.Mutex
	running   map[string]runningBuild // by image name
	estimates BuildTimes
}

type runningBuild struct {
	start   time.Time
	typical time.Duration // the estimate when none is known
}

func newProgress(log *slog.Logger, estimates BuildTimes) *progress {
	return &progress{log: log, running: map[string]runningBuild{}, estimates: estimates}
}

// building marks name as building until the returned func is called;
// typical is the estimate when this machine has none.
func (p *progress) building(name string, typical time.Duration) func() {
	p.mu.Lock()
	p.running[name] = runningBuild{time.Now(), typical}
	est, known := p.estimates[name]
	p.mu.Unlock()
	attrs := []any{"image", name}
	if known {
		attrs = append(attrs, "last_time", est.Round(time.Second))
	}
	p.log.Info("building", attrs...)
	return func() {
		p.mu.Lock()
		delete(p.running, name)
		p.mu.Unlock()
	}
}

// finished records how long name took, for the next build's estimates.
func (p *progress) finished(name string, took time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.estimates[name] = took
}

// report logs the running builds every interval until the returned func
// is called.
func (p *progress) report(every time.Duration) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				p.logRunning()
			}
		}
	}()
	return func() {
		close(done)
		wg.Wait()
	}
}

// logRunning logs one line per running build, longest running first.
func (p *progress) logRunning() {
	p.mu.Lock()
	names := slices.Collect(maps.Keys(p.running))
	slices.SortFunc(names, func(a, b string) int { return p.running[a].start.Compare(p.running[b].start) })
	type line struct {
		name     string
		elapsed  time.Duration
		estimate time.Duration
		known    bool
	}
	lines := make([]line, 0, len(names))
	for _, n := range names {
		r := p.running[n]
		est, known := p.estimates[n]
		if !known {
			est = r.typical
		}
		lines = append(lines, line{n, time.Since(r.start), est, known})
	}
	p.mu.Unlock()
	for _, l := range lines {
		left := "about " + (l.estimate - l.elapsed).Round(time.Second).String() + " left"
		if l.elapsed > l.estimate {
			left = "longer than the estimate"
		}
		source := "last time here"
		if !l.known {
			source = "typical first build"
		}
		p.log.Info("still building", "image", l.name, "so_far", l.elapsed.Round(time.Second),
			"estimate", l.estimate.Round(time.Second), "estimate_from", source, "left", left)
	}
}

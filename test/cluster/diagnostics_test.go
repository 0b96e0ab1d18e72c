package cluster

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// downAtEnd takes the cluster down when t ends. When t failed, it first
// logs what the platform said: the end of each node's flynn-host log and
// of each job container's output, which `script/cluster down` removes. A
// failure of a test that brings a cluster up is otherwise a bare timeout
// ("service postgres has no instances") with nothing left to read.
func downAtEnd(t *testing.T, repo string) {
	t.Helper()
	t.Cleanup(func() {
		if t.Failed() {
			logPlatform(t)
		}
		script(t, repo, 5*time.Minute, "script/cluster", "down")
	})
}

// logPlatform logs the last lines of every flynn-host log, of every
// running job container, and of every ended platform container (an ended
// app job's, of which a test makes dozens, says nothing of the failure).
func logPlatform(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	logs, _ := filepath.Glob("/var/log/flynn/flynn-host*.log")
	for _, name := range logs {
		data, err := os.ReadFile(name)
		if err != nil {
			t.Logf("%s: %v", name, err)
			continue
		}
		t.Logf("=== %s (last 60 lines)\n%s", name, lastLines(string(data), 60))
	}
	out, err := exec.CommandContext(ctx, "docker", "ps", "-a", "--filter", "name=^flynn-", "--format", "{{.Names}} {{.Status}} {{.Image}}").Output()
	if err != nil {
		t.Logf("docker ps: %v", err)
		return
	}
	for _, row := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		fields := strings.Fields(row)
		if len(fields) < 3 {
			continue
		}
		name, image := fields[0], fields[len(fields)-1]
		if fields[1] != "Up" && (strings.HasPrefix(image, "flynn/stack") || strings.HasPrefix(image, "flynn-archive/")) {
			continue
		}
		b, err := exec.CommandContext(ctx, "docker", "logs", "--tail", "25", name).CombinedOutput()
		if err != nil {
			t.Logf("docker logs %s: %v", name, err)
		}
		t.Logf("=== %s (last 25 lines)\n%s", row, strings.TrimRight(string(b), "\n"))
	}
}

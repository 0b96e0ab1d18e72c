//go:build e2e

package e2e

import (
	"encoding/json"
	"fmt"
	"github.com/openflynn/flynn/pkg/poll"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// BenchmarkPushGo measures `git push` of a change to the Go sample until the
// new release serves through the router, against the peer of building the
// same source with `go build` and running it with `docker run` on the stack
// image until it answers, in the same run; it reports the ratio (goal ≤ 1.5).
// The first push (a cold build cache) is made before timing starts.
//
//	make cluster && go test -tags e2e -run XXX -bench PushGo -benchtime 3x ./test/e2e/
func BenchmarkPushGo(b *testing.B) {
	u := newUser(b)
	u.addCluster()
	u.flynn(u.home, "key", "add")
	dir := u.app("go")
	u.flynn(dir, "create", "bench-go")
	b.Cleanup(func() { _, _ = u.run(dir, filepath.Join(u.bin, "flynn"), "delete", "--yes") })
	u.push(dir)
	domain := "bench-go." + u.domain

	stack := stackImage(b)
	var push, peer time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		marker := fmt.Sprintf("bench %d %d", i, time.Now().UnixNano())
		u.mustRun(dir, "sed", "-i", "s/Hello from Flynn (Go)[^\"]*on port/Hello from Flynn (Go) "+marker+" on port/", "main.go")
		u.mustRun(dir, "git", "commit", "-q", "-am", marker)
		start := time.Now()
		u.push(dir)
		poll.Until(b, 60*time.Second, "the new release serves", func() bool {
			status, body, err := u.get(domain)
			return err == nil && status == 200 && strings.Contains(body, marker)
		})
		push += time.Since(start)

		// The peer: go build, then docker run of the binary on the stack image.
		out := filepath.Join(b.TempDir(), "hello")
		port := freePortB(b)
		start = time.Now()
		u.mustRun(dir, "go", "build", "-o", out, ".")
		id := strings.TrimSpace(u.mustRun(dir, "docker", "run", "-d", "--network", "host", "--label", "flynn.test=true",
			"-e", fmt.Sprintf("PORT=%d", port), "-v", out+":/hello:ro", stack, "/hello"))
		poll.Until(b, 60*time.Second, "the docker-run binary answers", func() bool {
			conn, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
			if err == nil {
				conn.Close()
			}
			return err == nil
		})
		peer += time.Since(start)
		_, _ = u.run(dir, "docker", "rm", "-f", id)
	}
	b.StopTimer()
	b.ReportMetric(push.Seconds()/float64(b.N), "s/push-to-serving")
	b.ReportMetric(peer.Seconds()/float64(b.N), "s/go-build+docker-run")
	b.ReportMetric(float64(push)/float64(peer), "ratio")
}

// stackImage returns the stack image's reference from bin/images.json.
func stackImage(b *testing.B) string {
	raw, err := os.ReadFile(filepath.Join(repoRoot(), "bin", "images.json"))
	if err != nil {
		b.Fatalf("bin/images.json (make images): %v", err)
	}
	var m map[string]struct {
		Ref string `json:"ref"`
	}
	if err := json.Unmarshal(raw, &m); err != nil || m["stack"].Ref == "" {
		b.Fatalf("no stack image in bin/images.json: %v", err)
	}
	return m["stack"].Ref
}

func freePortB(b *testing.B) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

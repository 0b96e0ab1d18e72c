//go:build e2e

package e2e

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha1"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"sync/atomic"
	"testing"
)

// npmRegistry is a registry serving one package, flynn-walk-greeting
// 1.0.0, that test/apps/nodejs-dep needs: a build that installs it went
// through the registry its environment named. It counts the tarball's
// downloads.
type npmRegistry struct {
	url       string
	downloads atomic.Int64
}

// serveNPMRegistry starts an npmRegistry where jobs reach it.
func serveNPMRegistry(t *testing.T) *npmRegistry {
	t.Helper()
	const name, version = "flynn-walk-greeting", "1.0.0"
	files := map[string]string{
		"package/package.json": `{"name": "` + name + `", "version": "` + version + `", "main": "index.js"}`,
		"package/index.js":     "module.exports = () => \"Hello from a registry package\";\n",
	}
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	for _, path := range []string{"package/package.json", "package/index.js"} {
		body := files[path]
		if err := tw.WriteHeader(&tar.Header{Name: path, Mode: 0o644, Size: int64(len(body)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		_, _ = tw.Write([]byte(body))
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := gz.Close(); err != nil {
		t.Fatal(err)
	}
	tarball := buf.Bytes()
	sum1 := sha1.Sum(tarball)
	sum512 := sha512.Sum512(tarball)

	l := listenForJobs(t)
	reg := &npmRegistry{url: "http://" + l.Addr().String() + "/"}
	tarballPath := "/" + name + "/-/" + name + "-" + version + ".tgz"
	doc, err := json.Marshal(map[string]any{
		"name":      name,
		"dist-tags": map[string]string{"latest": version},
		"versions": map[string]any{version: map[string]any{
			"name": name, "version": version, "main": "index.js",
			"dist": map[string]string{
				"tarball":   reg.url + tarballPath[1:],
				"shasum":    hex.EncodeToString(sum1[:]),
				"integrity": "sha512-" + base64.StdEncoding.EncodeToString(sum512[:]),
			},
		}},
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/" + name:
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write(doc)
		case tarballPath:
			reg.downloads.Add(1)
			w.Header().Set("Content-Type", "application/octet-stream")
			_, _ = w.Write(tarball)
		default:
			http.NotFound(w, r)
		}
	})}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	return reg
}

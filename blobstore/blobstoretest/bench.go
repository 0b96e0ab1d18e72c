package blobstoretest

import (
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/openflynn/flynn/pkg/testdeps"
)

// BenchTransfer measures PUT and GET throughput of one size-byte file
// through the HTTP server and Go client over loopback, against `cp` of the
// same file on the same disk in the same run, and reports MB/s for each and
// the ratios (put/cp, get/cp). Because PUT fsyncs before it answers and
// plain cp does not, it also reports `cp` followed by an fsync of the copy
// (coreutils `sync FILE`), the fairer peer for PUT.
//
// dir is where the file, its copies and (for a filesystem backend) the
// store live, so that every side uses the same disk.
func BenchTransfer(b *testing.B, factory Factory, dir string, size int64) {
	cp := testdeps.LookPath(b, "cp")
	syncBin := testdeps.LookPath(b, "sync")
	src := filepath.Join(dir, "src")
	f, err := os.Create(src)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := io.Copy(f, NewGenerated(1, size)); err != nil {
		b.Fatal(err)
	}
	if err := f.Close(); err != nil {
		b.Fatal(err)
	}
	e := newEnv(b, factory, 2*size)
	ctx := context.Background()
	mb := float64(size) / 1e6
	var putT, getT, cpT, cpSyncT time.Duration

	b.ResetTimer()
	for b.Loop() {
		// cp and cp+fsync first, so they and PUT read a warm source alike.
		dst := filepath.Join(dir, "copy")
		os.Remove(dst)
		cpT += timeIt(b, func() error { return exec.Command(cp, src, dst).Run() })
		os.Remove(dst)
		cpSyncT += timeIt(b, func() error {
			if err := exec.Command(cp, src, dst).Run(); err != nil {
				return err
			}
			return exec.Command(syncBin, dst).Run()
		})
		os.Remove(dst)

		putT += timeIt(b, func() error {
			f, err := os.Open(src)
			if err != nil {
				return err
			}
			defer f.Close()
			_, err = e.client.Put(ctx, "bench/blob", f)
			return err
		})
		// GET into a file on the same disk: what cp does with the bytes.
		getT += timeIt(b, func() error {
			body, _, err := e.client.Get(ctx, "bench/blob")
			if err != nil {
				return err
			}
			defer body.Close()
			out, err := os.Create(filepath.Join(dir, "got"))
			if err != nil {
				return err
			}
			if _, err := io.Copy(out, body); err != nil {
				out.Close()
				return err
			}
			return out.Close()
		})
	}
	n := float64(b.N)
	put, get := mb*n/putT.Seconds(), mb*n/getT.Seconds()
	cpRate, cpSync := mb*n/cpT.Seconds(), mb*n/cpSyncT.Seconds()
	b.ReportMetric(put, "put-MB/s")
	b.ReportMetric(get, "get-MB/s")
	b.ReportMetric(cpRate, "cp-MB/s")
	b.ReportMetric(cpSync, "cp+fsync-MB/s")
	b.ReportMetric(put/cpRate, "put/cp")
	b.ReportMetric(get/cpRate, "get/cp")
	b.ReportMetric(put/cpSync, "put/cp+fsync")
	b.Logf("%.0f MB: PUT %.0f MB/s, GET %.0f MB/s, cp %.0f MB/s, cp+fsync %.0f MB/s; PUT/cp %.2f, GET/cp %.2f, PUT/(cp+fsync) %.2f",
		mb, put, get, cpRate, cpSync, put/cpRate, get/cpRate, put/cpSync)
}

func timeIt(b *testing.B, f func() error) time.Duration {
	start := time.Now()
	if err := f(); err != nil {
		b.Fatal(err)
	}
	return time.Since(start)
}

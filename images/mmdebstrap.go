package images

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// Mmdebstrap makes Debian root filesystems with mmdebstrap from the host's
// apt configuration (deb.debian.org with updates and security, or whatever
// the host's apt proxy settings lead to).
type Mmdebstrap struct {
	// Path of the mmdebstrap program; default "mmdebstrap" on PATH.
	Path string
	// Stderr receives mmdebstrap's progress; nil keeps only the tail for
	// error messages.
	Stderr io.Writer
}

var _ RootFS = (*Mmdebstrap)(nil)

// Args returns mmdebstrap's command line for d writing a tar to stdout.
func (m *Mmdebstrap) Args(d Debian) []string {
	args := []string{"--variant=" + d.Variant}
	if len(d.Packages) > 0 {
		args = append(args, "--include="+strings.Join(d.Packages, ","))
	}
	args = append(args, d.Options...)
	return append(args, d.Suite, "-")
}

// WriteRootFS implements RootFS.
func (m *Mmdebstrap) WriteRootFS(ctx context.Context, d Debian, w io.Writer) error {
	prog := m.Path
	if prog == "" {
		prog = "mmdebstrap"
	}
	cmd := exec.CommandContext(ctx, prog, m.Args(d)...)
	// SIGTERM lets mmdebstrap remove its temporary root before it exits.
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 30 * time.Second
	cmd.Stdout = w
	var tail tailBuffer
	cmd.Stderr = &tail
	if m.Stderr != nil {
		cmd.Stderr = io.MultiWriter(m.Stderr, &tail)
	}
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("mmdebstrap %s: %w\n%s", d.Suite, err, tail.String())
	}
	return nil
}

// tailBuffer keeps the last few KiB written to it.
type tailBuffer struct{ buf bytes.Buffer }

func (t *tailBuffer) Write(p []byte) (int, error) {
	const keep = 4 << 10
	t.buf.Write(p)
	if t.buf.Len() > 2*keep {
		rest := t.buf.Bytes()[t.buf.Len()-keep:]
		t.buf = *bytes.NewBuffer(append([]byte(nil), rest...))
	}
	return len(p), nil
}

func (t *tailBuffer) String() string { return t.buf.String() }

package terminal

import (
	"fmt"
	"os"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/openflynn/flynn/pkg/testdeps"
)

// openPTY returns the two ends of a new pseudo-terminal: the master, which
// sets the size as a terminal emulator would, and the slave, the terminal a
// program sees.
func openPTY(t *testing.T) (master, slave *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		testdeps.Missing(t, "pseudo-terminals (/dev/ptmx)", err)
	}
	t.Cleanup(func() { m.Close() })
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatalf("unlock pty: %v", err)
	}
	n, err := unix.IoctlGetInt(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatalf("pty number: %v", err)
	}
	s, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		testdeps.Missing(t, "pseudo-terminals (/dev/pts)", err)
	}
	t.Cleanup(func() { s.Close() })
	return m, s
}

func TestNewNotATerminal(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	if got := New(r); got != nil {
		t.Fatalf("New(pipe) = %v, want nil", got)
	}
}

func TestTTYSizeAndRawMode(t *testing.T) {
	master, slave := openPTY(t)
	if err := unix.IoctlSetWinsize(int(master.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: 40, Col: 120}); err != nil {
		t.Fatal(err)
	}
	tty := New(slave)
	if tty == nil {
		t.Fatal("New(pty) = nil, want a terminal")
	}
	if h, w, err := tty.Size(); err != nil || h != 40 || w != 120 {
		t.Fatalf("Size() = %d, %d, %v; want 40, 120", h, w, err)
	}

	echo := func() bool {
		t.Helper()
		st, err := unix.IoctlGetTermios(int(slave.Fd()), unix.TCGETS)
		if err != nil {
			t.Fatal(err)
		}
		return st.Lflag&unix.ECHO != 0
	}
	if !echo() {
		t.Fatal("a new pty does not echo")
	}
	restore, err := tty.MakeRaw()
	if err != nil {
		t.Fatal(err)
	}
	if echo() {
		t.Fatal("raw mode still echoes")
	}
	if err := restore(); err != nil {
		t.Fatal(err)
	}
	if !echo() {
		t.Fatal("restore did not bring echo back")
	}
}

func TestTTYResizes(t *testing.T) {
	_, slave := openPTY(t)
	tty := New(slave)
	resizes, stop := tty.Resizes()
	defer stop()
	// The kernel signals the terminal's foreground process group; this
	// process is not in one, so it signals itself.
	if err := syscall.Kill(os.Getpid(), syscall.SIGWINCH); err != nil {
		t.Fatal(err)
	}
	select {
	case <-resizes:
	case <-time.After(10 * time.Second):
		t.Fatal("no resize after SIGWINCH")
	}
}

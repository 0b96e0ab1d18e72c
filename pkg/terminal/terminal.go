// Package terminal is the user's terminal as the command-line tools see it
// when they attach to a job with a TTY (`flynn run`, `flynn-host run -t`):
// raw mode, so that keys reach the job as typed; the window size; and
// notice of each resize, so that the job's terminal can follow.
//
// Commands take a Terminal, which tests fake; New returns the real one
// behind a file.
package terminal

import (
	"os"
	"os/signal"
	"syscall"

	"golang.org/x/term"
)

// Terminal is a terminal a command drives.
type Terminal interface {
	// MakeRaw puts the terminal in raw mode (keys go to the job as they
	// are typed, Ctrl-C included) and returns how to restore it.
	MakeRaw() (restore func() error, err error)
	// Size is the terminal's height and width.
	Size() (height, width int, err error)
	// Resizes delivers a value each time the terminal changes size, until
	// stop is called.
	Resizes() (ch <-chan struct{}, stop func())
}

// TTY is the terminal an open file is attached to.
type TTY struct{ fd int }

var _ Terminal = (*TTY)(nil)

// New returns the terminal f is attached to, or nil when f is not a
// terminal. Callers that keep it in a Terminal must check for nil first:
// a nil *TTY is not a nil Terminal.
func New(f *os.File) *TTY {
	fd := int(f.Fd())
	if !term.IsTerminal(fd) {
		return nil
	}
	return &TTY{fd: fd}
}

// MakeRaw implements Terminal.
func (t *TTY) MakeRaw() (func() error, error) {
	state, err := term.MakeRaw(t.fd)
	if err != nil {
		return nil, err
	}
	return func() error { return term.Restore(t.fd, state) }, nil
}

// Size implements Terminal.
func (t *TTY) Size() (int, int, error) {
	w, h, err := term.GetSize(t.fd)
	return h, w, err
}

// Resizes implements Terminal with SIGWINCH, which the kernel sends the
// foreground process group of the terminal that changed size.
func (t *TTY) Resizes() (<-chan struct{}, func()) {
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGWINCH)
	ch := make(chan struct{}, 1)
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		for {
			select {
			case <-sig:
				select {
				case ch <- struct{}{}:
				default: // one pending resize is enough
				}
			case <-done:
				return
			}
		}
	}()
	return ch, func() {
		signal.Stop(sig)
		close(done)
		<-stopped
	}
}

package cli

import (
	"os"
	"os/signal"
	"syscall"

	"golang.org/x/term"
)

// Terminal is the user's terminal, for jobs run with a TTY.
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

// OSTerminal is the terminal behind a file descriptor.
type OSTerminal struct{ fd int }

var _ Terminal = (*OSTerminal)(nil)

// NewOSTerminal returns the terminal f is attached to, or nil when f is not
// a terminal.
func NewOSTerminal(f *os.File) *OSTerminal {
	fd := int(f.Fd())
	if !term.IsTerminal(fd) {
		return nil
	}
	return &OSTerminal{fd: fd}
}

// MakeRaw implements Terminal.
func (t *OSTerminal) MakeRaw() (func() error, error) {
	state, err := term.MakeRaw(t.fd)
	if err != nil {
		return nil, err
	}
	return func() error { return term.Restore(t.fd, state) }, nil
}

// Size implements Terminal.
func (t *OSTerminal) Size() (int, int, error) {
	w, h, err := term.GetSize(t.fd)
	return h, w, err
}

// Resizes implements Terminal with SIGWINCH.
func (t *OSTerminal) Resizes() (<-chan struct{}, func()) {
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

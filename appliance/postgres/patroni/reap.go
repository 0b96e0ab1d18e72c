package patroni

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"syscall"
)

// waitFor returns a channel that receives cmd's exit (nil for status 0),
// once. As a container's init (pid 1), which it is as a job's entrypoint,
// flynn-postgres is also the parent of every orphan there, and Postgres is
// one: Patroni starts it detached, as pg_ctl does. Orphans are reaped so
// that none lingers as a zombie, which Patroni, waiting for a stopped
// Postgres to go, would wait for in vain.
func waitFor(cmd *exec.Cmd) <-chan error {
	ch := make(chan error, 1)
	if os.Getpid() != 1 {
		go func() { ch <- cmd.Wait() }()
		return ch
	}
	// Wait4(-1) below would take cmd's status from under cmd.Wait, so
	// cmd is waited for here alone.
	sigc := make(chan os.Signal, 1)
	signal.Notify(sigc, syscall.SIGCHLD)
	go func() {
		defer signal.Stop(sigc)
		ch <- reapUntil(cmd.Process.Pid, sigc)
	}()
	return ch
}

// reapUntil reaps every child that exits, each time sigc says one did,
// until pid does, and returns pid's exit.
func reapUntil(pid int, sigc <-chan os.Signal) error {
	for {
		for {
			var ws syscall.WaitStatus
			got, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil)
			if errors.Is(err, syscall.EINTR) {
				continue
			}
			if errors.Is(err, syscall.ECHILD) {
				return fmt.Errorf("process %d is gone, its exit unknown", pid)
			}
			if err != nil || got <= 0 {
				break
			}
			if got == pid {
				return exitError(ws)
			}
		}
		<-sigc
	}
}

// exitError describes an exit as exec.Cmd.Wait would: nil for status 0.
func exitError(ws syscall.WaitStatus) error {
	switch {
	case ws.Exited() && ws.ExitStatus() == 0:
		return nil
	case ws.Exited():
		return fmt.Errorf("exit status %d", ws.ExitStatus())
	case ws.Signaled():
		return fmt.Errorf("signal: %v", ws.Signal())
	}
	return fmt.Errorf("wait status %v", ws)
}

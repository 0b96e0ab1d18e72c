package patroni

import (
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"
	"testing"
)

// As init, flynn-postgres reaps every child, and reports Patroni's exit.
func TestReapUntil(t *testing.T) {
	sigc := make(chan os.Signal, 1)
	signal.Notify(sigc, syscall.SIGCHLD)
	defer signal.Stop(sigc)

	// An orphan stands in for Postgres: a child that is not Patroni.
	other := exec.Command("true")
	if err := other.Start(); err != nil {
		t.Fatal(err)
	}
	patroni := exec.Command("sh", "-c", "exit 3")
	if err := patroni.Start(); err != nil {
		t.Fatal(err)
	}
	err := reapUntil(patroni.Process.Pid, sigc)
	if err == nil || !strings.Contains(err.Error(), "exit status 3") {
		t.Errorf("patroni's exit = %v, want exit status 3", err)
	}
	// The other child is reaped too, now or once it exits: no zombie.
	var ws syscall.WaitStatus
	if pid, err := syscall.Wait4(other.Process.Pid, &ws, 0, nil); err == nil {
		t.Logf("the other child (%d) exited after patroni and was reaped here", pid)
	} else if err != syscall.ECHILD {
		t.Errorf("wait for the other child: %v", err)
	}
}

func TestExitError(t *testing.T) {
	tests := []struct {
		name string
		ws   syscall.WaitStatus
		want string
	}{
		{"status 0", syscall.WaitStatus(0), ""},
		{"status 1", syscall.WaitStatus(1 << 8), "exit status 1"},
		{"killed", syscall.WaitStatus(syscall.SIGKILL), "signal: killed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := exitError(tt.ws)
			got := ""
			if err != nil {
				got = err.Error()
			}
			if got != tt.want {
				t.Errorf("exitError(%#x) = %q, want %q", uint32(tt.ws), got, tt.want)
			}
		})
	}
}

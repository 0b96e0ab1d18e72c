package browser

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// processesUsing returns the ids of the live processes whose command line
// names dir or a path under it. New gives each browser a directory of its
// own and points every process the browser starts at it: the zygotes,
// renderers and GPU and network services through --user-data-dir, the crash
// handler through its --database. So this finds what a browser left running
// after its main process ended. It reads /proc, so it finds nothing where
// there is none; an exited process that nobody has reaped yet has an empty
// command line and is not reported.
func processesUsing(dir string) []int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue // it exited meanwhile
		}
		if names(cmdline, dir) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// names reports whether a /proc/<pid>/cmdline names dir or a path under it.
// Chromium's child processes rewrite their command line into one string
// with spaces between the arguments, so the path ends at a NUL, a space or
// the end, or goes on with a path separator.
func names(cmdline []byte, dir string) bool {
	s := string(cmdline)
	for {
		i := strings.Index(s, dir)
		if i < 0 {
			return false
		}
		s = s[i+len(dir):]
		if s == "" || s[0] == 0 || s[0] == ' ' || s[0] == filepath.Separator {
			return true
		}
	}
}

// killProcessesUsing kills what processesUsing finds, and returns how many.
func killProcessesUsing(dir string) int {
	pids := processesUsing(dir)
	for _, pid := range pids {
		// An error means it exited meanwhile, which is what we want.
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	return len(pids)
}

package slugrunner

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"sync"
	"syscall"
)

// runProcess starts argv in its own process group, forwards signals to that
// group and returns the exit status. When ctx ends the group is killed.
func runProcess(ctx context.Context, cfg Config, env, argv []string) (int, error) {
	path, err := exec.LookPath(argv[0])
	if err != nil {
		return 0, fmt.Errorf("find %s: %w", argv[0], err)
	}
	files, closeFiles, err := stdio(cfg)
	if err != nil {
		return 0, err
	}
	proc, err := os.StartProcess(path, argv, &os.ProcAttr{
		Dir:   cfg.AppDir,
		Env:   env,
		Files: files,
		Sys:   &syscall.SysProcAttr{Setpgid: true},
	})
	if err != nil {
		closeFiles()
		return 0, fmt.Errorf("start %s: %w", argv[0], err)
	}
	pid := proc.Pid
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case sig := <-cfg.Signals:
				if s, ok := sig.(syscall.Signal); ok {
					// The group, so that a shell's children hear it too.
					_ = syscall.Kill(-pid, s)
				}
			case <-ctx.Done():
				_ = syscall.Kill(-pid, syscall.SIGKILL)
				return
			case <-done:
				return
			}
		}
	}()
	ws, err := wait(pid)
	close(done)
	wg.Wait()
	closeFiles()
	if err != nil {
		return 0, err
	}
	return exitStatus(ws), nil
}

// wait waits for pid. As PID 1 of a container slugrunner inherits every
// orphan, so it reaps whatever exits until pid does; otherwise it waits for
// pid alone, leaving the caller's other children alone.
func wait(pid int) (syscall.WaitStatus, error) {
	target := pid
	if os.Getpid() == 1 {
		target = -1
	}
	for {
		var ws syscall.WaitStatus
		got, err := syscall.Wait4(target, &ws, 0, nil)
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		if err != nil {
			return 0, fmt.Errorf("wait for the process: %w", err)
		}
		if got == pid {
			return ws, nil
		}
	}
}

// stdio returns the child's stdin, stdout and stderr as files, piping
// non-file readers and writers through goroutines that closeFiles waits for.
func stdio(cfg Config) (files []*os.File, closeFiles func(), err error) {
	var wg sync.WaitGroup
	var toClose []*os.File
	var parentEnds []*os.File
	closeFiles = func() {
		for _, f := range toClose {
			f.Close()
		}
		wg.Wait()
		for _, f := range parentEnds {
			f.Close()
		}
	}
	files = append(files, cfg.Stdin)
	for _, out := range []any{cfg.Stdout, cfg.Stderr} {
		if f, ok := out.(*os.File); ok {
			files = append(files, f)
			continue
		}
		r, w, err := os.Pipe()
		if err != nil {
			closeFiles()
			return nil, nil, err
		}
		files = append(files, w)
		toClose = append(toClose, w)
		parentEnds = append(parentEnds, r)
		wg.Add(1)
		go func(dst interface{ Write([]byte) (int, error) }) {
			defer wg.Done()
			buf := make([]byte, 32<<10)
			for {
				n, err := r.Read(buf)
				if n > 0 {
					_, _ = dst.Write(buf[:n])
				}
				if err != nil {
					return
				}
			}
		}(out.(interface{ Write([]byte) (int, error) }))
	}
	return files, closeFiles, nil
}

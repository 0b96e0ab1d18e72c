package gitreceive

import (
	"context"
	"strings"
	"testing"
	"time"
)

func TestParseGitCommand(t *testing.T) {
	tests := []struct {
		cmd, service, app, errPart string
	}{
		{cmd: "git-receive-pack 'example.git'", service: "receive-pack", app: "example"},
		{cmd: "git-receive-pack '/example.git'", service: "receive-pack", app: "example"},
		{cmd: "git-receive-pack 'my-app'", service: "receive-pack", app: "my-app"},
		{cmd: "git-upload-pack 'example.git'", service: "upload-pack", app: "example"},
		{cmd: "", errPart: "push to it with git push"},
		{cmd: "ls -la", errPart: "unknown command"},
		{cmd: "git-receive-pack '../etc/passwd'", errPart: "not an app repository"},
		{cmd: "git-receive-pack 'a/b.git'", errPart: "not an app repository"},
		{cmd: "git-receive-pack 'Example.git'", errPart: "not an app repository"},
	}
	for _, tt := range tests {
		t.Run(tt.cmd, func(t *testing.T) {
			service, app, err := parseGitCommand(tt.cmd)
			if tt.errPart != "" {
				if err == nil || !strings.Contains(err.Error(), tt.errPart) {
					t.Fatalf("err = %v, want one containing %q", err, tt.errPart)
				}
				return
			}
			if err != nil || service != tt.service || app != tt.app {
				t.Fatalf("got %q %q %v, want %q %q", service, app, err, tt.service, tt.app)
			}
		})
	}
}

func TestLineWriter(t *testing.T) {
	var out strings.Builder
	var hidden []string
	l := &lineWriter{out: &out, hide: func(line string) bool {
		if strings.HasPrefix(line, "SECRET") {
			hidden = append(hidden, line)
			return true
		}
		return false
	}}
	l.write([]byte("-----> Buil"))
	if out.Len() != 0 {
		t.Fatalf("a partial line was passed on: %q", out.String())
	}
	l.write([]byte("ding\nSECRET x\nnext\nta"))
	l.write([]byte("il"))
	l.flush()
	if got, want := out.String(), "-----> Building\nnext\ntail\n"; got != want {
		t.Fatalf("out = %q, want %q", got, want)
	}
	if len(hidden) != 1 || hidden[0] != "SECRET x\n" {
		t.Fatalf("hidden = %q", hidden)
	}
}

func TestHookScriptQuotes(t *testing.T) {
	got := hookScript([]string{"/opt/it's here/gitreceive", "hook"})
	want := "exec '/opt/it'\\''s here/gitreceive' 'hook'\n"
	if !strings.HasPrefix(got, "#!/bin/sh\n") || !strings.HasSuffix(got, want) {
		t.Fatalf("hook script = %q, want it to end with %q", got, want)
	}
}

func TestAppLocks(t *testing.T) {
	l := newAppLocks()
	ctx := t.Context()
	unlockA, _, err := l.lock(ctx, "a", nil)
	if err != nil {
		t.Fatal(err)
	}
	// Another app is independent.
	unlockB, waited, err := l.lock(ctx, "b", func() { t.Error("app b waited for app a") })
	if err != nil || waited != 0 {
		t.Fatalf("lock b: %v %v", waited, err)
	}
	unlockB()
	// The same app waits, and gives up with its context.
	waitCalled := false
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if _, _, err := l.lock(short, "a", func() { waitCalled = true }); err == nil || !waitCalled {
		t.Fatalf("second lock of a: err %v, onWait called %v", err, waitCalled)
	}
	got := make(chan error, 1)
	go func() {
		unlock, _, err := l.lock(ctx, "a", nil)
		if err == nil {
			unlock()
		}
		got <- err
	}()
	unlockA()
	if err := <-got; err != nil {
		t.Fatalf("lock after unlock: %v", err)
	}
}

package gitreceive_test

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	gossh "golang.org/x/crypto/ssh"

	"github.com/openflynn/flynn/gitreceive"
	"github.com/openflynn/flynn/pkg/cmdline/cmdlinetest"
	"github.com/openflynn/flynn/pkg/poll"
	"github.com/openflynn/flynn/pkg/syncbuf"
)

// dialFrom opens a TCP connection to addr from the loopback address from
// (Linux answers on all of 127.0.0.0/8), so one test has several client
// addresses.
func dialFrom(t *testing.T, from, addr string) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: 10 * time.Second}
	conn, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dial from %s: %v", from, err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// greeted reports whether the server sent conn its SSH version line, as it
// does to every connection it takes, rather than hanging up at once.
func greeted(t *testing.T, conn net.Conn) bool {
	t.Helper()
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) && !isReset(err) {
		t.Fatalf("read the server's version: %v", err)
	}
	return strings.HasPrefix(line, "SSH-2.0-")
}

func isReset(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && !op.Timeout()
}

// TestHandshakeTimeout: a client that connects and never sends its SSH
// version is hung up on after the handshake timeout.
func TestHandshakeTimeout(t *testing.T) {
	const timeout = 300 * time.Millisecond
	h := newHarnessWith(t, harnessOptions{config: func(c *gitreceive.Config) { c.HandshakeTimeout = timeout }})
	conn := dialFrom(t, "127.0.0.1", h.sshAddr)
	start := time.Now()
	if !greeted(t, conn) {
		t.Fatal("the server did not send its version")
	}
	_ = conn.SetReadDeadline(time.Now().Add(20 * time.Second))
	n, err := io.Copy(io.Discard, conn)
	if err != nil && !isReset(err) {
		t.Fatalf("the silent connection stayed open: after %s, %d bytes and %v", time.Since(start).Round(time.Millisecond), n, err)
	}
	if took := time.Since(start); took < timeout {
		t.Fatalf("hung up after %s, before the handshake timeout %s", took, timeout)
	}
	poll.Until(t, 10*time.Second, "gitreceive to say why it hung up", func() bool {
		return strings.Contains(h.logs.String(), "closed a connection: no command started in time")
	})
}

// TestConnectionCaps: connections beyond the per-address cap are refused
// while other addresses' are taken, up to the total cap; a closed
// connection frees its place.
func TestConnectionCaps(t *testing.T) {
	h := newHarnessWith(t, harnessOptions{config: func(c *gitreceive.Config) {
		c.MaxConnsPerIP = 2
		c.MaxConns = 3
	}})
	tests := []struct {
		name, from string
		taken      bool
	}{
		{"first from A", "127.0.0.1", true},
		{"second from A", "127.0.0.1", true},
		{"third from A, over its cap", "127.0.0.1", false},
		{"first from B", "127.0.0.2", true},
		{"first from C, over the total", "127.0.0.3", false},
	}
	var conns []net.Conn
	for _, tt := range tests {
		conn := dialFrom(t, tt.from, h.sshAddr)
		conns = append(conns, conn)
		if got := greeted(t, conn); got != tt.taken {
			t.Fatalf("%s: taken %v, want %v", tt.name, got, tt.taken)
		}
	}
	conns[0].Close()
	poll.Until(t, 10*time.Second, "A's closed connection to free its place", func() bool {
		conn := dialFrom(t, "127.0.0.1", h.sshAddr)
		defer conn.Close()
		return greeted(t, conn)
	})
	if !strings.Contains(h.logs.String(), `reason="too many connections from the address" remote_ip=127.0.0.1`) {
		t.Errorf("gitreceive did not log the refusal:\n%s", h.logs.String())
	}
}

// TestIdleSessionClosed: a client that starts a push and then sends
// nothing is hung up on after the idle timeout, and gitreceive says so.
func TestIdleSessionClosed(t *testing.T) {
	h := newHarnessWith(t, harnessOptions{config: func(c *gitreceive.Config) { c.IdleTimeout = time.Second }})
	h.createApp("example")
	client := h.sshClient()
	sess, err := client.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	sess.Stdout = &out
	stdin, err := sess.StdinPipe() // open, and never written
	if err != nil {
		t.Fatal(err)
	}
	defer stdin.Close()
	if err := sess.Start("git-receive-pack 'example.git'"); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- sess.Wait() }()
	select {
	case err := <-done:
		var missing *gossh.ExitMissingError
		if !errors.As(err, &missing) {
			t.Fatalf("session ended with %v, want the connection closed under it", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("an idle session was not closed")
	}
	if !strings.Contains(out.String(), "report-status") {
		t.Errorf("receive-pack did not start (output %q)", out.String())
	}
	poll.Until(t, 10*time.Second, "gitreceive to say why it hung up", func() bool {
		return strings.Contains(h.logs.String(), "closed an idle connection")
	})
}

// TestQuietBuildKeepsItsPush: a build that writes nothing for longer than
// the idle timeout keeps its push, since gitreceive asks the waiting client
// for signs of life: here the build hangs until its own timeout, which the
// client is still there to hear about.
func TestQuietBuildKeepsItsPush(t *testing.T) {
	h := newHarnessWith(t, harnessOptions{config: func(c *gitreceive.Config) {
		c.IdleTimeout = time.Second
		c.BuildTimeout = 3 * time.Second
	}})
	h.createApp("example")
	w := h.newWorkdir("example")
	w.commit("hang", map[string]string{"Procfile": "web: ./web\n", "hang.txt": "x"})
	out, _, err := w.push("main")
	if err == nil || !strings.Contains(out, "Build failed: not finished after 3s") {
		t.Fatalf("push of a build quiet for longer than the idle timeout: %v\n%s", err, out)
	}
	if strings.Contains(h.logs.String(), "closed an idle connection") {
		t.Fatalf("gitreceive hung up on the waiting client:\n%s", h.logs.String())
	}
}

// TestMaxSessionTime: a connection is closed once it has lasted the
// longest a session may, and its build is stopped.
func TestMaxSessionTime(t *testing.T) {
	h := newHarnessWith(t, harnessOptions{config: func(c *gitreceive.Config) { c.MaxSessionTime = 4 * time.Second }})
	h.createApp("example")
	w := h.newWorkdir("example")
	w.commit("hang", map[string]string{"Procfile": "web: ./web\n", "hang.txt": "x"})
	var out syncbuf.Buffer
	push := w.pushCmd(&out, "main")
	if err := push.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- push.Wait() }()
	select {
	case err := <-done:
		if err == nil {
			t.Fatalf("a push that outlasted the session bound succeeded:\n%s", out.String())
		}
	case <-time.After(30 * time.Second):
		_ = syscall.Kill(-push.Process.Pid, syscall.SIGKILL)
		<-done
		t.Fatalf("the push still ran after 30s with a session bound of 4s:\n%s", out.String())
	}
	poll.Until(t, 10*time.Second, "the build job to be stopped", func() bool {
		_, active, _, cancelled, _ := h.runner.stats()
		return active == 0 && cancelled == 1
	})
	if !strings.Contains(h.logs.String(), "closed a connection: open for the longest a session may last") {
		t.Errorf("gitreceive did not say why it hung up:\n%s", h.logs.String())
	}
}

// sshClient connects to gitreceive with the harness's known key.
func (h *harness) sshClient() *gossh.Client {
	h.t.Helper()
	pem, err := os.ReadFile(h.keyFile)
	if err != nil {
		h.t.Fatal(err)
	}
	signer, err := gossh.ParsePrivateKey(pem)
	if err != nil {
		h.t.Fatal(err)
	}
	c, err := gossh.Dial("tcp", h.sshAddr, &gossh.ClientConfig{
		User:            "git",
		Auth:            []gossh.AuthMethod{gossh.PublicKeys(signer)},
		HostKeyCallback: gossh.InsecureIgnoreHostKey(), //nolint:gosec // a test server with a fresh key
		Timeout:         10 * time.Second,
	})
	if err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(func() { c.Close() })
	return c
}

// TestCommandLineConnBounds checks the SSH server's bounds on the command
// line: their defaults (the session bound follows the build's) and what
// they refuse.
func TestCommandLineConnBounds(t *testing.T) {
	type bounds struct {
		handshake, idle, session time.Duration
		conns, perIP             int
	}
	cmd := cmdlinetest.Command[gitreceive.Config]{
		Daemon: gitreceive.Daemon,
		Args:   []string{"--controller-url", "http://c", "--slugbuilder-image", "b", "--slugrunner-image", "r", "--state-dir", t.TempDir()},
		Env:    map[string]string{"PORT": "", "FLYNN_CONTROLLER_KEY": "k"},
	}
	tests := []struct {
		name  string
		args  []string
		want  bounds
		fails string
	}{
		{name: "defaults", want: bounds{30 * time.Second, 5 * time.Minute, time.Hour + 2*10*time.Minute + 5*time.Minute + 30*time.Minute, 256, 64}},
		{name: "session bound follows the build's", args: []string{"--build-timeout", "3h"}, want: bounds{30 * time.Second, 5 * time.Minute, 3*time.Hour + 2*10*time.Minute + 5*time.Minute + 30*time.Minute, 256, 64}},
		{name: "session bound follows the release command's", args: []string{"--release-timeout", "1h"}, want: bounds{30 * time.Second, 5 * time.Minute, time.Hour + 2*time.Hour + 5*time.Minute + 30*time.Minute, 256, 64}},
		{
			name: "set",
			args: []string{"--handshake-timeout", "10s", "--idle-timeout", "1m", "--max-session-time", "2h", "--max-conns", "10", "--max-conns-per-ip", "3"},
			want: bounds{10 * time.Second, time.Minute, 2 * time.Hour, 10, 3},
		},
		{name: "no connections", args: []string{"--max-conns", "0"}, fails: "--max-conns must be at least 1"},
		{name: "none per address", args: []string{"--max-conns-per-ip", "0"}, fails: "--max-conns-per-ip must be at least 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.fails != "" {
				cmd.Refused(t, nil, tt.fails, tt.args...)
				return
			}
			got := cmd.Accepted(t, nil, tt.args...)
			have := bounds{got.HandshakeTimeout, got.IdleTimeout, got.MaxSessionTime, got.MaxConns, got.MaxConnsPerIP}
			if have != tt.want {
				t.Fatalf("bounds = %+v, want %+v", have, tt.want)
			}
		})
	}
}

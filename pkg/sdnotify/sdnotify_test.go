package sdnotify

import (
	"net"
	"path/filepath"
	"testing"
	"time"
)

func TestNotifySocket(t *testing.T) {
	for _, tc := range []struct {
		name string
		path func(t *testing.T) string // where the test's systemd listens
	}{
		{"file", func(t *testing.T) string { return filepath.Join(t.TempDir(), "notify") }},
		{"abstract", func(t *testing.T) string { return "@flynn-sdnotify-test-" + t.Name() }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := tc.path(t)
			listen := path
			if path[0] == '@' {
				listen = "\x00" + path[1:]
			}
			ln, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: listen, Net: "unixgram"})
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			sent, err := NotifySocket(path, Ready)
			if err != nil || !sent {
				t.Fatalf("NotifySocket = %v, %v; want true, nil", sent, err)
			}
			if err := ln.SetReadDeadline(time.Now().Add(10 * time.Second)); err != nil {
				t.Fatal(err)
			}
			buf := make([]byte, 64)
			n, err := ln.Read(buf)
			if err != nil || string(buf[:n]) != Ready {
				t.Fatalf("systemd got %q, %v; want %q", buf[:n], err, Ready)
			}
		})
	}
}

func TestNotifyWithoutSystemd(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", "")
	if sent, err := Notify(Ready); sent || err != nil {
		t.Fatalf("Notify without NOTIFY_SOCKET = %v, %v; want false, nil", sent, err)
	}
	if _, err := NotifySocket(filepath.Join(t.TempDir(), "nobody"), Ready); err == nil {
		t.Fatal("NotifySocket to a socket nobody listens on: no error")
	}
}

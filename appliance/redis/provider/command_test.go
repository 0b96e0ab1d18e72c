package provider

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/openflynn/flynn/pkg/cmdline/cmdlinetest"
	"github.com/openflynn/flynn/pkg/poll"
)

func TestCommandLine(t *testing.T) {
	tests := []struct {
		name  string
		env   map[string]string
		args  []string
		want  Config
		fails string
	}{
		{
			name: "a job's environment",
			env:  map[string]string{"PORT": "15002", "FLYNN_DISCOVERD_URL": "http://10.0.0.2:1111"},
			want: Config{HTTPAddr: ":15002", Key: "k", ControllerURL: "http://controller.discoverd", ControllerKey: "ck", DiscoverdURL: "http://10.0.0.2:1111",
				Provider: Options{Host: "redis.example.com", RedisApp: "redis", Timeout: 25 * time.Second}},
		},
		{
			name: "the node's discoverd",
			env:  map[string]string{"EXTERNAL_IP": "10.0.0.3"},
			want: Config{HTTPAddr: ":8080", Key: "k", ControllerURL: "http://controller.discoverd", ControllerKey: "ck", DiscoverdURL: "http://10.0.0.3:1111",
				Provider: Options{Host: "redis.example.com", RedisApp: "redis", Timeout: 25 * time.Second}},
		},
		{
			name: "flags",
			args: []string{"--http-addr", "127.0.0.1:9", "--redis-host", "r.test", "--redis-app", "redis7", "--controller-url", "http://c", "--timeout", "5s"},
			want: Config{HTTPAddr: "127.0.0.1:9", Key: "k", ControllerURL: "http://c", ControllerKey: "ck", DiscoverdURL: "http://127.0.0.1:1111",
				Provider: Options{Host: "r.test", RedisApp: "redis7", Timeout: 5 * time.Second}},
		},
		{name: "no API key", env: map[string]string{"FLYNN_REDIS_API_KEY": ""}, fails: "no API key"},
		{name: "no controller key", env: map[string]string{"FLYNN_CONTROLLER_KEY": ""}, fails: "no controller key"},
		{name: "no domain", env: map[string]string{"FLYNN_DOMAIN": ""}, fails: "domain is required"},
		{name: "no timeout", args: []string{"--timeout", "0s"}, fails: "--timeout"},
	}
	cmd := cmdlinetest.Command[Config]{
		Daemon: Daemon,
		Env:    map[string]string{"PORT": "", "FLYNN_REDIS_API_KEY": "k", "FLYNN_CONTROLLER_KEY": "ck", "FLYNN_DOMAIN": "example.com"},
		Unset:  []string{"FLYNN_DISCOVERD_URL", "EXTERNAL_IP", "FLYNN_EXTERNAL_IP"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.fails != "" {
				cmd.Refused(t, tt.env, tt.fails, tt.args...)
				return
			}
			if got := cmd.Accepted(t, tt.env, tt.args...); got != tt.want {
				t.Fatalf("config %+v; want %+v", got, tt.want)
			}
		})
	}
}

// TestRun serves the API on a port of this package's range and stops it.
func TestRun(t *testing.T) {
	var addr string
	for p := 15750; p < 15799 && addr == ""; p++ {
		if ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p)); err == nil {
			addr = ln.Addr().String()
			ln.Close()
		}
	}
	if addr == "" {
		t.Fatal("no free port in 15750-15798")
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	cfg := Config{HTTPAddr: addr, Key: "k", ControllerURL: "http://controller.discoverd", ControllerKey: "ck", DiscoverdURL: "http://127.0.0.1:1", Provider: Options{Host: testHost}}
	go func() { done <- Run(ctx, cfg, slog.New(slog.DiscardHandler)) }()
	poll.UntilNil(t, 10*time.Second, "GET /health", func() error {
		resp, err := http.Get("http://" + addr + "/health")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET /health = %s, want 200", resp.Status)
		}
		return nil
	})
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run = %v, want nil after its context ended", err)
	}
	http.DefaultClient.CloseIdleConnections()

	for _, bad := range []Config{{HTTPAddr: addr, Provider: Options{Host: testHost}}, {HTTPAddr: addr, Key: "k"}} {
		if err := Run(t.Context(), bad, slog.New(slog.DiscardHandler)); err == nil {
			t.Errorf("Run(%+v) = nil, want a refusal", bad)
		}
	}
}

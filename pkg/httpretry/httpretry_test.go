package httpretry

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func newClient(t *testing.T) *http.Client {
	tp := &http.Transport{}
	t.Cleanup(tp.CloseIdleConnections)
	return &http.Client{Transport: tp, Timeout: 5 * time.Second}
}

func TestDo(t *testing.T) {
	tests := []struct {
		name string
		// statuses are the server's answers, one per request; the last
		// repeats.
		statuses []int
		within   time.Duration
		want     int
		requests int64
	}{
		{"answers at once", []int{200}, time.Second, 200, 1},
		{"503 then 200", []int{503, 503, 200}, 5 * time.Second, 200, 3},
		{"a 404 is an answer", []int{404, 200}, 5 * time.Second, 404, 1},
		{"a 500 is an answer", []int{500, 200}, 5 * time.Second, 500, 1},
		{"503 until the end", []int{503}, 250 * time.Millisecond, 503, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var n atomic.Int64
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				body, _ := io.ReadAll(r.Body)
				if string(body) != "slug" {
					t.Errorf("attempt %d: body %q, want the whole body again", n.Load(), body)
				}
				i := int(n.Add(1)) - 1
				w.WriteHeader(tt.statuses[min(i, len(tt.statuses)-1)])
			}))
			defer srv.Close()
			resp, err := Do(context.Background(), newClient(t), tt.within, func() (*http.Request, error) {
				return http.NewRequest("PUT", srv.URL, strings.NewReader("slug"))
			})
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tt.want || n.Load() != tt.requests {
				t.Errorf("status %d after %d requests, want %d after %d", resp.StatusCode, n.Load(), tt.want, tt.requests)
			}
		})
	}
}

// TestDoWaitsForTheServer starts the server on an address only after the
// first attempts were refused.
func TestDoWaitsForTheServer(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()

	attempts := 0
	refused := make(chan struct{})
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok") })}
	served := make(chan error, 1)
	go func() {
		<-refused
		l, err := net.Listen("tcp", addr)
		if err != nil {
			served <- err
			return
		}
		served <- srv.Serve(l)
	}()
	defer func() {
		srv.Close()
		if err := <-served; err != http.ErrServerClosed {
			t.Errorf("serve: %v", err)
		}
	}()
	resp, err := Do(context.Background(), newClient(t), 10*time.Second, func() (*http.Request, error) {
		attempts++
		if attempts == 2 {
			close(refused)
		}
		return http.NewRequest("GET", "http://"+addr+"/", nil)
	})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || attempts < 2 {
		t.Errorf("status %d after %d attempts, want 200 after at least 2", resp.StatusCode, attempts)
	}
}

// TestDoGivesUp checks that a refused connection is reported as such once
// within has passed, and that ctx ends the wait.
func TestDoGivesUp(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + l.Addr().String() + "/"
	l.Close()
	newReq := func() (*http.Request, error) { return http.NewRequest("GET", url, nil) }

	_, err = Do(context.Background(), newClient(t), 300*time.Millisecond, newReq)
	if err == nil || !strings.Contains(err.Error(), "refused") {
		t.Errorf("err = %v, want connection refused", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Do(ctx, newClient(t), time.Minute, newReq); err == nil {
		t.Error("a cancelled context: no error")
	}
}

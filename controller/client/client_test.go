package client_test

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"sync"
	"testing"

	"github.com/openflynn/flynn/controller"
	"github.com/openflynn/flynn/controller/client"
)

// closingServer answers the first request of its first connection, then
// closes that connection once the next request on it has arrived, without
// an answer: what a controller that stops does to a keep-alive connection
// a client reuses at that moment. Every later connection is answered.
type closingServer struct {
	ln    net.Listener
	wg    sync.WaitGroup
	mu    sync.Mutex
	conns int
}

func newClosingServer(t *testing.T) *closingServer {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &closingServer{ln: ln}
	s.wg.Add(1)
	go s.accept()
	t.Cleanup(func() { ln.Close(); s.wg.Wait() })
	return s
}

func (s *closingServer) accept() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		s.conns++
		first := s.conns == 1
		s.mu.Unlock()
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer c.Close()
			r := bufio.NewReader(c)
			for n := 1; ; n++ {
				req, err := http.ReadRequest(r)
				if err != nil {
					return
				}
				req.Body.Close()
				if first && n == 2 {
					return
				}
				_, _ = c.Write([]byte("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"))
			}
		}()
	}
}

// TestIdempotentRequestsSurviveAClosedConnection: a PUT or DELETE sent on
// a keep-alive connection the controller closes as it stops goes again on
// a new one; a POST, which may not be sent twice, fails.
func TestIdempotentRequestsSurviveAClosedConnection(t *testing.T) {
	tests := []struct {
		name    string
		call    func(ctx context.Context, c *client.Client) error
		wantErr bool
	}{
		{"PUT", func(ctx context.Context, c *client.Client) error {
			return c.PutFormation(ctx, &controller.Formation{AppID: "a", ReleaseID: "r"})
		}, false},
		{"DELETE", func(ctx context.Context, c *client.Client) error { return c.DeleteFormation(ctx, "a", "r") }, false},
		{"POST", func(ctx context.Context, c *client.Client) error { return c.CreateApp(ctx, &controller.App{Name: "a"}) }, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newClosingServer(t)
			tp := &http.Transport{}
			defer tp.CloseIdleConnections()
			hc := &http.Client{Transport: tp}
			url := "http://" + s.ln.Addr().String()
			// A first request, read to its end, leaves its connection
			// idle in the pool for the call to reuse.
			resp, err := hc.Get(url + "/ping")
			if err != nil {
				t.Fatal(err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			err = tt.call(t.Context(), client.NewWithHTTPClient(url, "key", hc))
			if (err != nil) != tt.wantErr {
				t.Errorf("err = %v, want an error: %v", err, tt.wantErr)
			}
		})
	}
}

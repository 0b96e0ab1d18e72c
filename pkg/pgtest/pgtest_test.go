package pgtest

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"
	"go.uber.org/goleak"
)

var shared Shared

func TestMain(m *testing.M) { goleak.VerifyTestMain(shared.Main(m)) }

func TestServer(t *testing.T) {
	s := New(t)
	ctx := context.Background()
	a, b := s.NewDatabase(t), s.NewDatabase(t)
	if a == b {
		t.Fatalf("two databases share URL %s", a)
	}
	conn, err := pgx.Connect(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var version string
	if err := conn.QueryRow(ctx, "SHOW server_version").Scan(&version); err != nil {
		t.Fatal(err)
	}
	if version == "" {
		t.Error("empty server_version")
	}
}

func TestShared(t *testing.T) {
	first := shared.Server(t)
	t.Run("a second test", func(t *testing.T) {
		if s := shared.Server(t); s != first {
			t.Errorf("Server started a second server (port %d, first %d)", s.Port(), first.Port())
		}
		url := first.NewDatabase(t)
		conn, err := pgx.Connect(t.Context(), url)
		if err != nil {
			t.Fatal(err)
		}
		conn.Close(t.Context())
	})
}

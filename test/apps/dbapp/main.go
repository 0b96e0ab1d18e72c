// Command dbapp is the sample app of the database appliances: it writes to
// and reads from the Postgres database in DATABASE_URL and, when REDIS_URL
// is set, the Redis there.
//
//	POST /items?v=N    inserts N; answers once the commit is acknowledged
//	GET  /items        the count and the largest value: "count max"
//	GET  /try?db=NAME  connects to database NAME with this app's user:
//	                   "connected" or "refused: <why>"
//	GET  /redis?k=K    SET K to a value, GET it back, answer it
//	GET  /             "dbapp" and whether each database answers
package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

func main() {
	port := os.Getenv("PORT")
	if port == "" {
		port = "8080"
	}
	ctx := context.Background()
	var pool *pgxpool.Pool
	if dsn := os.Getenv("DATABASE_URL"); dsn != "" {
		cfg, err := pgxpool.ParseConfig(dsn)
		if err != nil {
			log.Fatalf("DATABASE_URL: %v", err)
		}
		// A failover closes connections: a short life and a health check
		// find the new primary soon.
		cfg.MaxConnLifetime = 30 * time.Second
		cfg.HealthCheckPeriod = time.Second
		if pool, err = pgxpool.NewWithConfig(ctx, cfg); err != nil {
			log.Fatalf("pool: %v", err)
		}
		if _, err := pool.Exec(ctx, `CREATE TABLE IF NOT EXISTS items (v bigint PRIMARY KEY)`); err != nil {
			log.Printf("create table: %v", err)
		}
	}
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "dbapp postgres=%v redis=%v\n", pool != nil, os.Getenv("REDIS_URL") != "")
	})
	http.HandleFunc("/items", func(w http.ResponseWriter, r *http.Request) {
		if pool == nil {
			http.Error(w, "no DATABASE_URL", http.StatusServiceUnavailable)
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
		defer cancel()
		if r.Method == http.MethodPost {
			v, err := strconv.ParseInt(r.URL.Query().Get("v"), 10, 64)
			if err != nil {
				http.Error(w, "v: "+err.Error(), http.StatusBadRequest)
				return
			}
			if _, err := pool.Exec(ctx, `CREATE TABLE IF NOT EXISTS items (v bigint PRIMARY KEY)`); err != nil {
				http.Error(w, err.Error(), http.StatusServiceUnavailable)
				return
			}
			if _, err := pool.Exec(ctx, `INSERT INTO items (v) VALUES ($1) ON CONFLICT DO NOTHING`, v); err != nil {
				http.Error(w, err.Error(), http.StatusServiceUnavailable)
				return
			}
			fmt.Fprintln(w, "ok")
			return
		}
		var n, max int64
		if err := pool.QueryRow(ctx, `SELECT count(*), coalesce(max(v), 0) FROM items`).Scan(&n, &max); err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintf(w, "%d %d\n", n, max)
	})
	http.HandleFunc("/try", func(w http.ResponseWriter, r *http.Request) {
		u, err := url.Parse(os.Getenv("DATABASE_URL"))
		if err != nil || u.Host == "" {
			http.Error(w, "no DATABASE_URL", http.StatusServiceUnavailable)
			return
		}
		u.Path = "/" + r.URL.Query().Get("db")
		ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, u.String())
		if err == nil {
			err = conn.Ping(ctx)
			conn.Close(ctx)
		}
		if err != nil {
			fmt.Fprintf(w, "refused: %v\n", err)
			return
		}
		fmt.Fprintln(w, "connected")
	})
	http.HandleFunc("/redis", func(w http.ResponseWriter, r *http.Request) {
		v, err := redisSetGet(r.Context(), os.Getenv("REDIS_URL"), r.URL.Query().Get("k"))
		if err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, v)
	})
	log.Printf("listening on %s", port)
	srv := &http.Server{Addr: ":" + port, ReadHeaderTimeout: 10 * time.Second}
	log.Fatal(srv.ListenAndServe())
}

// redisSetGet speaks just enough RESP: AUTH, SET key, GET key.
func redisSetGet(ctx context.Context, rawURL, key string) (string, error) {
	if rawURL == "" {
		return "", errors.New("no REDIS_URL")
	}
	if key == "" {
		return "", errors.New("want ?k=KEY")
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		return "", fmt.Errorf("REDIS_URL: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	conn, err := (&net.Dialer{}).DialContext(ctx, "tcp", u.Host)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	rd := bufio.NewReader(conn)
	call := func(args ...string) (string, error) {
		var b strings.Builder
		fmt.Fprintf(&b, "*%d\r\n", len(args))
		for _, a := range args {
			fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
		}
		if _, err := conn.Write([]byte(b.String())); err != nil {
			return "", err
		}
		line, err := rd.ReadString('\n')
		if err != nil {
			return "", err
		}
		line = strings.TrimRight(line, "\r\n")
		switch {
		case strings.HasPrefix(line, "-"):
			return "", errors.New(line[1:])
		case strings.HasPrefix(line, "$"):
			n, _ := strconv.Atoi(line[1:])
			if n < 0 {
				return "", nil
			}
			buf := make([]byte, n+2)
			if _, err := io.ReadFull(rd, buf); err != nil {
				return "", err
			}
			return string(buf[:n]), nil
		}
		return line[1:], nil
	}
	if pw, ok := u.User.Password(); ok {
		if _, err := call("AUTH", pw); err != nil {
			return "", fmt.Errorf("AUTH: %w", err)
		}
	}
	val := "v-" + key
	if _, err := call("SET", key, val); err != nil {
		return "", fmt.Errorf("SET: %w", err)
	}
	return call("GET", key)
}

package provider

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/openflynn/flynn/appliance/redis"
	"github.com/openflynn/flynn/appliance/redis/resp"
	discoverdclient "github.com/openflynn/flynn/discoverd/client"
	"github.com/openflynn/flynn/pkg/poll"
	"github.com/openflynn/flynn/pkg/testdeps"
)

// localDialer routes "redis-<id>.discoverd" addresses to local servers.
type localDialer struct {
	mu    sync.Mutex
	addrs map[string]string // by resource id
	net   net.Dialer
}

func (d *localDialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	host, _, _ := net.SplitHostPort(addr)
	service, _, _ := discoverdclient.ServiceOf(host)
	d.mu.Lock()
	local, ok := d.addrs[strings.TrimPrefix(service, redis.AppPrefix)]
	d.mu.Unlock()
	if !ok {
		return nil, fmt.Errorf("dial %s: no such server", addr)
	}
	return d.net.DialContext(ctx, network, local)
}

// startRedis runs a redis-server with password until the test ends and
// returns its address.
func startRedis(t *testing.T, bin, password string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	_, port, _ := net.SplitHostPort(addr)
	dir := t.TempDir()
	conf := fmt.Sprintf("bind 127.0.0.1\nport %s\nrequirepass %q\ndir %q\nsave \"\"\nappendonly no\n", port, password, dir)
	if err := os.WriteFile(filepath.Join(dir, "redis.conf"), []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, filepath.Join(dir, "redis.conf"))
	cmd.Dir = dir
	out := &strings.Builder{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-done
	})
	poll.UntilNil(t, 20*time.Second, "redis-server answers", func() error {
		select {
		case <-done:
			t.Fatalf("redis-server exited: %s", out.String())
		default:
		}
		c, err := redisConn(t.Context(), addr, password)
		if err == nil {
			c.Close()
		}
		return err
	})
	return addr
}

func redisConn(ctx context.Context, addr, password string) (*resp.Conn, error) {
	nc, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return nil, err
	}
	c := resp.NewConn(nc)
	if _, err := c.Do(ctx, "AUTH", password); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// do runs commands on c and fails the test on an error.
func do(t *testing.T, c *resp.Conn, cmds ...[]string) {
	t.Helper()
	for _, cmd := range cmds {
		if _, err := c.Do(t.Context(), cmd...); err != nil {
			t.Fatalf("%q: %v", cmd, err)
		}
	}
}

// entry is a key as the comparison sees it.
type entry struct {
	Type  string
	Value string
	PTTL  int64
}

// contents reads every key of every database of the server at addr.
func contents(t *testing.T, addr, password string) map[int]map[string]entry {
	t.Helper()
	ctx := t.Context()
	c, err := redisConn(ctx, addr, password)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	str := func(v any, err error) string {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		switch v := v.(type) {
		case []byte:
			return string(v)
		case string:
			return v
		case []any:
			var parts []string
			for _, e := range v {
				b, _ := e.([]byte)
				parts = append(parts, string(b))
			}
			return strings.Join(parts, ",")
		}
		return fmt.Sprint(v)
	}
	out := map[int]map[string]entry{}
	for db := range maxDB + 1 {
		do(t, c, []string{"SELECT", strconv.Itoa(db)})
		cursor := "0"
		for {
			v, err := c.Do(ctx, "SCAN", cursor, "COUNT", "1000")
			if err != nil {
				t.Fatal(err)
			}
			next, keys, err := scanReply(v)
			if err != nil {
				t.Fatal(err)
			}
			for _, k := range keys {
				key := string(k)
				e := entry{Type: str(c.Do(ctx, "TYPE", key))}
				switch e.Type {
				case "string":
					e.Value = str(c.Do(ctx, "GET", key))
				case "hash":
					e.Value = str(c.Do(ctx, "HGETALL", key))
				case "list":
					e.Value = str(c.Do(ctx, "LRANGE", key, "0", "-1"))
				case "set":
					members := strings.Split(str(c.Do(ctx, "SMEMBERS", key)), ",")
					slices.Sort(members)
					e.Value = strings.Join(members, ",")
				}
				ttl, err := c.Do(ctx, "PTTL", key)
				if err != nil {
					t.Fatal(err)
				}
				e.PTTL = ttl.(int64)
				if out[db] == nil {
					out[db] = map[string]entry{}
				}
				out[db][key] = e
			}
			if cursor = next; cursor == "0" {
				break
			}
		}
	}
	return out
}

// TestRealRedis backs up a real redis-server and restores it into
// another through the API.
func TestRealRedis(t *testing.T) {
	testdeps.Short(t)
	bin := testdeps.LookPath(t, "redis-server")
	dialer := &localDialer{addrs: map[string]string{}}
	h := newDumpHarness(t, Options{Dialer: dialer})

	servers := map[string]string{} // id → password
	for range 2 {
		res := provision(t, h.api)
		servers[res.ID] = res.Env[redis.EnvPassword]
		dialer.mu.Lock()
		dialer.addrs[res.ID] = startRedis(t, bin, res.Env[redis.EnvPassword])
		dialer.mu.Unlock()
	}
	ids := slices.Sorted(func(yield func(string) bool) {
		for id := range servers {
			if !yield(id) {
				return
			}
		}
	})
	srcID, dstID := ids[0], ids[1]
	srcAddr, dstAddr := dialer.addrs[srcID], dialer.addrs[dstID]

	src, err := redisConn(t.Context(), srcAddr, servers[srcID])
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	do(t, src,
		[]string{"SET", "greeting", "hello"},
		[]string{"SET", "binary\x00key", "\x00\xff\r\n"},
		[]string{"HSET", "user:1", "name", "ada", "lang", "go"},
		[]string{"RPUSH", "queue", "a", "b", "c"},
		[]string{"SET", "session", "s3cret", "PX", "600000"},
		[]string{"SELECT", "1"},
		[]string{"SADD", "tags", "x", "y", "z"},
		[]string{"SET", "greeting", "db1"},
		[]string{"SELECT", "15"},
		[]string{"RPUSH", "last", "1"},
	)
	for i := range 2500 { // more than one SCAN and one pipeline
		do(t, src, []string{"SET", "bulk:" + strconv.Itoa(i), strconv.Itoa(i)})
	}

	status, ct, dump, err := h.get(t, srcID)
	if err != nil || status != http.StatusOK || ct != "application/octet-stream" {
		t.Fatalf("GET backup = %d %q %s, %v", status, ct, dump, err)
	}
	status, reply := call(t, http.MethodPost, h.api+Path+"/"+dstID+"/restore", testKey, string(dump))
	if want := `{"keys":2508}`; status != http.StatusOK || strings.TrimSpace(string(reply)) != want {
		t.Fatalf("POST restore = %d %s, want 200 %s", status, reply, want)
	}

	want, got := contents(t, srcAddr, servers[srcID]), contents(t, dstAddr, servers[dstID])
	for db, keys := range want {
		for k, e := range keys {
			g := got[db][k]
			if e.PTTL > 0 {
				// The TTL goes on counting down from the dump.
				if g.PTTL <= 0 || g.PTTL > e.PTTL+100 || g.PTTL < e.PTTL-30000 {
					t.Errorf("db %d key %q: TTL %d ms, want about %d", db, k, g.PTTL, e.PTTL)
				}
				e.PTTL, g.PTTL = 0, 0
			}
			if g != e {
				t.Errorf("db %d key %q: %+v, want %+v", db, k, g, e)
			}
		}
		if len(got[db]) != len(keys) {
			t.Errorf("db %d: %d keys, want %d", db, len(got[db]), len(keys))
		}
	}
	if len(got) != len(want) || len(want) != 3 {
		t.Errorf("databases %d, want %d (and 3)", len(got), len(want))
	}

	// A dump with a FLUSHALL in it changes nothing.
	bad := commands([]string{"SELECT", "0"}, []string{"RESTORE", "new", "0", "x", "REPLACE"}, []string{"FLUSHALL"})
	if status, reply := call(t, http.MethodPost, h.api+Path+"/"+dstID+"/restore", testKey, string(dump)+bad); status != http.StatusBadRequest {
		t.Errorf("POST restore with FLUSHALL = %d %s, want 400", status, reply)
	}
	after := contents(t, dstAddr, servers[dstID])
	for _, m := range []map[int]map[string]entry{got, after} {
		for _, keys := range m {
			for k, e := range keys {
				e.PTTL = min(e.PTTL, 0)
				keys[k] = e
			}
		}
	}
	if !reflect.DeepEqual(after, got) {
		t.Errorf("a refused restore changed the server")
	}
}

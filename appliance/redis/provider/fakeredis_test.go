package provider

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/openflynn/flynn/appliance/redis"
	"github.com/openflynn/flynn/appliance/redis/resp"
	discoverdclient "github.com/openflynn/flynn/discoverd/client"
)

// fakeValue is a key of a fakeRedis: its value and TTL (-1: none).
type fakeValue struct {
	value string
	pttl  int64
}

// fakeRedis is an in-memory Redis of the commands a backup and a restore
// send, served over net.Pipe. DUMP's payload is "fake:" and the value;
// RESTORE refuses any other.
type fakeRedis struct {
	password string
	// scanPage is how many keys each SCAN returns; default all.
	scanPage int

	mu  sync.Mutex
	dbs map[int]map[string]fakeValue
	// refuseDials makes that many dials fail before one succeeds.
	refuseDials int
	// dropAtDump closes the connection at the DUMP of that number, from
	// 1 (0: never).
	dropAtDump int
	dials      int
	commands   []string
	dumps      int
}

func newFakeRedis(password string) *fakeRedis {
	return &fakeRedis{password: password, dbs: map[int]map[string]fakeValue{}}
}

func (r *fakeRedis) set(db int, key, value string, pttl int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.dbs[db] == nil {
		r.dbs[db] = map[string]fakeValue{}
	}
	r.dbs[db][key] = fakeValue{value, pttl}
}

// data returns a copy of every database.
func (r *fakeRedis) data() map[int]map[string]fakeValue {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[int]map[string]fakeValue{}
	for db, keys := range r.dbs {
		if len(keys) > 0 {
			out[db] = maps.Clone(keys)
		}
	}
	return out
}

func (r *fakeRedis) stats() (dials int, commands []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.dials, slices.Clone(r.commands)
}

// dial connects a client to the fake, or fails as refuseDials says.
func (r *fakeRedis) dial() (net.Conn, error) {
	r.mu.Lock()
	r.dials++
	refuse := r.refuseDials > 0
	if refuse {
		r.refuseDials--
	}
	r.mu.Unlock()
	if refuse {
		return nil, errors.New("connection refused (fake)")
	}
	client, server := net.Pipe()
	go r.serve(server)
	return client, nil
}

// serve answers one connection until the client closes it.
func (r *fakeRedis) serve(nc net.Conn) {
	defer nc.Close()
	rd, bw := resp.NewReader(nc), bufio.NewWriter(nc)
	authed, db := false, 0
	for {
		v, err := rd.ReadReply()
		if err != nil {
			return
		}
		a, _ := v.([]any)
		args := make([]string, len(a))
		for i, e := range a {
			b, _ := e.([]byte)
			args[i] = string(b)
		}
		if len(args) == 0 {
			return
		}
		name := strings.ToUpper(args[0])
		r.mu.Lock()
		r.commands = append(r.commands, name)
		var reply any
		switch {
		case name == "AUTH":
			authed = len(args) == 2 && args[1] == r.password
			reply = resp.Error("WRONGPASS invalid username-password pair or user is disabled.")
			if authed {
				reply = "OK"
			}
		case !authed:
			reply = resp.Error("NOAUTH Authentication required.")
		default:
			var drop bool
			reply, drop = r.do(name, args[1:], &db)
			if drop {
				r.mu.Unlock()
				return
			}
		}
		r.mu.Unlock()
		encode(bw, reply)
		if err := bw.Flush(); err != nil {
			return
		}
	}
}

// do runs one command of an authenticated client on database *db; r.mu
// is held. drop says to close the connection instead of answering.
func (r *fakeRedis) do(name string, args []string, db *int) (reply any, drop bool) {
	keys := r.dbs[*db]
	switch name {
	case "PING":
		return "PONG", false
	case "INFO":
		var b strings.Builder
		b.WriteString("# Keyspace\r\n")
		for _, n := range slices.Sorted(maps.Keys(r.dbs)) {
			if len(r.dbs[n]) > 0 {
				fmt.Fprintf(&b, "db%d:keys=%d,expires=0,avg_ttl=0\r\n", n, len(r.dbs[n]))
			}
		}
		return []byte(b.String()), false
	case "SELECT":
		n, err := strconv.Atoi(args[0])
		if err != nil || n < 0 || n > 15 {
			return resp.Error("ERR DB index is out of range"), false
		}
		*db = n
		return "OK", false
	case "SCAN":
		all := slices.Sorted(maps.Keys(keys))
		from, _ := strconv.Atoi(args[0])
		to := len(all)
		if r.scanPage > 0 {
			to = min(from+r.scanPage, len(all))
		}
		next := strconv.Itoa(to)
		if to == len(all) {
			next = "0"
		}
		page := []any{}
		for _, k := range all[from:to] {
			page = append(page, []byte(k))
		}
		return []any{[]byte(next), page}, false
	case "PTTL":
		v, ok := keys[args[0]]
		if !ok {
			return int64(-2), false
		}
		return v.pttl, false
	case "DUMP":
		r.dumps++
		if r.dumps == r.dropAtDump {
			return nil, true
		}
		v, ok := keys[args[0]]
		if !ok {
			return nil, false
		}
		return []byte("fake:" + v.value), false
	case "RESTORE":
		key, ttl, payload := args[0], args[1], args[2]
		if _, exists := keys[key]; exists && (len(args) < 4 || !strings.EqualFold(args[3], "REPLACE")) {
			return resp.Error("BUSYKEY Target key name already exists."), false
		}
		value, ok := strings.CutPrefix(payload, "fake:")
		if !ok {
			return resp.Error("ERR DUMP payload version or checksum are wrong"), false
		}
		pttl, _ := strconv.ParseInt(ttl, 10, 64)
		if pttl == 0 {
			pttl = -1
		}
		if keys == nil {
			keys = map[string]fakeValue{}
			r.dbs[*db] = keys
		}
		keys[key] = fakeValue{value, pttl}
		return "OK", false
	case "FLUSHALL":
		clear(r.dbs)
		return "OK", false
	}
	return resp.Error("ERR unknown command '" + name + "'"), false
}

// encode writes a reply of the fake's, of the types ReadReply reads.
func encode(b *bufio.Writer, v any) {
	switch v := v.(type) {
	case nil:
		b.WriteString("$-1\r\n")
	case string:
		fmt.Fprintf(b, "+%s\r\n", v)
	case resp.Error:
		fmt.Fprintf(b, "-%s\r\n", v)
	case int64:
		fmt.Fprintf(b, ":%d\r\n", v)
	case []byte:
		fmt.Fprintf(b, "$%d\r\n%s\r\n", len(v), v)
	case []any:
		fmt.Fprintf(b, "*%d\r\n", len(v))
		for _, e := range v {
			encode(b, e)
		}
	}
}

// fakeDialer routes "redis-<id>.discoverd" addresses to fake servers.
type fakeDialer struct {
	mu      sync.Mutex
	servers map[string]*fakeRedis // by resource id
}

var _ Dialer = (*fakeDialer)(nil)

func (d *fakeDialer) add(id string, r *fakeRedis) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.servers == nil {
		d.servers = map[string]*fakeRedis{}
	}
	d.servers[id] = r
}

func (d *fakeDialer) DialContext(_ context.Context, _, addr string) (net.Conn, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	service, _, ok := discoverdclient.ServiceOf(host)
	id, isRedis := strings.CutPrefix(service, redis.AppPrefix)
	d.mu.Lock()
	r := d.servers[id]
	d.mu.Unlock()
	if !ok || !isRedis || r == nil {
		return nil, fmt.Errorf("dial %s: no live instance (fake)", addr)
	}
	return r.dial()
}

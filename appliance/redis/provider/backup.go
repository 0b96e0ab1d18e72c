package provider

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"slices"
	"strconv"

	"github.com/openflynn/flynn/appliance/redis/resp"
)

// scanCount is the COUNT of each SCAN of a backup: how many keys are
// dumped in one pipeline, at most about.
const scanCount = "1000"

// maxDB is the highest database a dump holds and a restore accepts:
// Redis's default of 16 databases, which redisd does not change.
const maxDB = 15

// Backup writes the dump of Redis server id to w (see the package doc),
// as it reads it: nothing is held but one SCAN's keys. It returns
// ErrNotFound for a server the provider has not (as Deprovision does);
// errors of the server are ErrServer ones. Writes to w start only once
// the server has answered, so that an error before any write can still be
// reported as one; an error after the first write leaves a truncated dump
// in w, which the caller must not pass off as whole.
func (p *Provider) Backup(ctx context.Context, id string, w io.Writer) error {
	password, err := p.lookup(ctx, id)
	if err != nil {
		return err
	}
	c, err := p.connect(ctx, id, password)
	if err != nil {
		return err
	}
	defer c.Close()
	keys, err := dump(ctx, c, w)
	if err != nil {
		return fmt.Errorf("%w: backup of redis-%s: %w", ErrServer, id, err)
	}
	p.opts.Logger.Info("redis backed up", "resource.id", id, "keys", keys)
	return nil
}

// dump writes the dump of the server c is connected (and authenticated)
// to, and returns how many keys it holds.
func dump(ctx context.Context, c *resp.Conn, w io.Writer) (keys int, err error) {
	defer c.AbortOn(ctx)()
	defer func() { err = resp.CtxErr(ctx, err) }()
	info, err := c.Do(ctx, "INFO", "keyspace")
	if err != nil {
		return 0, fmt.Errorf("INFO keyspace: %w", err)
	}
	text, ok := info.([]byte)
	if !ok {
		return 0, fmt.Errorf("INFO keyspace answered %T, not text", info)
	}
	dbs, err := keyspace(text)
	if err != nil {
		return 0, err
	}
	out := resp.NewWriter(w)
	for _, db := range dbs {
		n, err := dumpDB(ctx, c, out, db)
		keys += n
		if err != nil {
			return keys, fmt.Errorf("database %d: %w", db, err)
		}
	}
	return keys, out.Flush()
}

// dumpDB writes SELECT db and the RESTORE commands of its keys.
func dumpDB(ctx context.Context, c *resp.Conn, out *resp.Writer, db int) (keys int, err error) {
	if _, err := c.Do(ctx, "SELECT", strconv.Itoa(db)); err != nil {
		return 0, fmt.Errorf("SELECT: %w", err)
	}
	if err := out.WriteCommandString("SELECT", strconv.Itoa(db)); err != nil {
		return 0, err
	}
	cursor := "0"
	for {
		reply, err := c.Do(ctx, "SCAN", cursor, "COUNT", scanCount)
		if err != nil {
			return keys, fmt.Errorf("SCAN: %w", err)
		}
		next, batch, err := scanReply(reply)
		if err != nil {
			return keys, err
		}
		n, err := dumpKeys(c, out, batch)
		keys += n
		if err != nil {
			return keys, err
		}
		if cursor = next; cursor == "0" {
			return keys, nil
		}
	}
}

// dumpKeys pipelines PTTL and DUMP of each key and writes a RESTORE of
// each that still exists.
func dumpKeys(c *resp.Conn, out *resp.Writer, keys [][]byte) (n int, err error) {
	pttl, dumpCmd := []byte("PTTL"), []byte("DUMP")
	for _, k := range keys {
		c.WriteCommand(pttl, k)
		c.WriteCommand(dumpCmd, k)
	}
	if err := c.Flush(); err != nil {
		return 0, err
	}
	restore, replace := []byte("RESTORE"), []byte("REPLACE")
	// Every reply is read, even after an error, to leave the connection
	// in step; the first error is reported.
	var first error
	for _, k := range keys {
		ttlReply, ttlErr := c.ReadReply()
		payload, dumpErr := c.ReadReply()
		if err := firstOf(ttlErr, dumpErr); err != nil {
			if _, isReply := replyError(err); !isReply {
				return n, err
			}
			if first == nil {
				first = fmt.Errorf("key %q: %w", k, err)
			}
			continue
		}
		ttl, ok := ttlReply.(int64)
		if !ok {
			return n, fmt.Errorf("PTTL of key %q answered %T", k, ttlReply)
		}
		data, ok := payload.([]byte)
		switch {
		case payload == nil || ttl == -2 || ttl == 0:
			// Gone between SCAN and DUMP, or expiring as it was read
			// (a TTL of 0 in RESTORE would make it live for ever).
			continue
		case !ok:
			return n, fmt.Errorf("DUMP of key %q answered %T", k, payload)
		case ttl == -1:
			ttl = 0
		}
		if first != nil {
			continue
		}
		if err := out.WriteCommand(restore, k, strconv.AppendInt(nil, ttl, 10), data, replace); err != nil {
			return n, err
		}
		n++
	}
	return n, first
}

func firstOf(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// scanReply takes apart SCAN's reply: the next cursor and the keys.
func scanReply(reply any) (cursor string, keys [][]byte, err error) {
	a, ok := reply.([]any)
	if !ok || len(a) != 2 {
		return "", nil, fmt.Errorf("SCAN answered %T, not [cursor, keys]", reply)
	}
	cur, ok := a[0].([]byte)
	list, ok2 := a[1].([]any)
	if !ok || !ok2 {
		return "", nil, fmt.Errorf("SCAN answered [%T, %T], not [cursor, keys]", a[0], a[1])
	}
	keys = make([][]byte, 0, len(list))
	for _, k := range list {
		key, ok := k.([]byte)
		if !ok {
			return "", nil, fmt.Errorf("SCAN answered a key of type %T", k)
		}
		keys = append(keys, key)
	}
	return string(cur), keys, nil
}

// keyspace returns the databases INFO keyspace lists (lines such as
// "db3:keys=1,expires=0,avg_ttl=0"), in order.
func keyspace(info []byte) ([]int, error) {
	var dbs []int
	sc := bufio.NewScanner(bytes.NewReader(info))
	for sc.Scan() {
		name, _, ok := bytes.Cut(bytes.TrimSpace(sc.Bytes()), []byte(":"))
		num, isDB := bytes.CutPrefix(name, []byte("db"))
		if !ok || !isDB {
			continue
		}
		db, err := strconv.Atoi(string(num))
		if err != nil || db < 0 {
			return nil, fmt.Errorf("INFO keyspace lists %q", name)
		}
		if db > maxDB {
			return nil, fmt.Errorf("database %d holds keys, beyond the %d a dump may hold", db, maxDB+1)
		}
		dbs = append(dbs, db)
	}
	slices.Sort(dbs)
	return slices.Compact(dbs), sc.Err()
}

package provider

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/openflynn/flynn/appliance/redis/resp"
)

// Bounds of a restore's batches: commands are checked a batch at a time
// before the batch is sent, pipelined, to the server.
const (
	maxBatchCommands = 1000
	maxBatchBytes    = 16 << 20
)

// maxArgs is the most arguments a command of a dump may have before it is
// refused outright; the checks of SELECT and RESTORE then say what is
// wrong with one that has fewer.
const maxArgs = 16

// pingTimeout bounds each attempt of a restore to reach its server.
const pingTimeout = 10 * time.Second

// RestoreResult is what a restore did.
type RestoreResult struct {
	// Keys is how many keys were restored.
	Keys int `json:"keys"`
}

// Restore replays dump, a dump as Backup writes it (see the package doc),
// into Redis server id, once the server answers (for at most
// Options.RestoreWait). The dump is checked a batch of commands at a time
// before the batch is sent, so a dump with a command that is not SELECT or
// RESTORE is refused (ErrBadDump) before anything is replayed when the
// command is in the first batch (1000 commands or 16 MiB), and stops the
// restore there otherwise. A command the server refuses stops it too:
// ErrConflict for a key that exists and may not be replaced, ErrBadDump
// otherwise, saying which key. Every RESTORE of a dump replaces its key,
// so replaying one again after a failure is safe.
func (p *Provider) Restore(ctx context.Context, id string, dump io.Reader) (*RestoreResult, error) {
	password, err := p.lookup(ctx, id)
	if err != nil {
		return nil, err
	}
	src := newDumpReader(dump)
	batch, err := src.next()
	if err != nil {
		return nil, err
	}
	c, err := p.waitServer(ctx, id, password)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	defer c.AbortOn(ctx)()
	res := &RestoreResult{}
	for len(batch) > 0 {
		n, err := replay(c, batch)
		res.Keys += n
		if err != nil {
			return res, resp.CtxErr(ctx, fmt.Errorf("restore of redis-%s, %d keys in: %w", id, res.Keys, err))
		}
		if batch, err = src.next(); err != nil {
			return res, resp.CtxErr(ctx, fmt.Errorf("restore of redis-%s, %d keys in: %w", id, res.Keys, err))
		}
	}
	p.opts.Logger.Info("redis restored", "resource.id", id, "keys", res.Keys)
	return res, nil
}

// waitServer connects to server id once it answers AUTH and PING.
func (p *Provider) waitServer(parent context.Context, id, password string) (*resp.Conn, error) {
	ctx, cancel := context.WithTimeout(parent, p.opts.RestoreWait)
	defer cancel()
	tick := time.NewTicker(p.opts.retryInterval)
	defer tick.Stop()
	for {
		c, err := p.ping(ctx, id, password)
		if err == nil {
			return c, nil
		}
		select {
		case <-ctx.Done():
			if parent.Err() == nil {
				return nil, fmt.Errorf("%w: redis-%s did not answer within %s: %w", ErrServer, id, p.opts.RestoreWait, err)
			}
			return nil, fmt.Errorf("redis-%s: %w (last try: %w)", id, context.Cause(ctx), err)
		case <-tick.C:
		}
	}
}

// ping connects to server id and checks that it answers PING; a server
// loading its data answers an error until it is done.
func (p *Provider) ping(ctx context.Context, id, password string) (*resp.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, pingTimeout)
	defer cancel()
	c, err := p.connect(ctx, id, password)
	if err != nil {
		return nil, err
	}
	if reply, err := c.Do(ctx, "PING"); err != nil || reply != "PONG" {
		c.Close()
		return nil, fmt.Errorf("%w: PING answered %v, %w", ErrServer, reply, err)
	}
	return c, nil
}

// command is a checked command of a dump.
type command struct {
	args [][]byte
	// key is RESTORE's key, nil for SELECT.
	key []byte
	// n is the command's place in the dump, from 1.
	n int
}

// dumpReader reads a dump in checked batches.
type dumpReader struct {
	r *resp.Reader
	n int
}

func newDumpReader(r io.Reader) *dumpReader {
	rd := resp.NewReader(r)
	rd.MaxArray, rd.MaxDepth = maxArgs, 1
	return &dumpReader{r: rd}
}

// next returns the next batch of commands, none at the end of the dump.
func (d *dumpReader) next() ([]command, error) {
	var batch []command
	size := 0
	for len(batch) < maxBatchCommands && size < maxBatchBytes {
		v, err := d.r.ReadReply()
		switch {
		case err == io.EOF:
			return batch, nil
		case errors.Is(err, io.ErrUnexpectedEOF):
			return nil, fmt.Errorf("%w: it ends in the middle of command %d", ErrBadDump, d.n+1)
		case errors.Is(err, resp.ErrProtocol):
			return nil, fmt.Errorf("%w: command %d: %w", ErrBadDump, d.n+1, err)
		case err != nil:
			if _, isReply := replyError(err); isReply {
				return nil, fmt.Errorf("%w: command %d is an error reply, not a command", ErrBadDump, d.n+1)
			}
			return nil, fmt.Errorf("read the dump: %w", err)
		}
		d.n++
		cmd, err := check(v, d.n)
		if err != nil {
			return nil, err
		}
		for _, a := range cmd.args {
			size += len(a)
		}
		batch = append(batch, cmd)
	}
	return batch, nil
}

// check returns v as a command if it is a SELECT or RESTORE of a dump.
func check(v any, n int) (command, error) {
	a, ok := v.([]any)
	if !ok || len(a) == 0 {
		return command{}, fmt.Errorf("%w: command %d is not an array of bulk strings", ErrBadDump, n)
	}
	args := make([][]byte, len(a))
	for i, e := range a {
		if args[i], ok = e.([]byte); !ok || args[i] == nil {
			return command{}, fmt.Errorf("%w: command %d is not an array of bulk strings", ErrBadDump, n)
		}
	}
	cmd := command{args: args, n: n}
	bad := func(format string, a ...any) (command, error) {
		return command{}, fmt.Errorf("%w: command %d (%s): %s", ErrBadDump, n, short(args[0]), fmt.Sprintf(format, a...))
	}
	switch {
	case bytes.EqualFold(args[0], []byte("SELECT")):
		if len(args) != 2 {
			return bad("takes one argument, got %d", len(args)-1)
		}
		if db, ok := decimal(args[1]); !ok || db > maxDB {
			return bad("database %s is not one of 0 to %d", short(args[1]), maxDB)
		}
	case bytes.EqualFold(args[0], []byte("RESTORE")):
		if len(args) != 4 && len(args) != 5 {
			return bad("takes a key, a TTL, a payload and REPLACE, got %d arguments", len(args)-1)
		}
		cmd.key = args[1]
		if _, ok := decimal(args[2]); !ok {
			return bad("key %s: TTL %s is not a number of milliseconds", short(args[1]), short(args[2]))
		}
		if len(args) == 5 && !bytes.EqualFold(args[4], []byte("REPLACE")) {
			return bad("key %s: %s is not REPLACE", short(args[1]), short(args[4]))
		}
	default:
		return bad("a dump holds only SELECT and RESTORE")
	}
	return cmd, nil
}

// decimal parses a non-negative decimal number of digits alone.
func decimal(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > 18 {
		return 0, false
	}
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseInt(string(b), 10, 64)
	return n, err == nil
}

// short quotes b for a message, cut to a length a message can hold.
func short(b []byte) string {
	const max = 64
	if len(b) > max {
		return strconv.Quote(string(b[:max])) + "…"
	}
	return strconv.Quote(string(b))
}

// replay sends a batch, pipelined, and reads every reply. It returns how
// many keys were restored and, when the server refused a command, which.
func replay(c *resp.Conn, batch []command) (keys int, err error) {
	for _, cmd := range batch {
		c.WriteCommand(cmd.args...)
	}
	if err := c.Flush(); err != nil {
		return 0, fmt.Errorf("%w: %w", ErrServer, err)
	}
	var refused error
	for _, cmd := range batch {
		_, err := c.ReadReply()
		e, isReply := replyError(err)
		switch {
		case err == nil:
			if cmd.key != nil {
				keys++
			}
		case !isReply:
			return keys, fmt.Errorf("%w: %w", ErrServer, err)
		case refused != nil:
		case cmd.key == nil:
			refused = fmt.Errorf("%w: command %d, SELECT %s: %w", ErrBadDump, cmd.n, cmd.args[1], e)
		case e.Code() == "BUSYKEY":
			refused = fmt.Errorf("%w: command %d, key %s: %w", ErrConflict, cmd.n, short(cmd.key), e)
		default:
			refused = fmt.Errorf("%w: command %d, key %s: %w", ErrBadDump, cmd.n, short(cmd.key), e)
		}
	}
	return keys, refused
}

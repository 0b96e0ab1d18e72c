package resp

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"
)

// Conn is a connection to a Redis server: a Writer and a Reader on it.
// Commands may be pipelined: several WriteCommand, one Flush, then one
// ReadReply per command. A Conn is not safe for concurrent use.
type Conn struct {
	*Reader
	*Writer
	nc net.Conn
}

// NewConn returns a Conn on nc, which it owns from then on.
func NewConn(nc net.Conn) *Conn {
	return &Conn{Reader: NewReader(nc), Writer: NewWriter(nc), nc: nc}
}

// Close closes the connection.
func (c *Conn) Close() error { return c.nc.Close() }

// past is a deadline that has passed, which ends blocked I/O at once.
var past = time.Unix(1, 0)

// AbortOn bounds the connection's I/O by ctx until stop is called: by its
// deadline, and by its end, which interrupts a read or write in progress.
// Once ctx has ended the connection is broken (the stream may stop in the
// middle of a reply) and is only good for Close.
func (c *Conn) AbortOn(ctx context.Context) (stop func()) {
	if d, ok := ctx.Deadline(); ok {
		c.nc.SetDeadline(d)
	}
	stopAfter := context.AfterFunc(ctx, func() { c.nc.SetDeadline(past) })
	return func() {
		if stopAfter() {
			c.nc.SetDeadline(time.Time{})
		}
	}
}

// Do sends one command and reads its reply (see Reader.ReadReply), within
// ctx (see AbortOn).
func (c *Conn) Do(ctx context.Context, args ...string) (any, error) {
	defer c.AbortOn(ctx)()
	if err := c.WriteCommandString(args...); err != nil {
		return nil, CtxErr(ctx, err)
	}
	if err := c.Flush(); err != nil {
		return nil, CtxErr(ctx, err)
	}
	v, err := c.ReadReply()
	if reply := Error(""); err != nil && !errors.As(err, &reply) {
		return nil, CtxErr(ctx, err)
	}
	return v, err
}

// CtxErr is the error to report for err, an error of I/O bounded by
// AbortOn(ctx): ctx's cause when ctx has ended (the I/O error is then only
// its consequence), err otherwise.
func CtxErr(ctx context.Context, err error) error {
	if err != nil && ctx.Err() != nil {
		return fmt.Errorf("%w (%w)", context.Cause(ctx), err)
	}
	return err
}

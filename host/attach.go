package host

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// AttachUpgrade is the Upgrade header value of POST /host/attach; the
// server answers 101 Switching Protocols and both sides then speak Frames.
const AttachUpgrade = "flynn-attach"

// AttachRequest is the body of POST /host/attach.
type AttachRequest struct {
	// JobID attaches to a running job (its output from now on).
	JobID string `json:"job_id,omitempty"`
	// Job, when set instead, is created and attached to before it starts,
	// so that none of its output is missed (one-off jobs, `flynn-host run`).
	Job *Job `json:"job,omitempty"`
	// Stdin sends the client's input to the job (needs Config.Stdin).
	Stdin bool `json:"stdin,omitempty"`
	// Height and Width are the initial terminal size for TTY jobs.
	Height uint16 `json:"height,omitempty"`
	Width  uint16 `json:"width,omitempty"`
}

// FrameType says what a Frame carries.
type FrameType byte

// Frame types. The client sends Stdin, StdinEOF and Resize; the server sends
// Stdout, Stderr, then Exit (or Error) as the last frame.
const (
	FrameStdin    FrameType = 0
	FrameStdout   FrameType = 1
	FrameStderr   FrameType = 2
	FrameExit     FrameType = 3 // payload: 4-byte big-endian exit status
	FrameResize   FrameType = 4 // payload: 2-byte height, 2-byte width
	FrameStdinEOF FrameType = 5
	FrameError    FrameType = 6 // payload: error message
)

// MaxFramePayload bounds one frame so a broken peer cannot make the other
// side allocate without end.
const MaxFramePayload = 1 << 20

// Frame is one message on an attached stream: a type byte, a 4-byte
// big-endian payload length, then the payload.
type Frame struct {
	Type    FrameType
	Payload []byte
}

// WriteFrame writes one frame.
func WriteFrame(w io.Writer, t FrameType, payload []byte) error {
	if len(payload) > MaxFramePayload {
		return fmt.Errorf("attach frame of %d bytes exceeds %d", len(payload), MaxFramePayload)
	}
	hdr := [5]byte{byte(t)}
	binary.BigEndian.PutUint32(hdr[1:], uint32(len(payload)))
	buf := append(hdr[:], payload...)
	_, err := w.Write(buf)
	return err
}

// ReadFrame reads one frame.
func ReadFrame(r io.Reader) (Frame, error) {
	var hdr [5]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return Frame{}, err
	}
	n := binary.BigEndian.Uint32(hdr[1:])
	if n > MaxFramePayload {
		return Frame{}, fmt.Errorf("attach frame of %d bytes exceeds %d", n, MaxFramePayload)
	}
	f := Frame{Type: FrameType(hdr[0]), Payload: make([]byte, n)}
	if _, err := io.ReadFull(r, f.Payload); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return Frame{}, err
	}
	return f, nil
}

// ExitPayload encodes an exit status for a FrameExit.
func ExitPayload(status int) []byte {
	return binary.BigEndian.AppendUint32(nil, uint32(int32(status)))
}

// ParseExit decodes a FrameExit payload.
func ParseExit(p []byte) (int, error) {
	if len(p) != 4 {
		return 0, fmt.Errorf("exit frame has %d bytes, want 4", len(p))
	}
	return int(int32(binary.BigEndian.Uint32(p))), nil
}

// ResizePayload encodes a terminal size for a FrameResize.
func ResizePayload(height, width uint16) []byte {
	p := binary.BigEndian.AppendUint16(nil, height)
	return binary.BigEndian.AppendUint16(p, width)
}

// ParseResize decodes a FrameResize payload.
func ParseResize(p []byte) (height, width uint16, err error) {
	if len(p) != 4 {
		return 0, 0, fmt.Errorf("resize frame has %d bytes, want 4", len(p))
	}
	return binary.BigEndian.Uint16(p), binary.BigEndian.Uint16(p[2:]), nil
}

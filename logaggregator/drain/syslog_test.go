package drain

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/openflynn/flynn/logaggregator"
)

// message is an RFC 5424 message as the test's parser reads it.
type message struct {
	pri                                         int
	timestamp, hostname, appName, procID, msgID string
	msg                                         string
}

// maxFrameLen bounds the MSG-LEN the parser believes, well above what a
// line can make.
const maxFrameLen = 1 << 20

// parseFrame reads one octet-counted frame (RFC 6587 3.4.1) from the
// front of b and returns its message and what follows it.
func parseFrame(b []byte) (message, []byte, error) {
	sp := bytes.IndexByte(b, ' ')
	if sp < 1 || sp > 7 {
		return message{}, nil, fmt.Errorf("no MSG-LEN in %.20q", b)
	}
	if b[0] == '0' {
		return message{}, nil, errors.New("MSG-LEN starts with 0")
	}
	n, err := strconv.Atoi(string(b[:sp]))
	if err != nil || n > maxFrameLen {
		return message{}, nil, fmt.Errorf("bad MSG-LEN %q", b[:sp])
	}
	rest := b[sp+1:]
	if n > len(rest) {
		return message{}, nil, fmt.Errorf("MSG-LEN %d, but %d bytes follow", n, len(rest))
	}
	m, err := parseMessage(rest[:n])
	return m, rest[n:], err
}

// parseMessage reads an RFC 5424 message whose STRUCTURED-DATA is the
// NILVALUE (all the encoder writes; the parser refuses any other).
func parseMessage(b []byte) (message, error) {
	var m message
	s := string(b)
	if !strings.HasPrefix(s, "<") {
		return m, errors.New("no PRI")
	}
	end := strings.IndexByte(s, '>')
	if end < 2 || end > 4 {
		return m, fmt.Errorf("bad PRI in %.20q", s)
	}
	pri, err := strconv.Atoi(s[1:end])
	if err != nil || pri > 191 || (s[1] == '0' && end > 2) {
		return m, fmt.Errorf("bad PRIVAL %q", s[1:end])
	}
	m.pri = pri
	s = s[end+1:]
	if !strings.HasPrefix(s, "1 ") {
		return m, errors.New("VERSION is not 1")
	}
	s = s[2:]
	fields := make([]string, 6) // TIMESTAMP HOSTNAME APP-NAME PROCID MSGID SD
	limits := []int{32, 255, 48, 128, 32, 1}
	for i := range fields {
		sp := strings.IndexByte(s, ' ')
		if sp < 0 {
			if i < len(fields)-1 {
				return m, fmt.Errorf("header ends after %d fields", i)
			}
			sp = len(s)
		}
		f := s[:sp]
		if f == "" || len(f) > limits[i] {
			return m, fmt.Errorf("header field %d: %q is empty or too long", i, f)
		}
		for j := 0; j < len(f); j++ {
			if f[j] < 33 || f[j] > 126 {
				return m, fmt.Errorf("header field %d: %q is not printable US-ASCII", i, f)
			}
		}
		fields[i] = f
		s = s[sp:]
		if i < len(fields)-1 {
			s = s[1:]
		}
	}
	if fields[5] != "-" {
		return m, fmt.Errorf("STRUCTURED-DATA %q", fields[5])
	}
	if ts := fields[0]; ts != "-" {
		_, err := time.Parse(time.RFC3339Nano, ts)
		if frac := strings.TrimPrefix(ts[min(len(ts), 19):], "."); err != nil || len(strings.TrimRight(frac, "Z")) > 6 {
			return m, fmt.Errorf("TIMESTAMP %q: not RFC 3339 with at most 6 fractional digits (%v)", ts, err)
		}
	}
	m.timestamp, m.hostname, m.appName, m.procID, m.msgID = fields[0], fields[1], fields[2], fields[3], fields[4]
	if s != "" {
		if s[0] != ' ' {
			return m, errors.New("no SP before MSG")
		}
		m.msg = s[1:]
	}
	return m, nil
}

func TestAppendMessage(t *testing.T) {
	at := time.Date(2025, 6, 1, 12, 0, 0, 123456789, time.FixedZone("CEST", 2*3600))
	tests := []struct {
		name string
		line logaggregator.Line
		want string
	}{
		{
			name: "stdout of a web job",
			line: logaggregator.Line{Time: at, AppName: "example", ProcessType: "web", JobID: "host1-0f3c", Stream: "stdout", Data: "GET / 200\n"},
			want: "<14>1 2025-06-01T10:00:00.123456Z example web host1-0f3c - - GET / 200",
		},
		{
			name: "stderr of a one-off job",
			line: logaggregator.Line{Time: at, AppName: "example", JobID: "j", Stream: "stderr", Data: "boom"},
			want: "<11>1 2025-06-01T10:00:00.123456Z example app j - - boom",
		},
		{
			name: "nothing known but the line",
			line: logaggregator.Line{Data: "\n"},
			want: "<14>1 - flynn app - - - ",
		},
		{
			name: "fields not printable US-ASCII, and too long",
			line: logaggregator.Line{AppName: "my app", ProcessType: strings.Repeat("w", 60), JobID: "jöb\x00", Data: "héllo\r\n"},
			want: "<14>1 - my_app " + strings.Repeat("w", 48) + " j__b_ - - héllo\r",
		},
		{
			name: "a year RFC 3339 cannot write",
			line: logaggregator.Line{Time: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC), Data: "x"},
			want: "<14>1 - flynn app - - - x",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := string(appendMessage(nil, &tt.line)); got != tt.want {
				t.Errorf("appendMessage =\n%q, want\n%q", got, tt.want)
			}
			frame := appendFrame([]byte("before"), &tt.line)
			want := "before" + strconv.Itoa(len(tt.want)) + " " + tt.want
			if string(frame) != want {
				t.Errorf("appendFrame =\n%q, want\n%q", frame, want)
			}
		})
	}
}

// FuzzAppendFrame: any line makes a frame the parser reads back, whose
// fields say what the line said as far as RFC 5424 lets them.
func FuzzAppendFrame(f *testing.F) {
	f.Add("stdout", "example", "web", "host1-0f3c", "GET / 200\n", int64(1748779200), int64(123456789))
	f.Add("stderr", "", "", "", "", int64(0), int64(0))
	f.Add("x", "a b", "wéb", "\x00\x7f", "a\nb\n\n", int64(-62135596800), int64(1))
	f.Add("stdout", strings.Repeat("h", 300), strings.Repeat("a", 49), strings.Repeat("p", 129), "12 <14>1 fake frame", int64(253402300800), int64(0))
	f.Fuzz(func(t *testing.T, stream, appName, processType, jobID, data string, sec, nsec int64) {
		l := logaggregator.Line{Stream: stream, AppName: appName, ProcessType: processType, JobID: jobID, Data: data, Time: time.Unix(sec, nsec)}
		if sec == 0 && nsec == 0 {
			l.Time = time.Time{}
		}
		// Two frames back to back, after other bytes: each is read
		// back whole, and nothing is left.
		b := appendFrame(appendFrame([]byte("x"), &l), &l)
		if b[0] != 'x' {
			t.Fatalf("appendFrame changed what came before: %q", b)
		}
		rest := b[1:]
		for i := range 2 {
			var m message
			var err error
			if m, rest, err = parseFrame(rest); err != nil {
				t.Fatalf("frame %d of %q: %v", i, b, err)
			}
			checkMessage(t, &l, m)
		}
		if len(rest) != 0 {
			t.Fatalf("%d bytes left after two frames of %q", len(rest), b)
		}
	})
}

// checkMessage compares m with what RFC 5424 lets l become.
func checkMessage(t *testing.T, l *logaggregator.Line, m message) {
	t.Helper()
	wantPRI := priStdout
	if l.Stream == logaggregator.StreamStderr {
		wantPRI = priStderr
	}
	if m.pri != wantPRI {
		t.Errorf("PRI %d for stream %q, want %d", m.pri, l.Stream, wantPRI)
	}
	if want := strings.TrimSuffix(l.Data, "\n"); m.msg != want {
		t.Errorf("MSG %q, want %q", m.msg, want)
	}
	field := func(name, got, in, nilValue string, maxLen int) {
		t.Helper()
		switch {
		case in == "" && got != nilValue:
			t.Errorf("%s %q for an empty value, want %q", name, got, nilValue)
		case in != "" && len(got) != min(len(in), maxLen):
			t.Errorf("%s %q for %q: want %d bytes", name, got, in, min(len(in), maxLen))
		case in != "" && printable(in) && got != in[:len(got)]:
			t.Errorf("%s %q for %q: want it kept", name, got, in)
		}
	}
	field("HOSTNAME", m.hostname, l.AppName, "flynn", maxHostname)
	field("APP-NAME", m.appName, l.ProcessType, "app", maxAppName)
	field("PROCID", m.procID, l.JobID, "-", maxProcID)
	if m.msgID != "-" {
		t.Errorf("MSGID %q, want -", m.msgID)
	}
	utc := l.Time.UTC()
	if l.Time.IsZero() || utc.Year() < 0 || utc.Year() > 9999 {
		if m.timestamp != "-" {
			t.Errorf("TIMESTAMP %q for %v, want -", m.timestamp, l.Time)
		}
		return
	}
	got, err := time.Parse(time.RFC3339Nano, m.timestamp)
	want := time.Date(utc.Year(), utc.Month(), utc.Day(), utc.Hour(), utc.Minute(), utc.Second(), utc.Nanosecond()/1000*1000, time.UTC)
	if err != nil || !got.Equal(want) {
		t.Errorf("TIMESTAMP %q for %v: %v, want %v", m.timestamp, l.Time, err, want)
	}
}

func printable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 33 || s[i] > 126 {
			return false
		}
	}
	return true
}

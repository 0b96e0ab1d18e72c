package cmdlinetest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"

	"github.com/openflynn/flynn/pkg/cmdline"
)

// config is the test daemon's Config.
type config struct{ N int }

// daemon has one flag, --n (FLYNN_N), and refuses a negative one. Its Run
// fails, so that a test sees if the real one runs.
func daemon() cmdline.Daemon[config] {
	return cmdline.Daemon[config]{
		Name:  "testd",
		Flags: []cli.Flag{cmdline.Int("n", 1, "a count")},
		Config: func(c *cli.Context, _ *slog.Logger) (config, error) {
			n := c.Int("n")
			if n < 0 {
				return config{}, fmt.Errorf("--n must not be negative, not %d", n)
			}
			return config{N: n}, nil
		},
		Run: func(context.Context, config, *slog.Logger) error { return errors.New("the real Run ran") },
	}
}

func TestParse(t *testing.T) {
	tests := []struct {
		name    string
		machine map[string]string // the environment before the run
		cmd     Command[config]
		env     map[string]string
		args    []string
		want    Result[config] // Output: a part of it
	}{
		{
			name: "defaults",
			cmd:  Command[config]{Daemon: daemon, Unset: []string{"FLYNN_N"}},
			want: Result[config]{Config: config{N: 1}, Ran: true},
		},
		{
			name: "a flag",
			cmd:  Command[config]{Daemon: daemon, Unset: []string{"FLYNN_N"}},
			args: []string{"--n", "3"},
			want: Result[config]{Config: config{N: 3}, Ran: true},
		},
		{
			name: "the run's environment",
			cmd:  Command[config]{Daemon: daemon},
			env:  map[string]string{"FLYNN_N": "4"},
			want: Result[config]{Config: config{N: 4}, Ran: true},
		},
		{
			name: "arguments every run shares",
			cmd:  Command[config]{Daemon: daemon, Unset: []string{"FLYNN_N"}, Args: []string{"--n", "5"}},
			want: Result[config]{Config: config{N: 5}, Ran: true},
		},
		{
			name: "the run's environment wins over the shared",
			cmd:  Command[config]{Daemon: daemon, Env: map[string]string{"FLYNN_N": "7"}},
			env:  map[string]string{"FLYNN_N": "8"},
			want: Result[config]{Config: config{N: 8}, Ran: true},
		},
		{
			name:    "the machine's environment",
			machine: map[string]string{"FLYNN_N": "9"},
			cmd:     Command[config]{Daemon: daemon},
			want:    Result[config]{Config: config{N: 9}, Ran: true},
		},
		{
			name:    "the machine's environment, unset",
			machine: map[string]string{"FLYNN_N": "9"},
			cmd:     Command[config]{Daemon: daemon, Unset: []string{"FLYNN_N"}},
			want:    Result[config]{Config: config{N: 1}, Ran: true},
		},
		{
			name: "a refusal",
			cmd:  Command[config]{Daemon: daemon},
			args: []string{"--n", "-1"},
			want: Result[config]{Code: 2, Output: "testd: --n must not be negative, not -1 (see --help)"},
		},
		{
			name: "an unknown flag",
			cmd:  Command[config]{Daemon: daemon},
			args: []string{"--m", "1"},
			want: Result[config]{Code: 2, Output: "flag provided but not defined"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for k, v := range tt.machine {
				t.Setenv(k, v)
			}
			got := tt.cmd.Parse(t, tt.env, tt.args...)
			if got.Config != tt.want.Config || got.Ran != tt.want.Ran || got.Code != tt.want.Code || !strings.Contains(got.Output, tt.want.Output) {
				t.Errorf("Parse = %+v, want %+v", got, tt.want)
			}
		})
	}
}

// fakeT is a testing.TB whose Fatalf records the failure and ends its
// goroutine, as testing's does; the rest is the real test's.
type fakeT struct {
	testing.TB
	failure string
}

func (f *fakeT) Fatalf(format string, args ...any) {
	f.failure = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

// failure returns what check made its testing.TB fail with, "" if nothing.
func failure(t *testing.T, check func(testing.TB)) string {
	ft := &fakeT{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		check(ft)
	}()
	<-done
	return ft.failure
}

func TestAcceptedRefused(t *testing.T) {
	cmd := Command[config]{Daemon: daemon, Unset: []string{"FLYNN_N"}}
	tests := []struct {
		name  string
		check func(testing.TB)
		fails string // a part of the failure; "" for none
	}{
		{
			name: "accepted",
			check: func(t testing.TB) {
				if got := cmd.Accepted(t, map[string]string{"FLYNN_N": "2"}); got.N != 2 {
					t.Fatalf("Accepted = %+v, want N 2", got)
				}
			},
		},
		{name: "refused", check: func(t testing.TB) { cmd.Refused(t, nil, "must not be negative", "--n", "-1") }},
		{name: "accepted, but refused", check: func(t testing.TB) { cmd.Accepted(t, nil, "--n", "-1") }, fails: "want it to run and exit 0"},
		{name: "refused, but accepted", check: func(t testing.TB) { cmd.Refused(t, nil, "must not be negative") }, fails: "exit 0, ran true"},
		{name: "refused, saying something else", check: func(t testing.TB) { cmd.Refused(t, nil, "too big", "--n", "-1") }, fails: `saying "too big"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := failure(t, tt.check)
			if tt.fails == "" && got != "" || !strings.Contains(got, tt.fails) {
				t.Errorf("failure %q, want one with %q", got, tt.fails)
			}
		})
	}
}

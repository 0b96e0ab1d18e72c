package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// table writes aligned columns for people.
type table struct {
	w   io.Writer
	buf bytes.Buffer
	tw  *tabwriter.Writer
}

func newTable(w io.Writer, header ...string) *table {
	t := &table{w: w}
	t.tw = tabwriter.NewWriter(&t.buf, 0, 8, 2, ' ', 0)
	t.row(header...)
	return t
}

// newFields writes "Name:  value" lines under a "=== title" line.
func newFields(w io.Writer, title string) *table {
	fmt.Fprintln(w, "=== "+title)
	t := &table{w: w}
	t.tw = tabwriter.NewWriter(&t.buf, 0, 8, 1, ' ', 0)
	return t
}

func (t *table) row(cols ...string) { fmt.Fprintln(t.tw, strings.Join(cols, "\t")) }

// flush writes the table, without the padding an empty last column
// leaves.
func (t *table) flush() error {
	if err := t.tw.Flush(); err != nil {
		return err
	}
	lines := strings.SplitAfter(t.buf.String(), "\n")
	for i, l := range lines {
		if strings.HasSuffix(l, "\n") {
			lines[i] = strings.TrimRight(l[:len(l)-1], " ") + "\n"
		}
	}
	_, err := io.WriteString(t.w, strings.Join(lines, ""))
	return err
}

// writeJSON writes v indented, for scripts.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// age is how long ago t was, in the largest unit that fits ("45s", "3m",
// "5h", "12d").
func age(now, t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	d := max(now.Sub(t), 0)
	switch {
	case d < time.Minute:
		return strconv.Itoa(int(d/time.Second)) + "s"
	case d < time.Hour:
		return strconv.Itoa(int(d/time.Minute)) + "m"
	case d < 48*time.Hour:
		return strconv.Itoa(int(d/time.Hour)) + "h"
	default:
		return strconv.Itoa(int(d/(24*time.Hour))) + "d"
	}
}

// processCounts formats a formation as "web=3 worker=1", sorted by type.
func processCounts(p map[string]int) string {
	if len(p) == 0 {
		return "(none)"
	}
	parts := make([]string, 0, len(p))
	for _, t := range slices.Sorted(maps.Keys(p)) {
		parts = append(parts, t+"="+strconv.Itoa(p[t]))
	}
	return strings.Join(parts, " ")
}

// orDash keeps empty table cells visible.
func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

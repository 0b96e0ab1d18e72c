package ports

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
)

// ReservedPortsPath is where Linux keeps the ports it never hands out as
// the ephemeral (source) port of an outgoing connection.
const ReservedPortsPath = "/proc/sys/net/ipv4/ip_local_reserved_ports"

// KeepFromEphemeral adds [lo, hi] to the kernel's reserved ports in the file at
// path (ReservedPortsPath), keeping those reserved already. A job port
// range inside the ephemeral range (Linux's is 32768-60999; Flynn's
// ranges start at 55000) is otherwise the source port of any outgoing
// connection on the machine: the router's to its backends, a browser's to
// the router. A job whose port such a connection holds fails to start
// with "address already in use", which no check before the start can see
// coming. Reserved ports can still be listened on.
func KeepFromEphemeral(path string, lo, hi int) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("reserve ports %d-%d: %w", lo, hi, err)
	}
	ranges, err := parseList(strings.TrimSpace(string(b)))
	if err != nil {
		return fmt.Errorf("reserve ports: %s: %w", path, err)
	}
	for _, r := range ranges {
		if r[0] <= lo && hi <= r[1] {
			return nil // reserved already
		}
	}
	ranges = append(ranges, [2]int{lo, hi})
	slices.SortFunc(ranges, func(a, b [2]int) int { return a[0] - b[0] })
	parts := make([]string, len(ranges))
	for i, r := range ranges {
		parts[i] = strconv.Itoa(r[0])
		if r[1] != r[0] {
			parts[i] += "-" + strconv.Itoa(r[1])
		}
	}
	if err := os.WriteFile(path, []byte(strings.Join(parts, ",")+"\n"), 0o644); err != nil {
		return fmt.Errorf("reserve ports %d-%d: %w", lo, hi, err)
	}
	return nil
}

// parseList reads the kernel's list: "" or "8080,55000-55999".
func parseList(s string) ([][2]int, error) {
	var out [][2]int
	if s == "" {
		return out, nil
	}
	for _, part := range strings.Split(s, ",") {
		a, b, isRange := strings.Cut(strings.TrimSpace(part), "-")
		lo, err := strconv.Atoi(a)
		if err != nil {
			return nil, fmt.Errorf("reserved ports %q: %w", s, err)
		}
		hi := lo
		if isRange {
			if hi, err = strconv.Atoi(b); err != nil {
				return nil, fmt.Errorf("reserved ports %q: %w", s, err)
			}
		}
		out = append(out, [2]int{lo, hi})
	}
	return out, nil
}

#!/usr/bin/env python3
"""The numbers of test/bench/router/run (python3 standard library only).

    results.py wrk FILE
        Reads one wrk --latency output and prints one tab-separated line:
        requests seconds req/s p50_ms p99_ms connect read write timeout non2xx

    results.py report TSV REFERENCE PEER...
        Reads the per-round results the run wrote and prints, on stdout, the
        table (medians over rounds, and the medians of the per-round ratios
        to REFERENCE) and the goal block of each router peer.

Ratios are taken within a round, between measurements made minutes apart
at most, and only then summarised, so a machine that drifts between rounds
moves both sides of a ratio together.
"""

import csv
import re
import statistics
import sys

# What the goal is judged on (issue 21). The run's default matrix measures
# exactly these cells; a run without them says so instead of passing.
GOAL_SIZES = ("13B", "100KB")
GOAL_SCHEMES = ("http", "https")
GOAL_CONNS = "64"
GOAL_BODY = "length"
GOAL_ROUNDS = 5
GOAL_RPS_MIN = 1.0
GOAL_P99_MAX = 1.1
GOAL_CPU_MAX = 1.1

_TIME_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0, "h": 3600000.0}


def _ms(value, unit):
    return float(value) * _TIME_UNITS_MS[unit]


def parse_wrk(text):
    """Returns the fields of one wrk --latency output, failing if it lacks any."""

    def find(pattern):
        m = re.search(pattern, text, re.MULTILINE)
        if not m:
            raise ValueError(f"wrk output lacks {pattern!r}")
        return m

    done = find(r"^\s*(\d+) requests in ([\d.]+)(us|ms|s|m|h),")
    rps = find(r"^Requests/sec:\s+([\d.]+)")
    p50 = find(r"^\s+50%\s+([\d.]+)(us|ms|s|m|h)\b")
    p99 = find(r"^\s+99%\s+([\d.]+)(us|ms|s|m|h)\b")
    # wrk prints these two lines only when a count is not zero.
    sock = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text
    )
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    return [
        done.group(1),
        f"{_ms(done.group(2), done.group(3)) / 1000:.3f}",
        rps.group(1),
        f"{_ms(*p50.groups()):.3f}",
        f"{_ms(*p99.groups()):.3f}",
        *(sock.groups() if sock else ("0", "0", "0", "0")),
        non2xx.group(1) if non2xx else "0",
    ]


def _median(values):
    return statistics.median(values) if values else None


def _fmt(value, spec, width):
    return f"{'-':>{width}}" if value is None else f"{value:>{width}{spec}}"


def _ratio(a, b):
    return a / b if b else None


def report(tsv, reference, peers, out=sys.stdout):
    """Prints the table and the goal blocks; returns the number of failed measurements."""
    with open(tsv, newline="") as f:
        # The run's header lines, "# ...", say what the numbers mean.
        rows = list(csv.DictReader((l for l in f if not l.startswith("#")), delimiter="\t"))
    cells = []  # in the order the run measured them
    by_key = {}
    rounds = set()
    failed = 0
    for row in rows:
        cell = (row["size"], row["scheme"], row["conns"], row["body"])
        if cell not in cells:
            cells.append(cell)
        rounds.add(row["round"])
        if row["status"] != "ok":
            failed += 1
            continue
        by_key[(row["round"], cell, row["peer"])] = {
            "rps": float(row["rps"]),
            "p50": float(row["p50_ms"]),
            "p99": float(row["p99_ms"]),
            "cpu": float(row["cpu_us_per_req"]),
        }
    rounds = sorted(rounds, key=int)

    summary = {}  # (cell, peer) -> medians
    for cell in cells:
        for peer in peers:
            got = [by_key[(r, cell, peer)] for r in rounds if (r, cell, peer) in by_key]
            ref = [
                (by_key[(r, cell, peer)], by_key[(r, cell, reference)])
                for r in rounds
                if (r, cell, peer) in by_key and (r, cell, reference) in by_key
            ]
            s = {k: _median([g[k] for g in got]) for k in ("rps", "p50", "p99", "cpu")}
            for k in ("rps", "p99", "cpu"):
                ratios = [_ratio(p[k], q[k]) for p, q in ref]
                s[k + "_x"] = _median([x for x in ratios if x is not None])
            s["n"] = len(got)
            summary[(cell, peer)] = s

    pw = max(len(p) for p in peers)
    print(
        f"medians over {len(rounds)} round(s); x: median of the per-round ratio to {reference}",
        file=out,
    )
    header = (
        f"{'size':<5} {'scheme':<6} {'conns':>5} {'body':<7} {'peer':<{pw}} "
        f"{'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'CPU µs/req':>10} "
        f"{'req/s x':>7} {'p99 x':>6} {'CPU x':>6} {'rounds':>6}"
    )
    print(header, file=out)
    print("-" * len(header), file=out)
    for cell in cells:
        for peer in peers:
            s = summary[(cell, peer)]
            size, scheme, conns, body = cell
            print(
                f"{size:<5} {scheme:<6} {conns:>5} {body:<7} {peer:<{pw}} "
                f"{_fmt(s['rps'], '.0f', 9)} {_fmt(s['p50'], '.3f', 8)} {_fmt(s['p99'], '.3f', 8)} "
                f"{_fmt(s['cpu'], '.1f', 10)} {_fmt(s['rps_x'], '.2f', 7)} "
                f"{_fmt(s['p99_x'], '.2f', 6)} {_fmt(s['cpu_x'], '.2f', 6)} "
                f"{s['n']:>3}/{len(rounds)}",
                file=out,
            )
        print(file=out)

    print(
        f"goal: median over {GOAL_ROUNDS} interleaved rounds: >= {GOAL_RPS_MIN:.1f}x {reference}'s "
        f"req/s for 13 B and 100 KB at <= {GOAL_P99_MAX:.1f}x its p99, over HTTP and HTTPS "
        f"({GOAL_CONNS} connections, Content-Length bodies); CPU per request "
        f"<= {GOAL_CPU_MAX:.1f}x {reference}'s.",
        file=out,
    )
    if len(rounds) < GOAL_ROUNDS:
        print(
            f"(this run has {len(rounds)} round(s), not {GOAL_ROUNDS}: indicative only)",
            file=out,
        )
    goal_cells = [
        (size, scheme, GOAL_CONNS, GOAL_BODY) for size in GOAL_SIZES for scheme in GOAL_SCHEMES
    ]
    for peer in (p for p in peers if p.startswith("router")):
        lines, misses = [], 0
        for cell in goal_cells:
            s = summary.get((cell, peer))
            label = f"  {cell[0]:<5} {cell[1]:<5}"
            if s is None or s["rps_x"] is None:
                lines.append(f"{label} not measured")
                misses += 3
                continue
            checks = [
                ("req/s", s["rps_x"], ">=", GOAL_RPS_MIN, s["rps_x"] >= GOAL_RPS_MIN),
                ("p99", s["p99_x"], "<=", GOAL_P99_MAX, s["p99_x"] <= GOAL_P99_MAX),
                ("CPU/req", s["cpu_x"], "<=", GOAL_CPU_MAX, s["cpu_x"] <= GOAL_CPU_MAX),
            ]
            parts = []
            for name, x, op, bound, ok in checks:
                misses += not ok
                parts.append(f"{name} {x:.3f}x {op} {bound:.2f} {'met' if ok else 'NOT MET':<7}")
            lines.append(
                f"{label} " + "   ".join(parts)
                + f"   ({s['rps']:.0f} req/s, p99 {s['p99']:.3f} ms, {s['cpu']:.1f} µs/req)"
            )
        verdict = "met" if misses == 0 else f"NOT MET ({misses} of {3 * len(goal_cells)} checks)"
        print(f"{peer}: goal {verdict}", file=out)
        for line in lines:
            print(line, file=out)
    return failed


def main(argv):
    if len(argv) == 3 and argv[1] == "wrk":
        with open(argv[2]) as f:
            print("\t".join(parse_wrk(f.read())))
        return 0
    if len(argv) >= 5 and argv[1] == "report":
        failed = report(argv[2], argv[3], argv[4:])
        if failed:
            print(f"{failed} measurement(s) failed: see FAIL rows in {argv[2]}", file=sys.stderr)
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))

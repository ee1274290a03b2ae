"""wrk (Debian's HTTP load generator) for the benches: the Lua ``done`` hook that prints one
RESULT line, and one run read back from it."""

from __future__ import annotations

import re
import subprocess

# appended to a bench's Lua script (it has no braces: the scripts go through str.format)
DONE_LUA = """
done = function(summary, latency, requests)
  io.write(string.format("RESULT %d %d %d %d %d %d %d\\n", summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(99), summary.errors.status, summary.errors.connect
    + summary.errors.read + summary.errors.write, summary.errors.timeout))
end
"""
_RESULT = re.compile(r"RESULT (\d+) (\d+) (\d+) (\d+) (\d+) (\d+) (\d+)")


def run(url: str, script, seconds: float, connections: int, threads: int = 2) -> dict:
    """One wrk run of ``script`` against ``url``: requests, requests/s, p50 and p99 in seconds,
    and errors (non-2xx/3xx answers, socket errors and timeouts added up)."""
    done = subprocess.run(
        ["wrk", f"-t{threads}", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--timeout", "10s"]
        + ["-s", str(script), url],
        capture_output=True,
        text=True,
    )
    m = _RESULT.search(done.stdout)
    if done.returncode or not m:
        raise SystemExit(f"wrk failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    n, dur_us, p50, p99, status_err, sock_err, timeouts = map(int, m.groups())
    return {
        "requests": n,
        "rps": n / (dur_us / 1e6),
        "p50": p50 / 1e6,
        "p99": p99 / 1e6,
        "errors": status_err + sock_err + timeouts,
    }

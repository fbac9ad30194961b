"""``wrk`` driving the ingress with validly signed, distinct generic events.

wrk's Lua cannot compute an HMAC, so the bodies are signed beforehand: a pool of distinct
events (one call each) with a fresh timestamp is written to a file that the script loads
into pre-formatted requests at start; each request takes the next one (the pool wraps only
if a run sends more requests than it holds, which the result says). Paced runs use wrk's
``delay()`` with a monotonic clock (LuaJIT's ffi) to hold a fixed offered rate; like wrk
(not wrk2, which Debian does not ship) the latency is measured from the actual send, so it
understates waits once the server falls behind the offered rate.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import zlib
from dataclasses import dataclass
from pathlib import Path

from bench.callers import signed_pool
from bench.common import SECRET

LUA = r"""
local requests_ = {}
local count = 0
local i = 0

function init(args)
  local f = assert(io.open(args[1], "r"))
  local ts = f:read("*l")
  for line in f:lines() do
    local tab = line:find("\t", 1, true)
    count = count + 1
    requests_[count] = wrk.format("POST", "/webhooks/generic", {
      ["Content-Type"] = "application/json",
      ["X-Callbridge-Timestamp"] = ts,
      ["X-Callbridge-Signature"] = line:sub(1, tab - 1),
    }, line:sub(tab + 1))
  end
  f:close()
  init_pacing(tonumber(args[2] or "0") or 0)
end

function request()
  i = i + 1
  if i > count then i = 1 end
  return requests_[i]
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRK_JSON {"requests":%d,"duration_us":%d,"connect":%d,"read":%d,"write":%d,' ..
    '"status":%d,"timeout":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d,"mean_us":%.1f}\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    latency.mean))
end
"""

UNPACED = "function init_pacing(rate) end\n"

PACED = r"""
local ffi = require("ffi")
ffi.cdef[[
typedef struct { long tv_sec; long tv_nsec; } cb_timespec;
int clock_gettime(int clk_id, cb_timespec *tp);
]]
local tspec = ffi.new("cb_timespec")
local function now_ms()
  ffi.C.clock_gettime(1, tspec)  -- CLOCK_MONOTONIC
  return tonumber(tspec.tv_sec) * 1000 + tonumber(tspec.tv_nsec) / 1000000
end
local interval = 0
local next_at = nil

function init_pacing(rate)
  interval = 1000 / rate
end

-- one schedule for the thread: each request takes the next slot, so the offered rate
-- holds whatever the connections' latency (as long as one of them is free)
function delay()
  local t = now_ms()
  if next_at == nil then next_at = t end
  local d = next_at - t
  next_at = next_at + interval
  if d < 0 then return 0 end
  return d
end
"""


@dataclass
class WrkResult:
    connections: int
    seconds: float
    requests: int
    rps: float
    non2xx: int
    socket_errors: int
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    pool: int
    offered_rps: float | None = None
    server_cpu_ms_per_req: float | None = None

    @property
    def wrapped(self) -> bool:
        return self.requests > self.pool

    def as_json(self) -> dict[str, float | int | None]:
        return {
            "connections": self.connections,
            "seconds": self.seconds,
            "requests": self.requests,
            "rps": round(self.rps, 1),
            "non2xx": self.non2xx,
            "socket_errors": self.socket_errors,
            "p50_ms": round(self.p50_ms, 2),
            "p90_ms": round(self.p90_ms, 2),
            "p99_ms": round(self.p99_ms, 2),
            "max_ms": round(self.max_ms, 2),
            "offered_rps": self.offered_rps,
            "server_cpu_ms_per_req": self.server_cpu_ms_per_req,
        }


def wrk_path() -> str:
    path = shutil.which("wrk")
    if path is None:
        raise RuntimeError("wrk is not installed: `make bench` installs it (apt-get install wrk)")
    return path


def run_wrk(
    url: str,
    workdir: Path,
    *,
    connections: int,
    seconds: float,
    rate: float | None = None,
    expected_rps: float = 8000.0,
    tag: str = "run",
) -> WrkResult:
    """One wrk run against ``url`` (base URL) with a fresh pool of signed events."""
    workdir.mkdir(parents=True, exist_ok=True)
    size = int((rate or expected_rps) * seconds * 1.2) + 1000
    ts = int(time.time())
    pool = signed_pool(f"{tag}-{ts}", size, seed=zlib.crc32(tag.encode()), secret=SECRET, ts=ts)
    pool_file = workdir / f"pool-{tag}.txt"
    with pool_file.open("wb") as f:
        f.write(f"{ts}\n".encode())
        for sig, body in pool:
            f.write(sig.encode() + b"\t" + body + b"\n")
    script = workdir / f"wrk-{tag}.lua"
    script.write_text(LUA + (PACED if rate else UNPACED))
    cmd = [
        wrk_path(),
        "-t1",
        f"-c{connections}",
        f"-d{max(1, round(seconds))}s",
        "--timeout",
        "10s",
        "-s",
        str(script),
        url + "/webhooks/generic",
        "--",
        str(pool_file),
        str(rate or 0),
    ]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60, check=False)
    pool_file.unlink(missing_ok=True)
    line = next((x for x in out.stdout.splitlines() if x.startswith("WRK_JSON ")), None)
    if line is None:
        raise RuntimeError(
            f"wrk failed ({out.returncode}): {out.stdout[-800:]} {out.stderr[-800:]}"
        )
    data = json.loads(line.removeprefix("WRK_JSON "))
    duration = data["duration_us"] / 1e6
    return WrkResult(
        connections=connections,
        seconds=duration,
        requests=data["requests"],
        rps=data["requests"] / duration if duration else 0.0,
        non2xx=data["status"],
        socket_errors=data["connect"] + data["read"] + data["write"] + data["timeout"],
        p50_ms=data["p50_us"] / 1000,
        p90_ms=data["p90_us"] / 1000,
        p99_ms=data["p99_us"] / 1000,
        max_ms=data["max_us"] / 1000,
        pool=len(pool),
        offered_rps=rate,
    )

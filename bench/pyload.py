"""A Python load generator for bench/run.py: the violation writes, and every load when wrk is missing.

Same output as the wrk scripts. Unlike wrk, a client sends nothing after the deadline but waits for
the answer in flight, so every request sent is counted (the writes check 201s against new rows).

Run as its own process: the load never shares an interpreter with the server or with run.py's
measurements. `--processes` processes each run `connections / processes` threads, one keep-alive
HTTP connection per thread, for `--duration` seconds; the parent merges their latencies and prints
one line `BENCH_JSON {...}` like bench/get_random.lua and bench/post_violations.lua.

    python bench/pyload.py get --paths FILE [--key KEY] [--port 8100] [--connections 8] [--duration 15]
    python bench/pyload.py violations --people FILE [--key KEY] [--path /floor/write] \
        --prefix P --decided DATE
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing as mp
import random
import threading
import time


def _lines(path: str) -> list[str]:
    with open(path, encoding="utf-8") as handle:
        return [line.strip() for line in handle if line.strip()]


def _worker(args: argparse.Namespace, proc: int, queue: mp.Queue) -> None:
    lines = _lines(args.paths if args.mode == "get" else args.people)

    def share(q: int) -> int:
        return args.connections // args.processes + (q < args.connections % args.processes)

    per_proc = share(proc)
    offset = sum(share(q) for q in range(proc))
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    errors = [0]
    lock = threading.Lock()
    began = time.time()
    deadline = time.perf_counter() + args.duration
    headers = {"Content-Type": "application/json"}
    if args.key:  # none for the floor
        headers["Authorization"] = f"Bearer {args.key}"

    def client(tid: int) -> None:
        rng = random.Random(proc * 1000 + tid + time.time_ns())
        conn = http.client.HTTPConnection(args.host, args.port, timeout=10)
        mine: list[float] = []
        seen: dict[int, int] = {}
        n = 0
        # a client number 1..connections over every process: disjoint people, distinct case_refs
        cid = offset + tid + 1
        while time.perf_counter() < deadline:
            n += 1
            if args.mode == "get":
                method, path, body = "GET", lines[rng.randrange(len(lines))], None
            else:
                code, inst, occurred = lines[((n - 1) * args.connections + cid - 1) % len(lines)].split()
                method, path = "POST", args.path
                body = json.dumps(
                    {
                        "case_ref": f"{args.prefix}-{cid}-{n}",
                        "practitioner_code": code,
                        "institution_code": inst,
                        "behaviour_code": "B1-01",
                        "responsibility": "general",
                        "occurred_on": occurred,
                        "decided_on": args.decided,
                    }
                )
            started = time.perf_counter()
            try:
                conn.request(method, path, body=body, headers=headers)
                response = conn.getresponse()
                response.read()
            except (OSError, http.client.HTTPException):
                conn.close()
                conn = http.client.HTTPConnection(args.host, args.port, timeout=10)
                with lock:
                    errors[0] += 1
                continue
            mine.append(time.perf_counter() - started)
            seen[response.status] = seen.get(response.status, 0) + 1
        conn.close()
        with lock:
            latencies.extend(mine)
            for status, count in seen.items():
                statuses[status] = statuses.get(status, 0) + count

    threads = [threading.Thread(target=client, args=(t,)) for t in range(per_proc)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    queue.put((latencies, statuses, errors[0], began, time.time()))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["get", "violations"])
    parser.add_argument("--paths")
    parser.add_argument("--people")
    parser.add_argument("--key", default="", help="an API key; none for the floor")
    parser.add_argument("--path", default="/v1/violations", help="where the violations mode POSTs")
    parser.add_argument("--prefix", default="BENCH")
    parser.add_argument("--decided")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8100)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--duration", type=float, default=15.0)
    args = parser.parse_args()
    args.processes = max(1, min(args.processes, args.connections))
    queue: mp.Queue = mp.get_context("spawn").Queue()
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_worker, args=(args, p, queue)) for p in range(args.processes)]
    for proc in procs:
        proc.start()
    results = [queue.get() for _ in procs]
    for proc in procs:
        proc.join()
    # from the first client's start to the last answer: every request sent has been answered
    elapsed = max(r[4] for r in results) - min(r[3] for r in results)
    latencies = sorted(x for r in results for x in r[0])
    statuses: dict[int, int] = {}
    for _, seen, *_ in results:
        for status, count in seen.items():
            statuses[status] = statuses.get(status, 0) + count
    errors = sum(r[2] for r in results)

    def pct(p: float) -> float:
        if not latencies:
            return 0.0
        return latencies[min(len(latencies) - 1, int(p / 100 * len(latencies)))] * 1e6

    out = {
        "requests": len(latencies),
        "duration_us": elapsed * 1e6,
        "errors_connect": 0,
        "errors_read": errors,
        "errors_write": 0,
        "errors_status": sum(c for s, c in statuses.items() if s >= 400),
        "errors_timeout": 0,
        "p50_us": pct(50),
        "p90_us": pct(90),
        "p99_us": pct(99),
        "mean_us": (sum(latencies) / len(latencies) * 1e6) if latencies else 0.0,
        "max_us": latencies[-1] * 1e6 if latencies else 0.0,
        "status_201": statuses.get(201, 0),
        "status_200": statuses.get(200, 0),
        "status_4xx": sum(c for s, c in statuses.items() if 400 <= s < 500),
        "status_5xx": sum(c for s, c in statuses.items() if s >= 500),
        "status_other": sum(c for s, c in statuses.items() if s not in (200, 201) and s < 400),
    }
    print("BENCH_JSON " + json.dumps(out), flush=True)


if __name__ == "__main__":
    main()

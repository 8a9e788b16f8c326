#!/usr/bin/env python
"""Bounded load test of the web API on this machine (loopback only).

Starts ``genderclass serve`` itself on a free loopback port (or uses ``--url`` of a server already
running on loopback), warms it up, then lets ``--concurrency`` clients post one photo to
``POST /api/v1/predict`` until ``--requests`` are done or ``--duration`` seconds have passed, whichever
comes first. Prints throughput, latency percentiles, errors and the server's resident memory (the
process and its children, from /proc) before and after, against the targets:
p95 <= 100 ms, no errors, RSS growth < 10 %.

    python scripts/loadtest.py                         # 5,000 requests, bundled model, 16 clients
    python scripts/loadtest.py --workers 2             # one server process per core
    python scripts/loadtest.py --requests 300 --model runs/face
    python scripts/loadtest.py --url http://127.0.0.1:8000 --pid 12345 --image photo.jpg
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlparse

LOOPBACK = {"127.0.0.1", "localhost", "::1"}
TARGET_P95_MS = 100.0
TARGET_RSS_GROWTH = 0.10


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--url", help="base URL of a running server on loopback (default: start one)")
    p.add_argument("--pid", type=int, help="with --url: the server's PID, to report its memory")
    p.add_argument("--requests", type=int, default=5000, help="stop after this many measured requests")
    p.add_argument("--duration", type=float, default=300.0, help="... or after this many seconds")
    p.add_argument("--concurrency", type=int, default=16, help="clients posting at the same time")
    p.add_argument("--warmup", type=int, default=50, help="requests before the measurement (not counted)")
    p.add_argument("--image", help="photo to post (default: a generated 640x480 JPEG)")
    p.add_argument("--no-face", action="store_true", help="generated photo without a face (slowest detection)")
    p.add_argument("--no-detect", action="store_true", help="send detect=false (classify the whole image)")
    p.add_argument("--model", help="started server: face model (default: bundled)")
    p.add_argument("--workers", type=int, default=1, help="started server: uvicorn worker processes")
    p.add_argument("--threads", type=int, default=0, help="started server: ONNX Runtime threads per worker")
    p.add_argument("--detect-max-side", type=int, help="started server: its --detect-max-side (default: its own)")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.add_argument("--strict", action="store_true", help="exit 1 if a target is missed")
    args = p.parse_args(argv)
    if args.requests < 1 or args.duration <= 0 or args.concurrency < 1:
        p.error("--requests, --duration and --concurrency must be positive")
    if args.requests > 100_000 or args.duration > 3600:
        p.error("bounded runs only: at most 100,000 requests and 3,600 s")
    if args.url:
        host = urlparse(args.url).hostname
        if host not in LOOPBACK:
            p.error(f"refusing to load-test {host!r}: only 127.0.0.1, localhost or ::1")
    return args


# ------------------------------------------------------------------------------------------ image
def generated_photo(face: bool = True) -> bytes:
    """A 640x480 JPEG: smooth gradients, shapes and noise, with a plain cartoon face in the middle
    that the face detector finds (``face=False``: none, the detector's slowest case)."""
    import cv2
    import numpy as np
    from PIL import Image

    y, x = np.mgrid[0:480, 0:640].astype(np.float32)
    rgb = np.stack([120 + 80 * np.sin(x / 57), 110 + 70 * np.cos(y / 43), 130 + 60 * np.sin((x + y) / 91)], axis=2)
    rng = np.random.default_rng(0)
    for _ in range(8):
        cx, cy, r = rng.uniform(0, 640), rng.uniform(0, 480), rng.uniform(20, 90)
        rgb[(x - cx) ** 2 + (y - cy) ** 2 < r**2] = rng.uniform(0, 255, 3)
    image = np.clip(rgb, 0, 255).astype(np.uint8)
    if face:
        cx, cy, s = 320, 240, 380
        cv2.ellipse(image, (cx, cy), (int(s * 0.28), int(s * 0.36)), 0, 0, 360, (215, 170, 140), -1)
        for side in (-1, 1):
            eye = (cx + side * int(s * 0.11), cy - int(s * 0.07))
            cv2.ellipse(image, eye, (int(s * 0.05), int(s * 0.025)), 0, 0, 360, (255, 255, 255), -1)
            cv2.circle(image, eye, int(s * 0.02), (20, 30, 40), -1)
            brow = cy - int(s * 0.14)
            cv2.line(image, (cx + side * int(s * 0.06), brow), (cx + side * int(s * 0.17), brow), (60, 50, 40), 5)
        cv2.line(image, (cx, cy - int(s * 0.03)), (cx, cy + int(s * 0.07)), (170, 120, 100), 5)
        cv2.ellipse(image, (cx, cy + int(s * 0.15)), (int(s * 0.08), int(s * 0.03)), 0, 0, 360, (170, 80, 80), -1)
        image = cv2.GaussianBlur(image, (0, 0), 2.5)
    image = np.clip(image + rng.normal(0, 4, image.shape), 0, 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


# ------------------------------------------------------------------------------------------ memory
def _children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with contextlib.suppress(OSError):
            found += [int(c) for c in (task / "children").read_text().split()]
    return found


def process_tree(pid: int) -> list[int]:
    found, stack = [], [pid]
    while stack:
        current = stack.pop()
        if current in found or not Path(f"/proc/{current}").exists():
            continue
        found.append(current)
        stack += _children(current)
    return found


def rss_mb(pid: int | None) -> float | None:
    """VmRSS of ``pid`` and all its descendants, in MB (None when unknown)."""
    if pid is None:
        return None
    total = 0
    for current in process_tree(pid):
        try:
            for line in Path(f"/proc/{current}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total / 1024.0


def cpu_seconds(pid: int | None) -> float | None:
    """User + system CPU time of ``pid`` and its descendants (live ones), in seconds."""
    if pid is None:
        return None
    ticks = 0
    for current in process_tree(pid):
        try:
            fields = Path(f"/proc/{current}/stat").read_text().rsplit(")", 1)[1].split()
            ticks += int(fields[11]) + int(fields[12])  # utime, stime
        except (OSError, IndexError, ValueError):
            continue
    return ticks / os.sysconf("SC_CLK_TCK")


# ------------------------------------------------------------------------------------------ server
def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(args: argparse.Namespace, log) -> tuple[subprocess.Popen, str]:
    import httpx

    port = free_port()
    cmd = [sys.executable, "-m", "genderclass.cli.main", "-q", "serve", "--host", "127.0.0.1", "--port", str(port)]
    cmd += ["--workers", str(args.workers)]
    if args.threads:
        cmd += ["--threads", str(args.threads)]
    if args.model:
        cmd += ["--model", args.model]
    if args.detect_max_side:
        cmd += ["--detect-max-side", str(args.detect_max_side)]
    process = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the server exited with code {process.returncode}; its log: {log.name}")
        try:
            if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                return process, url
        except httpx.HTTPError:
            pass
        time.sleep(0.25)
    stop_server(process)
    raise SystemExit("the server did not come up within 120 s")


def stop_server(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)  # its own session: the server and its workers only
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


# ------------------------------------------------------------------------------------------ load
def multipart_request(url: str, image: bytes, fields: dict[str, str]) -> bytes:
    """The whole ``POST /api/v1/predict`` request (headers + multipart body), built once."""
    boundary = "genderclass-loadtest-boundary"
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
        for name, value in fields.items()
    ]
    parts.append(
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="photo.jpg"\r\n'
        "Content-Type: image/jpeg\r\n\r\n".encode()
        + image
        + b"\r\n"
    )
    body = b"".join(parts) + f"--{boundary}--\r\n".encode()
    host = urlparse(url).netloc
    head = (
        f"POST /api/v1/predict HTTP/1.1\r\nHost: {host}\r\nContent-Type: multipart/form-data; boundary={boundary}\r\n"
        f"Content-Length: {len(body)}\r\nConnection: keep-alive\r\n\r\n"
    )
    return head.encode() + body


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    """One HTTP/1.1 response with a Content-Length body (what the server sends) -> (status, body)."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    length = next((int(v) for k, _, v in (ln.partition(":") for ln in lines[1:]) if k.lower() == "content-length"), 0)
    return status, await reader.readexactly(length)


async def run_load(url: str, image: bytes, args: argparse.Namespace, total: int, duration: float) -> dict:
    """``args.concurrency`` keep-alive connections, each posting the prebuilt request in a loop.
    Raw asyncio streams, so the load generator costs well under a millisecond of CPU per request
    and the server gets the machine's cores."""
    latencies: list[float] = []
    statuses: dict[str, int] = {}
    issued = 0
    deadline = time.monotonic() + duration
    request = multipart_request(url, image, {"detect": "false" if args.no_detect else "true"})
    parsed = urlparse(url)

    async def client() -> None:
        nonlocal issued
        reader = writer = None
        while issued < total and time.monotonic() < deadline:
            issued += 1
            started = time.perf_counter()
            try:
                if writer is None:
                    reader, writer = await asyncio.open_connection(parsed.hostname, parsed.port or 80)
                writer.write(request)
                status, body = await asyncio.wait_for(read_response(reader), timeout=60.0)
                if status != 200:
                    key = str(status)
                elif json.loads(body)["results"][0]["error"] is not None:
                    key = "200 with a file error"
                else:
                    key = "200"
            except (TimeoutError, OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError) as exc:
                key = type(exc).__name__
                if writer is not None:
                    writer.close()
                reader = writer = None
            latencies.append((time.perf_counter() - started) * 1000.0)
            statuses[key] = statuses.get(key, 0) + 1
        if writer is not None:
            writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(args.concurrency)))
    elapsed = time.perf_counter() - started
    return {"latencies": latencies, "statuses": statuses, "elapsed": elapsed}


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(q / 100.0 * (len(ordered) - 1))))
    return ordered[index]


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    image = Path(args.image).read_bytes() if args.image else generated_photo(face=not args.no_face)
    process = None
    log_path = Path(tempfile.mkdtemp(prefix="genderclass-loadtest-")) / "server.log"
    with open(log_path, "w") as log:
        try:
            if args.url:
                url, pid = args.url.rstrip("/"), args.pid
            else:
                process, url = start_server(args, log)
                pid = process.pid
            if args.warmup:
                asyncio.run(run_load(url, image, args, args.warmup, 120.0))
            rss_before, cpu_before, client_cpu_before = rss_mb(pid), cpu_seconds(pid), time.process_time()
            result = asyncio.run(run_load(url, image, args, args.requests, args.duration))
            rss_after, cpu_after, client_cpu = rss_mb(pid), cpu_seconds(pid), time.process_time() - client_cpu_before
        finally:
            if process is not None:
                stop_server(process)

    latencies = result["latencies"]
    n = len(latencies)
    errors = sum(count for status, count in result["statuses"].items() if status != "200")
    growth = (rss_after - rss_before) / rss_before if rss_before and rss_after else None
    summary = {
        "url": url,
        "requests": n,
        "concurrency": args.concurrency,
        "detect": not args.no_detect,
        "image": args.image or ("generated 640x480, no face" if args.no_face else "generated 640x480, one face"),
        "image_bytes": len(image),
        "seconds": round(result["elapsed"], 2),
        "req_per_s": round(n / result["elapsed"], 1) if result["elapsed"] else None,
        "latency_ms": {
            "mean": round(statistics.fmean(latencies), 1) if latencies else None,
            "p50": round(percentile(latencies, 50), 1),
            "p95": round(percentile(latencies, 95), 1),
            "p99": round(percentile(latencies, 99), 1),
            "max": round(max(latencies), 1) if latencies else None,
        },
        "cpu_ms_per_request": {
            "server": None if cpu_before is None else round(1000 * (cpu_after - cpu_before) / max(n, 1), 2),
            "load_generator": round(1000 * client_cpu / max(n, 1), 2),
        },
        "machine": {"cores": os.cpu_count(), "load_avg_1min": round(os.getloadavg()[0], 2)},
        "errors": errors,
        "statuses": result["statuses"],
        "server_rss_mb": {
            "before": None if rss_before is None else round(rss_before, 1),
            "after": None if rss_after is None else round(rss_after, 1),
            "growth_pct": None if growth is None else round(100 * growth, 1),
        },
    }
    checks = {
        f"p95 <= {TARGET_P95_MS:.0f} ms": summary["latency_ms"]["p95"] <= TARGET_P95_MS,
        "no errors": errors == 0,
        f"RSS growth < {100 * TARGET_RSS_GROWTH:.0f} %": growth is not None and growth < TARGET_RSS_GROWTH,
    }
    summary["targets_met"] = checks
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        lat = summary["latency_ms"]
        rss = summary["server_rss_mb"]
        print(f"{n} requests in {summary['seconds']} s with {args.concurrency} clients -> {summary['req_per_s']} req/s")
        print(f"latency ms: p50 {lat['p50']}  p95 {lat['p95']}  p99 {lat['p99']}  max {lat['max']}  mean {lat['mean']}")
        cpu = summary["cpu_ms_per_request"]
        print(f"CPU ms per request: server {cpu['server']}  load generator {cpu['load_generator']}")
        print(f"machine: {summary['machine']['cores']} cores, 1-min load average {summary['machine']['load_avg_1min']}")
        print(f"errors: {errors}  statuses: {result['statuses']}")
        print(f"server RSS MB: before {rss['before']}  after {rss['after']}  growth {rss['growth_pct']} %")
        for name, ok in checks.items():
            print(f"  [{'ok' if ok else 'MISSED'}] {name}")
    log_path.unlink()
    log_path.parent.rmdir()
    return 1 if args.strict and not all(checks.values()) else 0


if __name__ == "__main__":
    sys.exit(main())

"""Load generators in their own process: send HTTP requests all at once, time each answer.

With curl installed, `curl --parallel` sends them (C, so the client adds the least to
each figure); each request opens its own connection, as Slack's do, and its time is
curl's `time_total`, connecting included. Otherwise this module runs as the generator: it
runs apart from the benchmark's process so that neither the Slack fake's work nor the
generator's own bookkeeping is counted as tocsin's time to ack, and it speaks HTTP/1.1
over plain asyncio streams to keep its own overhead small. Each request goes over its own
connection, as Slack's do. With `connect_first`, every connection is opened before the
burst (the time then starts at the first byte of the request); otherwise the time
includes connecting, as a cold Slack delivery would.

Input on stdin (JSON): {"url": ..., "connect_first": bool, "requests": [[method, path,
headers, body], ...]}. Output on stdout (JSON): [[seconds, status], ...] in order,
status 0 when no answer came.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import sys
import tempfile
import time
import urllib.parse
from typing import Any

TIMEOUT = 30.0


def encode(host: str, method: str, path: str, headers: dict[str, str], body: str) -> bytes:
    data = body.encode()
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}", "Connection: close"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    if method == "POST":
        lines.append(f"Content-Length: {len(data)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + data


async def status_of(reader: asyncio.StreamReader) -> int:
    """The status code; the rest of the answer is read so the server finishes cleanly."""
    head = await reader.readline()
    await reader.read()
    parts = head.split()
    return int(parts[1]) if len(parts) > 1 else 0


async def fire(url: str, requests: list[list[Any]], connect_first: bool) -> list[list[float]]:
    address = urllib.parse.urlsplit(url)
    host, port = address.hostname or "127.0.0.1", address.port or 80
    raw = [encode(f"{host}:{port}", *request) for request in requests]
    opened: list[tuple[asyncio.StreamReader, asyncio.StreamWriter] | None] = [None] * len(raw)
    if connect_first:
        opened = list(await asyncio.gather(*(asyncio.open_connection(host, port) for _ in raw)))
    go = asyncio.Event()

    async def one(n: int) -> list[float]:
        await go.wait()
        began = time.perf_counter()
        try:
            async with asyncio.timeout(TIMEOUT):
                reader, writer = opened[n] or await asyncio.open_connection(host, port)
                writer.write(raw[n])
                status = await status_of(reader)
                elapsed = time.perf_counter() - began
                writer.close()
                return [elapsed, float(status)]
        except (OSError, TimeoutError):
            return [time.perf_counter() - began, 0.0]

    tasks = [asyncio.create_task(one(n)) for n in range(len(raw))]
    await asyncio.sleep(0)
    go.set()
    return list(await asyncio.gather(*tasks))


def curl_entry(n: int, url: str, method: str, headers: dict[str, str], body: str) -> str:
    """One request of a curl config file; bodies are form-encoded, so never hold quotes."""
    lines = [f'url = "{url}"', 'output = "/dev/null"']
    lines.append(f'write-out = "{n} %{{time_total}} %{{http_code}}\\n"')
    lines += [f'header = "{name}: {value}"' for name, value in headers.items()]
    if method == "POST":
        lines.append(f'data-binary = "{body}"')
    return "\n".join(lines)


async def fire_with_curl(
    url: str, requests: list[tuple[str, str, dict[str, str], str]]
) -> list[tuple[float, int]]:
    base = urllib.parse.urlsplit(url)
    entries = [
        curl_entry(n, f"{base.scheme}://{base.netloc}{path}", method, headers, body)
        for n, (method, path, headers, body) in enumerate(requests)
    ]
    with tempfile.NamedTemporaryFile("w", suffix=".curl") as config:
        config.write("\nnext\n".join(entries) + "\n")
        config.flush()
        child = await asyncio.create_subprocess_exec(
            "curl",
            "--silent",
            "--parallel",
            "--parallel-immediate",
            "--parallel-max",
            str(max(1, len(requests))),
            "--max-time",
            f"{TIMEOUT:.0f}",
            "--config",
            config.name,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await child.communicate()
    if child.returncode not in (0, 7, 28, 52, 56):  # connect, timeout, empty, recv: kept as 0
        raise RuntimeError(f"curl failed ({child.returncode}): {err.decode()[-500:]}")
    timings = [(TIMEOUT, 0)] * len(requests)
    for line in out.decode().splitlines():
        n, seconds, status = line.split()
        timings[int(n)] = (float(seconds), int(status))
    return timings


def client_name() -> str:
    return "curl --parallel" if shutil.which("curl") else "python asyncio streams"


async def send_all(
    url: str, requests: list[tuple[str, str, dict[str, str], str]], connect_first: bool = False
) -> list[tuple[float, int]]:
    """Send every request at once from a separate process; (seconds, status) for each."""
    if shutil.which("curl") and not connect_first:
        return await fire_with_curl(url, requests)
    return await fire_in_child(url, requests, connect_first)


async def fire_in_child(
    url: str, requests: list[tuple[str, str, dict[str, str], str]], connect_first: bool
) -> list[tuple[float, int]]:
    """Run this module as a child process and return its timings."""
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        __file__,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    order = {"url": url, "connect_first": connect_first, "requests": requests}
    out, _ = await child.communicate(json.dumps(order).encode())
    if child.returncode != 0:
        raise RuntimeError(f"the load generator failed with exit code {child.returncode}")
    return [(float(seconds), int(status)) for seconds, status in json.loads(out)]


def main() -> None:
    order = json.load(sys.stdin)
    timings = asyncio.run(fire(order["url"], order["requests"], bool(order["connect_first"])))
    json.dump(timings, sys.stdout)


if __name__ == "__main__":
    main()

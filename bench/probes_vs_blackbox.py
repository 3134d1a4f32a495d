"""HTTP probes: tocsin's engine against Prometheus blackbox_exporter, in one run.

Part 1 (CPU per probe): N HTTP probes against a local nginx, every INTERVAL
seconds. tocsin runs its whole engine in a child process (scheduling, the
probe, detection and the SQLite result journal); blackbox_exporter is asked
for the same probes (`module=http_2xx`) at the same rate, as Prometheus would
scrape it. Each process's own CPU time over the measured window is divided by
the probes it completed. Target: tocsin at most 0.3x blackbox_exporter.

Part 2 (scale): 10,000 probes at a 60 s interval in one tocsin process; prints
schedule lateness p50/p99 and peak RSS. Targets: p99 < 500 ms, RSS < 300 MB.

    .venv/bin/python bench/probes_vs_blackbox.py            # both parts
    .venv/bin/python bench/probes_vs_blackbox.py --part cpu --probes 600 --interval 2
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import aiohttp

from tests.servers.nginx import running_nginx
from tests.servers.ports import free_port

TARGET_RATIO = 0.3  # tocsin's CPU per probe against blackbox_exporter's

BLACKBOX_CONFIG = """\
modules:
  http_2xx:
    prober: http
    timeout: 5s
    http:
      preferred_ip_protocol: ip4
"""


def proc_cpu_seconds(pid: int) -> float:
    """utime + stime of a process, from /proc (what `top` charges it)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


# -- tocsin worker (runs in its own process) --------------------------------------------------


def worker_config(url: str, probes: int, interval: int, db: Path) -> str:
    lines = [
        "slack: {channel: '#bench'}",
        f"storage: {{path: {db}}}",
        "scheduler: {max_concurrent: 1024}",
        "listener: {port: 0}",
        "probes:",
    ]
    timeout = min(5, max(1, interval // 2))
    for n in range(probes):
        lines.append(
            f"  - {{id: web-{n}, kind: http, url: '{url}', interval: {interval}s,"
            f" timeout: {timeout}s, expect: {{status: [200]}}, labels: {{service: s{n % 20}}}}}"
        )
    return "\n".join(lines) + "\n"


async def run_worker(args: argparse.Namespace) -> dict[str, float]:
    from bot.config.loader import load_config_text
    from bot.main import open_tocsin
    from bot.runtime import running_engine
    from bot.scheduler import lateness_percentile
    from incidents.clock import SystemClock

    loaded = load_config_text(
        worker_config(args.url, args.probes, args.interval, Path(args.db)), Path("bench.yml")
    )
    async with (
        open_tocsin(loaded) as tocsin,
        running_engine(tocsin, SystemClock(), {}, listen=False) as engine,
    ):
        await asyncio.sleep(args.interval + 1)  # every probe has started once
        scheduler = engine.scheduler
        runs0, cpu0, late0 = scheduler.runs, time.process_time(), len(scheduler.lateness)
        await asyncio.sleep(args.seconds)
        cpu1, runs1 = time.process_time(), scheduler.runs
        lateness = list(scheduler.lateness)[late0:]
        failing = sum(1 for s in engine.detection.states.values() if s.last_status != "ok")
        stale = scheduler.stale_runs
    runs = runs1 - runs0
    return {
        "runs": runs,
        "cpu_ms_per_probe": (cpu1 - cpu0) * 1000 / max(runs, 1),
        "late_p50_ms": lateness_percentile(lateness, 50).total_seconds() * 1000,
        "late_p99_ms": lateness_percentile(lateness, 99).total_seconds() * 1000,
        "late_max_ms": lateness_percentile(lateness, 100).total_seconds() * 1000,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "not_ok": failing,
        "stale_runs": stale,
    }


def tocsin_measure(
    url: str, probes: int, interval: int, seconds: int, tmp: Path
) -> dict[str, float]:
    db = tmp / f"bench-{probes}.db"
    argv = [
        sys.executable,
        __file__,
        "--worker",
        "--url",
        url,
        "--probes",
        str(probes),
        "--interval",
        str(interval),
        "--seconds",
        str(seconds),
        "--db",
        str(db),
    ]
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"tocsin worker failed:\n{done.stderr[-3000:]}")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


# -- blackbox_exporter ------------------------------------------------------------------------


async def drive_blackbox(base: str, target: str, probes: int, interval: int, seconds: float) -> int:
    """Ask for `probes` probes every `interval` seconds, evenly spread; count the answers."""
    done = 0
    gap = interval / probes
    query = f"{base}/probe?target={target}&module=http_2xx"
    async with aiohttp.ClientSession() as session:

        async def one() -> None:
            nonlocal done
            async with session.get(query) as response:
                body = await response.text()
                if response.status == 200 and "probe_success 1" in body:
                    done += 1

        tasks: list[asyncio.Task[None]] = []
        start = time.monotonic()
        n = 0
        while time.monotonic() - start < seconds:
            tasks.append(asyncio.create_task(one()))
            n += 1
            await asyncio.sleep(max(0.0, start + n * gap - time.monotonic()))
        await asyncio.gather(*tasks)
    return done


def blackbox_measure(
    url: str, probes: int, interval: int, seconds: int, tmp: Path
) -> dict[str, float]:
    binary = shutil.which("prometheus-blackbox-exporter")
    if binary is None:
        raise SystemExit("apt-get install -y prometheus-blackbox-exporter")
    config = tmp / "blackbox.yml"
    config.write_text(BLACKBOX_CONFIG)
    port = free_port()
    log = (tmp / "blackbox.log").open("w")
    process = subprocess.Popen(
        [binary, f"--config.file={config}", f"--web.listen-address=127.0.0.1:{port}"],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        asyncio.run(wait_ready(base))
        asyncio.run(drive_blackbox(base, url, probes, interval, interval + 1))  # warm up
        cpu0 = proc_cpu_seconds(process.pid)
        answered = asyncio.run(drive_blackbox(base, url, probes, interval, seconds))
        cpu1 = proc_cpu_seconds(process.pid)
    finally:
        process.terminate()
        process.wait(10)
        log.close()
    return {"runs": answered, "cpu_ms_per_probe": (cpu1 - cpu0) * 1000 / max(answered, 1)}


async def wait_ready(base: str) -> None:
    async with aiohttp.ClientSession() as session:
        for _ in range(100):
            try:
                async with session.get(f"{base}/metrics") as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    raise SystemExit("blackbox_exporter did not start")


# -- main -------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--part", choices=("cpu", "scale", "all"), default="all")
    parser.add_argument("--probes", type=int, default=1000, help="probes in the CPU part")
    parser.add_argument("--interval", type=int, default=10, help="seconds, CPU part")
    parser.add_argument("--seconds", type=int, default=30, help="measured window, CPU part")
    parser.add_argument("--scale-probes", type=int, default=10_000)
    parser.add_argument("--scale-seconds", type=int, default=90, help="measured window, scale part")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--db", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(asyncio.run(run_worker(args))))
        return

    with tempfile.TemporaryDirectory(prefix="tocsin-bench-") as tmp_name:
        tmp = Path(tmp_name)
        (tmp / "nginx").mkdir()
        with running_nginx(tmp / "nginx") as nginx:
            url = nginx.url("/health")
            print(f"target {url}; machine: {os.cpu_count()} cores")
            if args.part in ("cpu", "all"):
                rate = args.probes / args.interval
                print(
                    f"\nCPU per HTTP probe: {args.probes} probes every {args.interval}s "
                    f"({rate:.0f}/s), {args.seconds}s measured"
                )
                ours = tocsin_measure(url, args.probes, args.interval, args.seconds, tmp)
                theirs = blackbox_measure(url, args.probes, args.interval, args.seconds, tmp)
                print(
                    f"  tocsin engine      {ours['cpu_ms_per_probe']:.3f} ms CPU/probe "
                    f"({ours['runs']:.0f} probes, {ours['not_ok']:.0f} not ok, "
                    f"{ours['stale_runs']:.0f} stale)"
                )
                print(
                    f"  blackbox_exporter  {theirs['cpu_ms_per_probe']:.3f} ms CPU/probe "
                    f"({theirs['runs']:.0f} probes)"
                )
                ratio = ours["cpu_ms_per_probe"] / theirs["cpu_ms_per_probe"]
                verdict = "met" if ratio <= TARGET_RATIO else "NOT met"
                print(
                    f"  ratio tocsin/blackbox = {ratio:.2f} "
                    f"(target <= {TARGET_RATIO:.2f}: {verdict})"
                )
            if args.part in ("scale", "all"):
                print(
                    f"\nScale: {args.scale_probes} probes every 60s in one process, "
                    f"{args.scale_seconds}s measured after a 61s start-up"
                )
                scale = tocsin_measure(url, args.scale_probes, 60, args.scale_seconds, tmp)
                print(
                    f"  runs {scale['runs']:.0f}, stale {scale['stale_runs']:.0f}, "
                    f"not ok {scale['not_ok']:.0f}"
                )
                print(
                    f"  schedule lateness p50 {scale['late_p50_ms']:.1f} ms, "
                    f"p99 {scale['late_p99_ms']:.1f} ms (target < 500), "
                    f"max {scale['late_max_ms']:.1f} ms"
                )
                print(f"  peak RSS {scale['peak_rss_mb']:.0f} MB (target < 300)")


if __name__ == "__main__":
    main()

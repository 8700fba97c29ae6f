"""podkernel beside the raw Podman floor and a host-local kernel, measured in one run.

    python bench/bench.py [--runs N] [--json PATH]

Kernels:
  podkernel  a podkernel kernel (the PyPI-ipykernel test image);
  raw        the very argv `podkernel show` prints for it, run by bench/raw_launch.py: no
             podkernel process, `podman run` in the foreground;
  local      the host's own ipykernel (python3 kernelspec of this interpreter).
Medians over N runs of: start -> ready (start_new_kernel until the kernel_info reply), the
execute round trip (50 no-op executes), restart and shutdown; the host memory podkernel keeps
per kernel; 16 concurrent starts.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from jupyter_client.manager import start_new_kernel

HERE = Path(__file__).resolve().parent
IMAGE = "localhost/podkernel-test-pypi-ipykernel"
COMMAND = ["--", "exec python -m ipykernel_launcher -f $PODKERNEL_CONNECTION_FILE"]
RUN_ARGS = ['--entrypoint=["/bin/sh", "-c"]']
EXECUTES = 50
CONCURRENT = 16
QUIET = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}  # the kernels' own chatter


def podkernel(*args: str) -> str:
    return subprocess.run([sys.executable, "-m", "podkernel", *args], check=True, capture_output=True, text=True).stdout


def write_kernelspec(kernels_dir: Path, name: str, argv: list[str]) -> None:
    (kernels_dir / name).mkdir(parents=True, exist_ok=True)
    spec = {"argv": argv, "display_name": name, "language": "python", "interrupt_mode": "message"}
    (kernels_dir / name / "kernel.json").write_text(json.dumps(spec))


def setup_kernels(data_dir: Path) -> None:
    """Install the podkernel kernel, the raw floor beside it, and the host-local kernel."""
    os.environ.update(JUPYTER_DATA_DIR=str(data_dir), JUPYTER_PATH=str(data_dir))
    podkernel("install", "--name", "bench-podkernel", IMAGE, *RUN_ARGS, *COMMAND)
    shown = podkernel("show", "bench-podkernel")
    argv_file = data_dir / "raw-argv.json"
    import shlex

    argv_file.write_text(json.dumps(shlex.split(shown)))
    kernels = data_dir / "kernels"
    write_kernelspec(
        kernels, "bench-raw", [sys.executable, "-S", str(HERE / "raw_launch.py"), str(argv_file), "{connection_file}"]
    )
    write_kernelspec(kernels, "bench-local", [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"])


def rss_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def descendants(pid: int) -> list[int]:
    """pid and every process below it (podkernel's watchdog is found separately: own session)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    found, queue = [], [pid]
    while queue:
        current = queue.pop()
        found.append(current)
        queue.extend(children.get(current, []))
    return found


def command_of(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def host_memory_mib(launcher_pid: int) -> float:
    """RSS of the host processes kept for one kernel: the launcher's tree and podkernel's watchdog.

    Conmon and everything inside the container are left out.
    """
    everything = [int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit()]
    container_side = {
        pid for root in everything if command_of(root).startswith("/usr/bin/conmon") for pid in descendants(root)
    }
    kept = set(descendants(launcher_pid)) - container_side
    kept |= {pid for pid in everything if "podkernel-watchdog" in command_of(pid)}
    return sum(rss_kib(pid) for pid in kept) / 1024


def one_run(kernel: str) -> dict:
    started = time.perf_counter()
    manager, client = start_new_kernel(kernel_name=kernel, startup_timeout=120, **QUIET)
    ready = time.perf_counter() - started
    round_trips = []
    for _ in range(EXECUTES):
        sent = time.perf_counter()
        client.execute("pass", reply=True, timeout=30)
        round_trips.append(time.perf_counter() - sent)
    memory = host_memory_mib(manager.provisioner.process.pid)
    sent = time.perf_counter()
    manager.restart_kernel()
    client.wait_for_ready(timeout=120)
    restart = time.perf_counter() - sent
    client.stop_channels()
    sent = time.perf_counter()
    manager.shutdown_kernel()
    shutdown = time.perf_counter() - sent
    settle()
    return {
        "start_ready_s": ready,
        "execute_rtt_ms": statistics.median(round_trips) * 1000,
        "restart_s": restart,
        "shutdown_s": shutdown,
        "host_memory_mib": memory,
    }


def settle(timeout: float = 30) -> None:
    """Wait until no container and no conmon is left, so one measurement does not slow the next."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        containers = subprocess.run(["podman", "ps", "--all", "--quiet"], capture_output=True, text=True).stdout
        conmons = [
            p
            for p in Path("/proc").iterdir()
            if p.name.isdigit() and command_of(int(p.name)).startswith("/usr/bin/conmon")
        ]
        if not containers.strip() and not conmons:
            return
        time.sleep(0.05)


def concurrent_starts(kernel: str) -> dict:
    def start(_):
        try:
            return start_new_kernel(kernel_name=kernel, startup_timeout=300, **QUIET)
        except Exception as error:  # a failed start is counted, not raised
            return error

    began = time.perf_counter()
    with ThreadPoolExecutor(CONCURRENT) as pool:
        results = list(pool.map(start, range(CONCURRENT)))
    wall = time.perf_counter() - began
    started = [r for r in results if not isinstance(r, Exception)]
    for _manager, client in started:
        client.stop_channels()
    with ThreadPoolExecutor(CONCURRENT) as pool:
        list(pool.map(lambda pair: pair[0].shutdown_kernel(), started))
    return {"wall_s": wall, "ready": len(started), "failed": CONCURRENT - len(started)}


def medians(runs: list[dict]) -> dict:
    return {key: statistics.median(run[key] for run in runs) for key in runs[0]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--json", default=str(HERE / "results.json"))
    options = parser.parse_args()
    data_dir = Path(tempfile.mkdtemp(prefix="podkernel-bench-"))
    try:
        setup_kernels(data_dir)
        kinds = {"podkernel": "bench-podkernel", "raw": "bench-raw", "local": "bench-local"}
        for name in kinds.values():  # warm caches: images, page cache, bytecode
            one_run(name)
        runs: dict[str, list[dict]] = {kind: [] for kind in kinds}
        for _ in range(options.runs):
            for kind, name in kinds.items():  # interleaved, so drift hits all three alike
                runs[kind].append(one_run(name))
        results = {kind: medians(kind_runs) for kind, kind_runs in runs.items()}
        results["podkernel"]["concurrent_16"] = concurrent_starts("bench-podkernel")
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)
        for leftover in Path(tempfile.gettempdir()).glob("raw-floor-*"):
            shutil.rmtree(leftover, ignore_errors=True)
    pk, raw, local = results["podkernel"], results["raw"], results["local"]
    ratios = {
        "start_vs_raw": pk["start_ready_s"] / raw["start_ready_s"],
        "execute_vs_local": pk["execute_rtt_ms"] / local["execute_rtt_ms"],
        "restart_vs_start": pk["restart_s"] / pk["start_ready_s"],
        "raw_restart_vs_raw_start": raw["restart_s"] / raw["start_ready_s"],
    }
    report = {
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "podman": subprocess.run(["podman", "--version"], capture_output=True, text=True).stdout.strip(),
        },
        "runs": options.runs,
        "results": results,
        "ratios": ratios,
    }
    Path(options.json).write_text(json.dumps(report, indent=2) + "\n")
    print_table(report)


def print_table(report: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    results, ratios = report["results"], report["ratios"]
    table = Table("metric (median)", "podkernel", "raw floor", "host-local", "target", title="podkernel benchmark")

    def row(label, key, fmt):
        table.add_row(label, *(fmt.format(results[k][key]) for k in ("podkernel", "raw", "local")))

    row("start -> ready (s)", "start_ready_s", "{:.3f}")
    row("execute round trip (ms)", "execute_rtt_ms", "{:.2f}")
    row("restart (s)", "restart_s", "{:.3f}")
    row("shutdown (s)", "shutdown_s", "{:.3f}")
    table.add_row(
        "host memory kept (MiB)",
        *(f"{results[k]['host_memory_mib']:.1f}" for k in ("podkernel", "raw")),
        "(the kernel)",
    )
    concurrent = results["podkernel"]["concurrent_16"]
    table.add_row("16 concurrent starts", f"{concurrent['ready']}/16 in {concurrent['wall_s']:.1f} s", "", "", "16/16")
    table.add_row("start / raw floor", f"{ratios['start_vs_raw']:.2f}x", "", "", "<= 1.10x")
    table.add_row("execute / host-local", f"{ratios['execute_vs_local']:.2f}x", "", "", "<= 1.10x")
    table.add_row(
        "restart / start",
        f"{ratios['restart_vs_start']:.2f}x",
        f"{ratios['raw_restart_vs_raw_start']:.2f}x",
        "",
        "<= 1.2x",
    )
    table.add_row("shutdown", f"{results['podkernel']['shutdown_s']:.3f} s", "", "", "<= 0.4 s")
    table.add_row("host memory per kernel", f"{results['podkernel']['host_memory_mib']:.1f} MiB", "", "", "<= 20 MiB")
    machine = report["machine"]
    Console().print(table)
    print(
        f"{machine['cpus']} CPUs, {machine['platform']}, Python {machine['python']}, {machine['podman']}; "
        f"{report['runs']} runs each"
    )


if __name__ == "__main__":
    main()

"""podkernel beside the raw Podman floor and a host-local kernel, measured in one run.

    python bench/bench.py [--runs N] [--json PATH] [--remote-host]

Kernels:
  podkernel  a podkernel kernel (the PyPI-ipykernel test image);
  remote     (with --remote-host, as root) the same kernel on another machine: the second host
             that tests/remote-host simulates on this one (its own sshd and Podman in a
             network namespace), reached over SSH; it shares this machine's CPUs;
  remote-rootless  the same, with the rootless Podman of a user there;
  raw        the very argv `podkernel show` prints for it, run by bench/raw_launch.py: no
             podkernel process, `podman run` in the foreground;
  local      the host's own ipykernel (python3 kernelspec of this interpreter).
Medians over N runs of: start -> ready (start_new_kernel until the kernel_info reply), the
execute round trip (50 no-op executes), restart and shutdown; the host memory podkernel keeps
per kernel; 16 concurrent starts; and what install's trial start adds to an install.
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
RESTART_TIMEOUT_S = 20
CONCURRENT = 16
QUIET = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}  # the kernels' own chatter


def podkernel(*args: str) -> str:
    return subprocess.run([sys.executable, "-m", "podkernel", *args], check=True, capture_output=True, text=True).stdout


def write_kernelspec(kernels_dir: Path, name: str, argv: list[str]) -> None:
    (kernels_dir / name).mkdir(parents=True, exist_ok=True)
    spec = {"argv": argv, "display_name": name, "language": "python", "interrupt_mode": "message"}
    (kernels_dir / name / "kernel.json").write_text(json.dumps(spec))


def setup_kernels(data_dir: Path, remote: RemoteHost | None) -> None:
    """Install the podkernel kernel, the raw floor beside it, the host-local kernel, and the remote one."""
    os.environ.update(JUPYTER_DATA_DIR=str(data_dir), JUPYTER_PATH=str(data_dir))
    podkernel("install", "--name", "bench-podkernel", IMAGE, *RUN_ARGS, *COMMAND)
    if remote is not None:
        podkernel("install", "--name", "bench-remote", *remote.args, IMAGE, *RUN_ARGS, *COMMAND)
        podkernel("install", "--name", "bench-remote-rootless", *remote.rootless_args, IMAGE, *RUN_ARGS, *COMMAND)
    podkernel("install", "--no-check", "--warm", "--name", "bench-warm", IMAGE, *RUN_ARGS, *COMMAND)
    shown = podkernel("show", "bench-podkernel")
    argv_file = data_dir / "raw-argv.json"
    import shlex

    argv_file.write_text(json.dumps(shlex.split(shown)))
    kernels = data_dir / "kernels"
    write_kernelspec(
        kernels, "bench-raw", [sys.executable, "-S", str(HERE / "raw_launch.py"), str(argv_file), "{connection_file}"]
    )
    write_kernelspec(kernels, "bench-local", [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"])


class RemoteHost:
    """tests/remote-host's second host, up for the run, with the image loaded and a home whose
    known_hosts knows it (ssh and Podman read $HOME/.ssh/known_hosts)."""

    def __init__(self):
        self.state = tempfile.mkdtemp(prefix="podkernel-bench-remote-", dir="/var/tmp")
        self.script = str(HERE.parent / "tests" / "remote-host")
        up = subprocess.run([self.script, "up", self.state], check=True, capture_output=True, text=True).stdout
        values = dict(line.split("=", 1) for line in up.splitlines() if "=" in line)
        home = Path(self.state) / "home"
        (home / ".ssh").mkdir(parents=True)
        (home / ".ssh" / "known_hosts").write_text(values["REMOTE_KNOWN_HOSTS"].strip("'") + "\n")
        os.environ["HOME"] = str(home)
        subprocess.run([self.script, "load", self.state, IMAGE], check=True)
        self.args = ["--url", values["REMOTE_URL"], "--identity", values["REMOTE_IDENTITY"]]
        self.rootless_args = ["--url", values["REMOTE_ROOTLESS_URL"], "--identity", values["REMOTE_IDENTITY"]]

    def down(self) -> None:
        subprocess.run([self.script, "down", self.state], capture_output=True)


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


def warm_ups_done() -> None:
    """Wait until no warm container is being prepared: a warm kernel's next start finds one waiting."""
    while any("podkernel warm-up" in command_of(pid) for pid in all_pids()):
        time.sleep(0.05)


def all_pids() -> list[int]:
    return [int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit()]


def warm_waiting_memory_mib() -> float:
    """RSS of what one waiting warm container keeps on the host: its conmon and its processes."""
    conmons = [
        pid for pid in all_pids() if command_of(pid).startswith("/usr/bin/conmon") and "-warm-" in command_of(pid)
    ]
    return sum(rss_kib(pid) for conmon in conmons[:1] for pid in descendants(conmon)) / 1024


def one_run(kernel: str) -> dict:
    warm_ups_done()
    started = time.perf_counter()
    manager, client = start_new_kernel(kernel_name=kernel, startup_timeout=120, **QUIET)
    ready = time.perf_counter() - started
    round_trips = []
    for _ in range(EXECUTES):
        sent = time.perf_counter()
        client.execute("pass", reply=True, timeout=30)
        round_trips.append(time.perf_counter() - sent)
    warm_ups_done()  # a restart minutes later finds the next warm container waiting; so does this one
    memory = host_memory_mib(manager.provisioner.process.pid)  # kept: the warm-up has ended
    sent = time.perf_counter()
    manager.restart_kernel()
    try:
        client.wait_for_ready(timeout=RESTART_TIMEOUT_S)
        restart: float | None = time.perf_counter() - sent
    except RuntimeError:  # the raw floor's restart can hang (README, "The port relay"): counted, not waited out
        restart = None
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
        names = subprocess.run(["podman", "ps", "--all", "--format", "{{.Names}}"], capture_output=True, text=True)
        containers = [name for name in names.stdout.split() if "-warm-" not in name]  # waiting ones stay
        conmons = [
            pid
            for pid in all_pids()
            if command_of(pid).startswith("/usr/bin/conmon") and "-warm-" not in command_of(pid)
        ]
        if not containers and not conmons:
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


def install_times() -> dict:
    """``install`` with and without its trial start, the same kernel replaced each time."""
    timed: dict[str, list[float]] = {"install_no_check_s": [], "install_s": []}
    for key, check in (("install_no_check_s", ["--no-check"]), ("install_s", [])) * 3:
        began = time.perf_counter()
        podkernel("install", "--replace", *check, "--name", "bench-install", IMAGE, *RUN_ARGS, *COMMAND)
        timed[key].append(time.perf_counter() - began)
    settle()
    return {key: statistics.median(values) for key, values in timed.items()}


def ratio(value: float | None, base: float) -> float | None:
    return None if value is None else value / base


def medians(runs: list[dict]) -> dict:
    """Each metric's median over the runs that have it; ``restart_hangs`` counts restarts that never answered."""
    result = {}
    for key in runs[0]:
        values = [run[key] for run in runs if run[key] is not None]
        result[key] = statistics.median(values) if values else None
    result["restart_hangs"] = sum(run["restart_s"] is None for run in runs)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--json", default=str(HERE / "results.json"))
    parser.add_argument("--remote-host", action="store_true", help="Add a kernel on a simulated second host (root).")
    options = parser.parse_args()
    data_dir = Path(tempfile.mkdtemp(prefix="podkernel-bench-"))
    remote = RemoteHost() if options.remote_host else None
    try:
        setup_kernels(data_dir, remote)
        kinds = {"podkernel": "bench-podkernel", "warm": "bench-warm", "raw": "bench-raw", "local": "bench-local"}
        if remote is not None:
            kinds.update({"remote": "bench-remote", "remote-rootless": "bench-remote-rootless"})
        for name in kinds.values():  # warm caches: images, page cache, bytecode
            one_run(name)
        runs: dict[str, list[dict]] = {kind: [] for kind in kinds}
        for _ in range(options.runs):
            for kind, name in kinds.items():  # interleaved, so drift hits all three alike
                runs[kind].append(one_run(name))
        results = {kind: medians(kind_runs) for kind, kind_runs in runs.items()}
        results["podkernel"]["concurrent_16"] = concurrent_starts("bench-podkernel")
        results["podkernel"].update(install_times())
        warm_ups_done()
        results["warm"]["waiting_memory_mib"] = warm_waiting_memory_mib()
    finally:
        warm_ups_done()
        subprocess.run([sys.executable, "-m", "podkernel", "remove", "bench-warm"], capture_output=True)
        shutil.rmtree(data_dir, ignore_errors=True)
        for leftover in Path(tempfile.gettempdir()).glob("raw-floor-*"):
            shutil.rmtree(leftover, ignore_errors=True)
        if remote is not None:
            remote.down()
    pk, raw, local = results["podkernel"], results["raw"], results["local"]
    ratios = {
        "start_vs_raw": pk["start_ready_s"] / raw["start_ready_s"],
        "execute_vs_local": pk["execute_rtt_ms"] / local["execute_rtt_ms"],
        "restart_vs_start": ratio(pk["restart_s"], pk["start_ready_s"]),
        "raw_restart_vs_raw_start": ratio(raw["restart_s"], raw["start_ready_s"]),
        "trial_vs_start": (pk["install_s"] - pk["install_no_check_s"]) / pk["start_ready_s"],
        "warm_start_vs_local": results["warm"]["start_ready_s"] / local["start_ready_s"],
        "warm_restart_vs_local": ratio(results["warm"]["restart_s"], local["restart_s"]),
        "cold_restart_vs_cold_start": ratio(pk["restart_s"], pk["start_ready_s"]),
    }
    for far in ("remote", "remote-rootless"):
        if far in results:
            ratios[f"{far}_start_minus_cold_s"] = results[far]["start_ready_s"] - pk["start_ready_s"]
            ratios[f"{far}_execute_minus_cold_ms"] = results[far]["execute_rtt_ms"] - pk["execute_rtt_ms"]
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
    far = [kind for kind in ("remote", "remote-rootless") if kind in results]
    columns = ("podkernel", "warm", "raw", "local", *far)
    table = Table(
        "metric (median)", "podkernel", "warm", "raw floor", "host-local", *far, "target", title="podkernel benchmark"
    )

    def shown(value, fmt):
        return "hung" if value is None else fmt.format(value)

    def row(label, key, fmt):
        table.add_row(label, *(shown(results[k][key], fmt) for k in columns))

    row("start -> ready (s)", "start_ready_s", "{:.3f}")
    row("execute round trip (ms)", "execute_rtt_ms", "{:.2f}")
    row("restart (s)", "restart_s", "{:.3f}")
    table.add_row(
        f"restarts not ready in {RESTART_TIMEOUT_S} s", *(str(results[k]["restart_hangs"]) for k in columns), "0"
    )
    table.add_row(
        "host memory kept (MiB)",
        *(f"{results[k]['host_memory_mib']:.1f}" for k in ("podkernel", "warm", "raw")),
        "",
        *(f"{results[k]['host_memory_mib']:.1f}" for k in columns[4:]),
        "",
    )

    def summary(label: str, cold: str = "", warm: str = "", target: str = "", remote: tuple[str, ...] = ()) -> None:
        table.add_row(label, cold, warm, "", "", *(remote or [""] * len(far)), target)

    pk, warm = results["podkernel"], results["warm"]
    concurrent = pk["concurrent_16"]
    summary("16 concurrent starts", f"{concurrent['ready']}/16 in {concurrent['wall_s']:.1f} s", target="16/16")
    summary("start / raw floor", f"{ratios['start_vs_raw']:.2f}x", target="<= 1.10x")
    summary("warm start / host-local start", warm=f"{ratios['warm_start_vs_local']:.2f}x", target="<= 1.10x")
    summary("execute / host-local", f"{ratios['execute_vs_local']:.2f}x", target="<= 1.10x")
    summary("cold restart / cold start", shown(ratios["cold_restart_vs_cold_start"], "{:.2f}x"), target="<= 1.2x")
    summary(
        "warm restart / host-local restart", warm=shown(ratios["warm_restart_vs_local"], "{:.2f}x"), target="<= 1.10x"
    )
    summary("shutdown", f"{pk['shutdown_s']:.3f} s", f"{warm['shutdown_s']:.3f} s", "<= 0.4 s")
    summary("install, --no-check / with trial", f"{pk['install_no_check_s']:.2f} / {pk['install_s']:.2f} s")
    summary("install's trial / start", f"{ratios['trial_vs_start']:.2f}x", target="<= 1 start")
    summary(
        "host memory per kernel", f"{pk['host_memory_mib']:.1f} MiB", f"{warm['host_memory_mib']:.1f} MiB", "<= 20 MiB"
    )
    summary("host memory of a waiting warm container", warm=f"{warm['waiting_memory_mib']:.1f} MiB")
    if far:
        starts = tuple(f"{ratios[f'{kind}_start_minus_cold_s']:+.3f} s" for kind in far)
        executes = tuple(f"{ratios[f'{kind}_execute_minus_cold_ms']:+.2f} ms" for kind in far)
        summary("start - cold podkernel start", remote=starts, target="<= +0.5 s")
        summary("execute - cold podkernel execute", remote=executes, target="<= +2 ms")
    machine = report["machine"]
    Console(width=170).print(table)  # whole rows, also in a log file
    print(
        f"{machine['cpus']} CPUs, {machine['platform']}, Python {machine['python']}, {machine['podman']}; "
        f"{report['runs']} runs each"
    )


if __name__ == "__main__":
    main()

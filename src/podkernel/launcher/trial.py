"""A trial start: run a kernel once exactly as a frontend does, and say what it is or why it fails.

``install`` runs it before writing a kernelspec, ``check`` for an installed one. The kernel
is started by jupyter_client from its kernelspec (the same launcher, the same container
arguments), asked for ``kernel_info``, interrupted during a short wait where podkernel knows
the language, and shut down gracefully. When it fails, the error says why: the kernel's own
last lines of output, its container's exit status, or what listens in the container.
"""

from __future__ import annotations

import os
import queue
import signal
import tempfile
import time
from collections.abc import Callable
from typing import NamedTuple

from ..engines.base import ContainerEngine
from ..errors import PodkernelError
from ..model.connection import PORT_KEYS
from ..model.labels import CONNECTION_FILE_LABEL
from ..system.host import listening_addresses
from ..system.processes import INIT_PROGRAMS, command_line, container_processes, program_name
from .images import TRIAL_IMAGE_ID_VARIABLE

DEFAULT_TIMEOUT_S = 60.0
# A cell that prints WAITING and then waits, per language (``language_info.name``, lowercased), to
# interrupt once it runs: a SIGINT that lands while IRkernel is between taking a request and running
# it is lost or ends the kernel. The print is a statement of its own (IRkernel sends a line's output
# once the line has run).
WAITING = "podkernel-waiting"
WAIT_CODE = {
    "python": f"print('{WAITING}', flush=True)\nimport time\ntime.sleep({{seconds}})",
    "r": f'cat("{WAITING}\\n")\nSys.sleep({{seconds}})',
}
WAIT_S = 30
INTERRUPT_TIMEOUT_S = 5.0
INTERRUPT_AGAIN_AFTER_S = 1.0
STOP_TIMEOUT_S = 15.0  # the launcher's own stop takes about a second
OUTPUT_LINES = 12
DIAGNOSE_AFTER_S = 2.0  # until then a silent kernel is just starting; then look every second


Progress = Callable[[str], None]


class TrialFailed(PodkernelError):
    """The kernel did not start and answer; ``output`` is its last lines of output."""

    def __init__(self, reason: str, output: list[str]):
        super().__init__(reason)
        self.reason, self.output = reason, output

    def explain(self, advice: str) -> str:
        """One line with the reason and what to do, then the kernel's last output, indented."""
        lines = [f"{self.reason}; {advice}"]
        if self.output:
            lines.append("  the last output of the kernel and its launcher:")
            lines += [f"    {line}" for line in self.output]
        return "\n".join(lines)


class KernelReport(NamedTuple):
    """What the kernel said about itself, and how the trial went."""

    implementation: str
    implementation_version: str
    language: str
    language_version: str
    ready_s: float
    interrupt: str  # for people: how the interrupt check went
    interrupt_works: bool | None  # None: not checked

    def summary(self) -> str:
        """``ok: IRkernel 1.3 (R 4.2.2), ready in 1.4 s, interrupt works (0.05 s)``."""
        kernel = " ".join(filter(None, [self.implementation, self.implementation_version])) or "a kernel"
        language = " ".join(filter(None, [self.language, self.language_version]))
        kernel += f" ({language})" if language else ""
        outcome = "ok" if self.interrupt_works is not False else "started, but interrupts do not work"
        return f"{outcome}: {kernel}, ready in {self.ready_s:.1f} s, {self.interrupt}"


def try_kernel(
    kernel_dir: str,
    engine: ContainerEngine,
    *,
    image_id: str | None = None,
    timeout: float = DEFAULT_TIMEOUT_S,
    progress: Progress = lambda text: None,
) -> KernelReport:
    """Start the kernelspec in ``kernel_dir`` once, as a frontend would, and stop it again.

    The interrupt check uses the kernelspec's interrupt mode, as a frontend's interrupt does.

    Raises :class:`TrialFailed` when it does not answer ``kernel_info`` within ``timeout``
    seconds; whatever happens, the kernel is stopped (and its launcher removes its container)
    before this returns.
    """
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import KernelManager

    specs = KernelSpecManager(kernel_dirs=[os.path.dirname(os.path.abspath(kernel_dir))])
    manager = KernelManager(kernel_name=os.path.basename(os.path.abspath(kernel_dir)), kernel_spec_manager=specs)
    env = dict(os.environ, **({TRIAL_IMAGE_ID_VARIABLE: image_id} if image_id else {}))
    with tempfile.TemporaryFile() as output:
        started = time.monotonic()
        try:
            manager.start_kernel(stdout=output, stderr=output, env=env)
            watch = _Watch(manager, engine, output, timeout, progress)
            info, ready_s, interrupt, works = _talk(manager, watch, started)
            progress("shutting the kernel down")
            if works is False:  # still in its waiting cell
                _stop(manager)
            else:  # as shutdown_kernel(), but noticing the launcher's exit within 10 ms, not 100
                manager.request_shutdown()
                manager.finish_shutdown(pollinterval=0.01)
                manager.cleanup_resources()
        except BaseException:
            _stop(manager)
            raise
    language_info = info.get("language_info") or {}
    return KernelReport(
        implementation=str(info.get("implementation", "")),
        implementation_version=str(info.get("implementation_version", "")),
        language=str(language_info.get("name", "")),
        language_version=str(language_info.get("version", "")),
        ready_s=ready_s,
        interrupt=interrupt,
        interrupt_works=works,
    )


def _talk(manager, watch: _Watch, started: float) -> tuple[dict, float, str, bool | None]:
    """Ask the started kernel for its ``kernel_info``, then check its interrupt: the reply's
    content, the seconds until it answered, and how the interrupt went."""
    client = manager.client()
    client.start_channels()
    try:
        info = watch.kernel_info(client)
        ready_s = time.monotonic() - started
        watch.progress("interrupting a waiting cell")
        interrupt, works = _check_interrupt(manager, client, info.get("language_info", {}).get("name", ""))
    finally:
        client.stop_channels()
    return info, ready_s, interrupt, works


class _Watch:
    """Waits for the kernel's first reply, and explains a kernel that ends or stays silent."""

    def __init__(self, manager, engine: ContainerEngine, output, timeout: float, progress: Progress):
        self.manager, self.engine, self.output = manager, engine, output
        self.timeout, self.progress = timeout, progress
        self.label = f"{CONNECTION_FILE_LABEL}={os.path.abspath(manager.connection_file)}"
        self.ports = {getattr(manager, key) for key in PORT_KEYS}
        self._container_pid: int | None = None

    def kernel_info(self, client) -> dict:
        """The content of the kernel's ``kernel_info`` reply."""
        msg_id = client.kernel_info()
        started = time.monotonic()
        next_look = started + DIAGNOSE_AFTER_S
        while True:
            try:
                message = client.get_shell_msg(timeout=0.1)
            except queue.Empty:
                now = time.monotonic()
                if not self.manager.is_alive():
                    raise self._ended() from None
                if now >= next_look:
                    next_look = now + 1.0
                    self._look_inside(final=now - started >= self.timeout)
                self.progress(f"waiting for the kernel to answer ({now - started:.0f} s)")
                continue
            if message["parent_header"].get("msg_id") == msg_id:
                return message["content"]

    def _ended(self) -> TrialFailed:
        status = self.engine.exit_status(self.label)
        if status is None:
            reason = "the kernel's container did not start"
        elif status == 0:
            reason = (
                "the kernel's container exited (status 0) before a kernel answered: its command ended instead of "
                "running a kernel; give the kernel's command after the last --"
            )
        else:
            reason = f"the kernel's container exited with status {status} before the kernel answered"
        return TrialFailed(reason, self._last_output())

    def _look_inside(self, final: bool) -> None:
        """Fail as soon as the kernel listens where no published port reaches it; at the timeout, say
        what the container does."""
        if self._container_pid is None:
            found = self.engine.containers(self.label)
            if found:
                self._container_pid = self.engine.main_pid(found[0]["Id"])
        listening = listening_addresses(self._container_pid) if self._container_pid else None
        kernel_ports = {port: listening[port] for port in self.ports if port in listening} if listening else {}
        if kernel_ports and all(address.is_loopback for addresses in kernel_ports.values() for address in addresses):
            raise TrialFailed(
                "the kernel listens on 127.0.0.1 inside its container, where its published ports cannot reach it: "
                "make it listen on all interfaces (the connection file podkernel hands it says ip 0.0.0.0: "
                "does the image or the command change that?)",
                self._last_output(),
            )
        if not final:
            return
        waited = f"no reply within {self.timeout:.0f} s"
        if self._container_pid is None:
            reason = f"{waited}: the kernel's container is not running (still pulling or building?)"
        elif listening is not None and not kernel_ports:
            reason = (
                f"{waited}: the container runs, but nothing in it listens on the kernel's ports; does its "
                f"command start a kernel with $PODKERNEL_CONNECTION_FILE? (it runs: {self._commands()})"
            )
        else:
            reason = (
                f"{waited}: the process is running but does not answer; "
                "is it listening on all interfaces inside the container?"
            )
        raise TrialFailed(reason, self._last_output())

    def _commands(self) -> str:
        commands = []
        for pid in container_processes(self._container_pid or 0):
            if program_name(pid) in INIT_PROGRAMS:
                continue  # the init, not the command
            if words := command_line(pid):
                commands.append(" ".join(word for word in words if word))
        return "; ".join(commands) or "no process"

    def _last_output(self) -> list[str]:
        self.output.seek(0)
        lines = [line.rstrip() for line in self.output.read().decode(errors="replace").splitlines()]
        return [line for line in lines if line.strip()][-OUTPUT_LINES:]


def _check_interrupt(manager, client, language: str) -> tuple[str, bool | None]:
    """Interrupt a cell that waits, the way the kernelspec's interrupt mode does; say how it went."""
    code = WAIT_CODE.get(language.lower())
    if code is None:
        return f"interrupt not checked (podkernel knows no waiting cell for {language or 'this language'})", None
    msg_id = client.execute(code.format(seconds=WAIT_S), store_history=False)
    deadline = time.monotonic() + INTERRUPT_TIMEOUT_S
    ended_with = "ok"
    while True:  # interrupt once the cell runs
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return "interrupt not checked (the waiting cell never started)", None
        try:
            message = client.get_iopub_msg(timeout=remaining)
        except queue.Empty:
            continue
        if message["parent_header"].get("msg_id") != msg_id:
            continue
        if message["msg_type"] == "stream" and WAITING in message["content"].get("text", ""):
            break
        if message["msg_type"] == "error":
            ended_with = f"error {message['content'].get('ename', '')}"
        if message["msg_type"] == "status" and message["content"]["execution_state"] == "idle":
            return f"interrupt not checked (the waiting cell ended by itself: {ended_with})", None
    sent = time.monotonic()
    manager.interrupt_kernel()
    tries = 1
    while True:
        now = time.monotonic()
        if now >= sent + INTERRUPT_TIMEOUT_S:
            return (
                f"a waiting cell kept running {INTERRUPT_TIMEOUT_S:.0f} s after {tries} interrupts "
                f"({manager.kernel_spec.interrupt_mode} mode)"
            ), False
        if now >= sent + tries * INTERRUPT_AGAIN_AFTER_S:  # as a person presses it again
            manager.interrupt_kernel()
            tries += 1
        try:
            message = client.get_shell_msg(timeout=min(0.05, sent + INTERRUPT_TIMEOUT_S - now))
        except queue.Empty:
            continue
        if message["parent_header"].get("msg_id") == msg_id:
            again = f", at try {tries}" if tries > 1 else ""
            return f"interrupt works ({time.monotonic() - sent:.2f} s{again})", True


def _stop(manager) -> None:
    """Stop a kernel that did not work out: SIGTERM lets the launcher remove its container."""
    if manager.has_kernel and manager.is_alive():
        manager.signal_kernel(signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT_S
        while manager.is_alive() and time.monotonic() < deadline:
            time.sleep(0.05)
        if manager.is_alive():
            manager.kill_kernel()
    manager.cleanup_resources()

"""The host's processes as /proc shows them, and ending a tree of them without a race."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import time
from collections.abc import Iterable

FREEZE_S = 1  # how long a process may take to stop: one in uninterruptible sleep stops once out of it
RUNNING_STATES = ("R", "S", "D")


PF_KTHREAD = 0x00200000  # in /proc/PID/stat's flags: a kernel thread


def _stat_fields(pid: int) -> list[str] | None:
    """The fields of /proc/PID/stat after the command name (field 3, the state, comes first)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as handle:
            return handle.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def read_pid(path: str) -> int | None:
    """The PID written in the file ``path``; None when there is none (yet)."""
    try:
        with open(path, encoding="ascii") as handle:
            return int(handle.read().strip())
    except (OSError, ValueError):
        return None


def state(pid: int) -> str:
    """The state letter of ``pid`` (R, S, T for stopped, Z for a zombie...); X once it has gone."""
    return (_stat_fields(pid) or ["X"])[0]


def session(pid: int) -> int | None:
    """The session ``pid`` belongs to; None once it has gone."""
    fields = _stat_fields(pid)
    return int(fields[3]) if fields else None


def all_pids() -> list[int]:
    return [int(entry) for entry in os.listdir("/proc") if entry.isdigit()]


def children() -> dict[int, list[int]]:
    """Every process's children, by parent PID."""
    found: dict[int, list[int]] = {}
    for pid in all_pids():
        fields = _stat_fields(pid)
        if fields:
            found.setdefault(int(fields[1]), []).append(pid)
    return found


def descendants(pid: int, tree: dict[int, list[int]] | None = None) -> list[int]:
    """The children of ``pid``, theirs, and so on (``tree``: a :func:`children` already read)."""
    tree = children() if tree is None else tree
    found, waiting = [], list(tree.get(pid, []))
    while waiting:
        child = waiting.pop()
        found.append(child)
        waiting += tree.get(child, [])
    return found


def command_line_bytes(pid: int) -> bytes:
    """The arguments ``pid`` runs with as the kernel keeps them (NUL-separated); none once it has ended."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            return handle.read()
    except OSError:
        return b""


def command_line(pid: int) -> list[str]:
    """The arguments ``pid`` runs with; none once it has ended (or as a zombie)."""
    return command_line_bytes(pid).decode(errors="replace").split("\0")[:-1]


# How often, and how far apart, a process with blank arguments is read again (see naming).
BLANK_READS = 5
BLANK_READ_INTERVAL_S = 0.01


def naming(words: Iterable[str]) -> dict[str, dict[int, list[str]]]:
    """For each of ``words``, this user's processes that have it as one of their arguments, with
    their arguments; one pass over /proc for all of them.

    A process in the middle of ``exec`` has no readable arguments for a moment (a watchdog that
    execs the command naming a folder passes through it; on a loaded machine, for milliseconds):
    such a process is read again, a few times 10 ms apart, and one still blank then is taken to
    name every word, with no arguments (``[]``), so that no caller takes a word for unnamed.
    """
    wanted: dict[str, dict[int, list[str]]] = {word: {} for word in words}
    if not wanted:
        return wanted
    blank = []
    for pid in all_pids():
        if args := command_line(pid):
            for word in wanted.keys() & set(args):
                if is_mine(pid):
                    wanted[word][pid] = args
        elif pid != os.getpid():
            blank.append(pid)
    for attempt in range(BLANK_READS):
        if attempt:
            time.sleep(BLANK_READ_INTERVAL_S)
        still_blank = []
        for pid in blank:
            args = command_line(pid)
            fields = _stat_fields(pid) or ["X"] * 7
            if not is_mine(pid) or fields[0] in ("Z", "X") or int(fields[6]) & PF_KTHREAD:
                continue  # ended, a zombie, or a kernel thread (whose arguments are always empty)
            if not args:
                still_blank.append(pid)
            for word in wanted.keys() & set(args):
                wanted[word][pid] = args
        blank = still_blank
        if not blank:
            break
    for pid in blank:
        for word in wanted:
            wanted[word][pid] = []
    return wanted


def creator_ended(path: str) -> bool:
    """Whether ``path`` is named ``podkernel-[KIND-]PID-...`` and the process PID has ended."""
    words = os.path.basename(path).split("-")
    creator = next((word for word in words[1:3] if word.isdigit()), None)
    return words[0] == "podkernel" and creator is not None and state(int(creator)) in ("X", "Z")


def remove_abandoned(paths: Iterable[str]) -> list[str]:
    """Remove those of ``paths`` (files or folders named ``podkernel-[KIND-]PID-...``) that are this
    user's, whose creator PID has ended and that no process names: their creator and its
    watchdog were killed together. One still named stays (its watchdog is at work on it).
    Returns the paths removed."""
    stale = []
    for path in paths:
        try:
            owned = os.lstat(path).st_uid == os.getuid()
        except OSError:
            continue
        if owned and creator_ended(path):
            stale.append(path)
    removed = [path for path, named_by in naming(stale).items() if not named_by]
    for path in removed:
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path, ignore_errors=True)
        else:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
    return removed


def program_name(pid: int) -> str:
    """The kernel's short name for the program ``pid`` runs (``comm``)."""
    try:
        with open(f"/proc/{pid}/comm", encoding="utf-8", errors="replace") as handle:
            return handle.read().strip()
    except OSError:
        return ""


def is_mine(pid: int) -> bool:
    """Whether ``pid`` runs as this process's user (the only processes it may end)."""
    try:
        return os.stat(f"/proc/{pid}").st_uid == os.getuid()
    except OSError:
        return False


def age_s(pid: int) -> float:
    """Seconds since ``pid`` started; 0 where that cannot be read."""
    fields = _stat_fields(pid)
    try:
        with open("/proc/uptime", encoding="ascii") as handle:
            uptime = float(handle.read().split()[0])
        return max(0.0, uptime - int(fields[19]) / os.sysconf("SC_CLK_TCK")) if fields else 0.0
    except (OSError, ValueError, IndexError):
        return 0.0


def freeze_tree(pid: int) -> list[int]:
    """Stop ``pid`` and all its descendants (SIGSTOP), so none can start another; return them all.

    A process stops only on its way back from the kernel, so it may still fork meanwhile: once
    each has stopped, the tree is read again, until it holds no process not stopped.
    """
    stopped: list[int] = []
    waiting = [pid]
    while waiting:
        for member in waiting:
            try:
                os.kill(member, signal.SIGSTOP)
                stopped.append(member)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + FREEZE_S
        while any(state(member) in RUNNING_STATES for member in waiting) and time.monotonic() < deadline:
            time.sleep(0.001)
        waiting = [member for member in descendants(pid) if member not in stopped]
    return stopped


def signal_all(pids: list[int], signum: int) -> None:
    for pid in pids:
        try:
            os.kill(pid, signum)
        except ProcessLookupError:
            pass


def kill_all(pids: list[int]) -> None:
    signal_all(pids, signal.SIGKILL)


def wait_gone(pids: list[int], timeout_s: float) -> bool:
    """Wait until none of ``pids`` runs any more (zombies count as gone); whether they went in time."""
    deadline = time.monotonic() + timeout_s
    while True:
        alive = [pid for pid in pids if state(pid) not in ("Z", "X")]
        if not alive or time.monotonic() > deadline:
            return not alive
        time.sleep(0.02)


# The init programs a container may run as its main process (``comm``: Podman's --init runs
# catatonit as /run/podman-init). An init forwards SIGINT to its child: signalled itself as well,
# the kernel would get two interrupts, the second landing wherever the first left it.
INIT_PROGRAMS = ("catatonit", "podman-init", "tini", "docker-init", "dumb-init")


def container_processes(main_pid: int) -> list[int]:
    """A container's processes as the host sees them: its main process's descendants, and the
    main process itself unless it is an init; read from /proc, where anyone may read ``stat``."""
    found = descendants(main_pid)
    program = program_name(main_pid)
    return found if not program or program in INIT_PROGRAMS else [main_pid, *found]

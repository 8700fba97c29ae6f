"""The warm containers' wrappers, run here as a container would run them (no Podman needed):
the shell one (plan/wrappers/warm.sh) and a Python kernel's own (plan/wrappers/warm_python.py)."""

import contextlib
import json
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from podkernel.plan.run_args import WARM_WAIT_NAME, PythonKernel, preloadable_python_kernel, wrapper

WARM_SCRIPT = wrapper("warm.sh")
WARM_PYTHON_SCRIPT = wrapper("warm_python.py")

# A stand-in kernel module: says how it was run, as `python -m` would have run it.
REPORTER = """
import json, os, sys
print(json.dumps({"name": __name__, "argv": sys.argv, "umask": os.umask(0o22), "path": sys.path[0],
                  "file": open(sys.argv[sys.argv.index("-f") + 1]).read()}))
"""


def program_names(pid: int) -> list[str]:
    """The ``comm`` of ``pid`` and of its children."""
    names = []
    for entry in Path("/proc").iterdir():
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            if entry.name == str(pid) or int(fields[1]) == pid:
                names.append((entry / "comm").read_text().strip())
        except (OSError, IndexError):
            continue
    return names


def wait_for_name(pid: int, name: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while name not in program_names(pid):
        assert time.monotonic() < deadline, f"{name} never ran: {program_names(pid)}"
        time.sleep(0.01)


@pytest.fixture
def container_dir(tmp_path):
    """Where the connection file goes, with the FIFO beside it, and the stand-in kernel module."""
    os.mkfifo(tmp_path / ".start")
    (tmp_path / "reporter.py").write_text(REPORTER)
    return tmp_path


def hand_over(container_dir: Path, contents: dict) -> None:
    with open(container_dir / ".start", "w") as fifo:
        json.dump(contents, fifo)


WRAPPERS = {
    "shell": lambda file, idle: (
        ["sh", "-c", WARM_SCRIPT, "podkernel-warm", file, idle] + [sys.executable, "-m", "reporter", "-f", file]
    ),
    "python": lambda file, idle: [sys.executable, "-c", WARM_PYTHON_SCRIPT, file, idle, "exec", "reporter", "-f", file],
}


@pytest.mark.parametrize("wrapper", WRAPPERS)
def test_the_wrapper_waits_then_runs_the_kernel_as_a_cold_start_would(container_dir, wrapper):
    file = str(container_dir / "connection.json")
    process = subprocess.Popen(
        WRAPPERS[wrapper](file, "60"),
        cwd=container_dir,
        env=dict(os.environ, PYTHONPATH=str(container_dir)),
        stdout=subprocess.PIPE,
        text=True,
    )
    wait_for_name(process.pid, "cat" if wrapper == "shell" else WARM_WAIT_NAME)
    hand_over(container_dir, {"key": "secret"})
    output, _ = process.communicate(timeout=30)
    report = json.loads(output)
    assert report["name"] == "__main__"
    assert report["argv"] == [str(container_dir / "reporter.py"), "-f", file]
    assert json.loads(report["file"]) == {"key": "secret"}
    assert report["umask"] == 0o022, "the kernel must get the image's umask, not the wait's"
    assert report["path"] == str(container_dir)
    assert stat.S_IMODE(os.stat(file).st_mode) == 0o600


@pytest.mark.parametrize("wrapper", WRAPPERS)
def test_a_wrapper_nobody_hands_a_connection_file_ends_after_its_idle_time(container_dir, wrapper):
    """Its main process ends (in a container, the init then ends, and with it the rest: here its
    process group is killed)."""
    started = time.monotonic()
    process = subprocess.Popen(
        WRAPPERS[wrapper](str(container_dir / "connection.json"), "1"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        process.wait(timeout=15)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
    assert time.monotonic() - started < 15
    assert not (container_dir / "connection.json").exists()


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        (
            ["sh", "-c", 'exec python -m ipykernel_launcher -f "$PODKERNEL_CONNECTION_FILE"'],
            PythonKernel("python", "ipykernel_launcher", ["-f", "/run/podkernel/connection.json"], True),
        ),
        (
            ["/bin/bash", "-c", "python3.12 -m ipykernel -f ${DOCKERNEL_CONNECTION_FILE} --debug"],
            PythonKernel("python3.12", "ipykernel", ["-f", "/run/podkernel/connection.json", "--debug"], True),
        ),
        (
            ["/usr/bin/python3", "-m", "ipykernel_launcher", "-f", "/x"],
            PythonKernel("/usr/bin/python3", "ipykernel_launcher", ["-f", "/x"], False),
        ),
        # What a shell would do more than expand the connection file's variable is left to it.
        (["sh", "-c", "exec python -m ipykernel_launcher -f $HOME/c.json"], None),
        (["sh", "-c", 'cd /work && exec python -m ipykernel_launcher -f "$PODKERNEL_CONNECTION_FILE"'], None),
        (["sh", "-c", "exec python -m ipykernel_launcher -f '$PODKERNEL_CONNECTION_FILE'"], None),
        (["sh", "-c", 'FOO=1 python -m ipykernel_launcher -f "$PODKERNEL_CONNECTION_FILE"'], None),
        (["sh", "-c", 'exec python -m ipykernel_launcher -f "$PODKERNEL_CONNECTION_FILE'], None),
        # Interpreter options, other modules and other languages start as they are.
        (["python3", "-X", "frozen_modules=off", "-m", "ipykernel_launcher"], None),
        (["python3", "-m", "my_kernel", "-f", "/x"], None),
        (["R", "--slave", "-e", "IRkernel::main()", "--args", "/x"], None),
        (["/entrypoint.sh", "python", "-m", "ipykernel_launcher"], None),
    ],
)
def test_which_kernel_commands_wait_in_their_own_python(command, expected):
    assert preloadable_python_kernel(command) == expected


def test_the_python_wrapper_names_itself_as_the_launcher_looks_for_it():
    """warm.py finds a waiting Python kernel by the name warm_python.py gives its process."""
    assert f'comm.write("{WARM_WAIT_NAME}")' in WARM_PYTHON_SCRIPT

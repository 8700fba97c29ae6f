"""install's trial start and podkernel check, on real images: what works is reported in one line,
what does not is explained, never installed, and leaves nothing running."""

import json
import os
import random
import re
import signal
import subprocess
import sys
import time

import pytest

from helpers import podkernel
from kernel_helpers import DEBIAN_IMAGE, IRKERNEL_IMAGE, PYPI_IMAGE, key_dirs, leftovers, podman
from podkernel.system import kernelspecs

NOT_INSTALLED = "nothing was installed"
# A kernel that listens on 127.0.0.1 only: its own connection file, rewritten.
LOOPBACK_KERNEL = (
    'sed s/0.0.0.0/127.0.0.1/ "$PODKERNEL_CONNECTION_FILE" > /tmp/loopback.json'
    " && exec python3 -m ipykernel_launcher -f /tmp/loopback.json"
)


def installed_specs(jupyter_dirs) -> dict:
    kernels = jupyter_dirs / "kernels"
    if not kernels.exists():
        return {}
    return {entry.name: json.loads((entry / "kernel.json").read_text()) for entry in kernels.iterdir()}


@pytest.mark.parametrize(
    "image, options, implementation, language",
    [
        (DEBIAN_IMAGE, [], "ipython", "python"),
        (PYPI_IMAGE, ["--interrupt-mode", "signal"], "ipython", "python"),
        (IRKERNEL_IMAGE, ["--interrupt-mode", "signal"], "IRkernel", "R"),
    ],
    ids=["debian-ipykernel", "pypi-ipykernel-signal", "irkernel-signal"],
)
def test_a_working_kernel_is_tried_and_its_language_taken(jupyter_dirs, image, options, implementation, language):
    result = podkernel("install", "--name", "tried", *options, image, check=True)
    reports = [line for line in result.stdout.splitlines() if line.startswith("ok: ")]
    assert len(reports) == 1, result.stdout
    pattern = (
        rf"ok: {implementation} \S+ \({language} \S+\), ready in \d+\.\d s, "
        r"interrupt works \(\d+\.\d\d s(, at try \d)?\)"
    )
    assert re.fullmatch(pattern, reports[0]), reports[0]
    spec = installed_specs(jupyter_dirs)["tried"]
    assert spec["language"] == language
    assert spec["display_name"] == f"{image.rsplit('/', 1)[-1]} ({language[0].upper() + language[1:]}, podkernel)"
    assert "Warning" not in result.stderr, result.stderr


def image_with_failing_command(tmp_path) -> str:
    (tmp_path / "Containerfile").write_text(
        f'FROM {DEBIAN_IMAGE}\nCMD ["sh", "-c", "echo \'setting up the kernel failed: no licence\' >&2; exit 3"]\n'
    )
    return str(tmp_path)


@pytest.mark.parametrize(
    "target, args, fragments",
    [
        (
            DEBIAN_IMAGE,
            ["--", "sleep", "infinity"],
            ["no reply within 5 s", "nothing in it listens on the kernel's ports", "(it runs: sleep infinity)"],
        ),
        (DEBIAN_IMAGE, ["--", "true"], ["exited (status 0) before a kernel answered", "its command ended"]),
        (DEBIAN_IMAGE, ["--", "sh", "-c", LOOPBACK_KERNEL], ["listens on 127.0.0.1 inside its container"]),
        (DEBIAN_IMAGE, ["--", "python3", "-m", "no_such_kernel"], ["exited with status 1", "No module named"]),
        ("--build", ["{folder}"], ["exited with status 3", "setting up the kernel failed: no licence"]),
    ],
    ids=["sleep-infinity", "true", "listens-on-loopback", "missing-module", "built-image-exits-3"],
)
def test_a_kernel_that_does_not_work_is_explained_and_not_installed(jupyter_dirs, tmp_path, target, args, fragments):
    folder = image_with_failing_command(tmp_path)
    args = [arg.replace("{folder}", folder) for arg in args]
    started = time.monotonic()
    result = podkernel("install", "--name", "broken", "--check-timeout", "5", target, *args)
    took = time.monotonic() - started
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    error = result.stderr[result.stderr.index("Error: ") :]
    first = error.splitlines()[0]
    assert NOT_INSTALLED in first and "--no-check" in first, error
    for fragment in fragments:
        assert fragment in error, error
    assert installed_specs(jupyter_dirs) == {}
    assert took < 30, f"the trial took {took:.0f} s"
    print(error)  # the closing note quotes these


def test_no_check_installs_without_starting(jupyter_dirs):
    result = podkernel("install", "--no-check", "--name", "unchecked", DEBIAN_IMAGE, "--", "true", check=True)
    assert not any(line.startswith("ok: ") for line in result.stdout.splitlines())
    spec = installed_specs(jupyter_dirs)["unchecked"]
    assert spec["language"] == "python" and spec["display_name"] == "podkernel-test-debian-ipykernel (podkernel)"
    assert podman("events", "--stream=false", "--since", "2m", "--filter", "label=io.podkernel.kernel=unchecked") == ""


def test_check_tries_an_installed_kernel(install):
    working = install("--name", "working", "--interrupt-mode", "signal", IRKERNEL_IMAGE)
    result = podkernel("check", working, check=True)
    assert re.fullmatch(
        r"ok: IRkernel \S+ \(R \S+\), ready in \d+\.\d s, interrupt works \(\S+ s(, at try \d)?\)\n",
        result.stdout,
    )
    # Installed without a trial as python (the default): check says that the kernel is R.
    assert "its language is R, but its kernelspec says python" in result.stderr
    broken = install("--name", "broken", DEBIAN_IMAGE, "--", "true")
    result = podkernel("check", broken)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.startswith("Error: the kernel's container exited (status 0)"), result.stderr
    assert "podkernel show broken" in result.stderr


def test_an_interrupt_that_does_not_arrive_is_reported(jupyter_dirs):
    """IRkernel does not take interrupt requests: in message mode, its cell keeps running."""
    result = podkernel("install", "--name", "r-message", IRKERNEL_IMAGE, check=True)
    assert "started, but interrupts do not work: IRkernel" in result.stdout
    assert re.search(r"a waiting cell kept running 5 s after \d interrupts \(message mode\)", result.stdout)
    assert "reinstall with --interrupt-mode signal" in result.stderr
    assert "r-message" in installed_specs(jupyter_dirs)  # it works otherwise: installed, with the warning


def test_an_explicit_language_wins_with_a_warning(jupyter_dirs):
    result = podkernel("install", "--name", "claims-r", "--language", "R", DEBIAN_IMAGE, check=True)
    assert "the kernel says its language is python, but its kernelspec says R" in result.stderr
    assert installed_specs(jupyter_dirs)["claims-r"]["language"] == "R"


def test_a_failed_trial_keeps_the_kernel_it_would_replace(jupyter_dirs):
    podkernel("install", "--no-check", "--name", "kept", DEBIAN_IMAGE, check=True)
    before = installed_specs(jupyter_dirs)["kept"]
    result = podkernel("install", "--replace", "--name", "kept", "--check-timeout", "5", DEBIAN_IMAGE, "--", "true")
    assert result.returncode == 1
    assert installed_specs(jupyter_dirs)["kept"] == before


def test_the_trial_runs_the_image_that_install_built(jupyter_dirs, tmp_path):
    """Every build of this folder is a new image (--no-cache, a time stamp): had the trial's start
    built again, the kernel's tag would name another image than the one install printed."""
    (tmp_path / "Containerfile").write_text(f"FROM {DEBIAN_IMAGE}\nRUN date +%s%N > /built-at\n")
    result = podkernel("install", "--name", "fresh", "--build", str(tmp_path), "--no-cache", check=True)
    printed = next(line for line in result.stdout.splitlines() if line.startswith("Image: ")).split()[1]
    tagged = podman("image", "inspect", "--format", "{{.Id}}", "localhost/podkernel-build/fresh").strip()
    assert tagged == printed.removeprefix("sha256:")
    assert any(line.startswith("ok: ") for line in result.stdout.splitlines())


@pytest.mark.cleanup_grace(20)
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM, signal.SIGKILL], ids=["INT", "TERM", "KILL"])
def test_install_stopped_at_a_random_moment_of_its_trial_leaves_nothing(jupyter_dirs, signum):
    """Ctrl-C, a SIGTERM or a SIGKILL at any moment of install: a complete kernelspec or none, and no
    container or launcher left (a SIGKILLed install's launcher sees its frontend die), nor its
    staged kernelspec, once another install has run (after each test: assert_nothing_left)."""
    seed = int(os.environ.get("PODKERNEL_TRIAL_SEED", random.randrange(2**32)))
    chooser = random.Random(seed)
    for attempt in range(3):
        delay = chooser.uniform(0.2, 2.5)
        install = subprocess.Popen(
            [sys.executable, "-m", "podkernel", "install", "--replace", "--name", "stopped"]
            + ["--interrupt-mode", "signal", IRKERNEL_IMAGE],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        time.sleep(delay)
        install.send_signal(signum)
        out, err = install.communicate(timeout=60)
        where = f"seed {seed} (PODKERNEL_TRIAL_SEED), attempt {attempt}, {signum.name} after {delay:.2f} s"
        assert "Traceback" not in err, f"{where}: {err}"
        try:
            specs = installed_specs(jupyter_dirs)
        except ValueError as error:
            raise AssertionError(f"{where}: half a kernelspec: {error}") from None
        if install.returncode == 0:
            assert "stopped" in specs and "Installed kernel" in out, f"{where}: {out}{err}"
        if "stopped" in specs:
            assert specs["stopped"]["language"] == "R", where
        # A SIGKILLed install cannot remove its staged kernelspec (no key in it): the next
        # install's trial does, as the last step below checks.
        staged = {path for path in key_dirs() if f"podkernel-spec-{install.pid}-" in path}
        containers, processes = leftovers(20, expected=frozenset(staged if signum == signal.SIGKILL else ()))
        assert (containers, processes) == ([], []), f"{where}: left {containers} {processes}"
    with kernelspecs.staged({}, "next"):  # what the next install's trial does first
        pass


def test_the_trial_with_the_docker_engine(jupyter_dirs, docker_host):
    result = podkernel("install", "--engine", "docker", "--name", "dockered", DEBIAN_IMAGE, check=True)
    assert any(line.startswith("ok: ipython ") for line in result.stdout.splitlines()), result.stdout
    assert installed_specs(jupyter_dirs)["dockered"]["language"] == "python"
    result = podkernel("install", "--engine", "docker", "--name", "ends", DEBIAN_IMAGE, "--", "sh", "-c", "exit 4")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "the kernel's container exited with status 4" in result.stderr, result.stderr
    assert "ends" not in installed_specs(jupyter_dirs)

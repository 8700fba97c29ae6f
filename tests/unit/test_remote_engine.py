"""Kernels on another machine, the parts that need no SSH and no remote host: the remote
settings, the plan, the SSH command lines, and the session's dead-man's switch (run by a real
``sh`` against a stand-in ``podman`` that records what it is asked to do)."""

import os
import shlex
import signal
import subprocess
import time

import pytest

from podkernel.commands.install import settings_from_args
from podkernel.engines import container_engine, engine_from_word
from podkernel.engines.remote.engine import RemotePodmanEngine, session_script
from podkernel.engines.remote.link import SshLink, ssh_advice
from podkernel.errors import PodkernelError
from podkernel.model.connection import CONTAINER_PATH, START_FIFO_PATH
from podkernel.model.launch import Launch, new_launch
from podkernel.model.remote_host import RemoteHost, remote_setting
from podkernel.model.settings import KernelSettings
from podkernel.plan import run_args as plan

URL = "ssh://ana@gpu-box:2222/run/user/1000/podman/podman.sock"
PORTS = {"shell_port": 5001, "iopub_port": 5002, "stdin_port": 5003, "control_port": 5004, "hb_port": 5005}


def test_a_remote_url_is_read_as_podman_reads_it():
    host = RemoteHost.parse(URL, "/keys/id")
    assert host == RemoteHost("ana", "gpu-box", 2222, "/run/user/1000/podman/podman.sock", "/keys/id")
    assert host.url == URL and host.destination == "ana@gpu-box"
    ipv6 = RemoteHost.parse("ssh://root@[fd00::2]:22/run/podman/podman.sock")
    assert ipv6.host == "fd00::2" and ipv6.url == "ssh://root@[fd00::2]:22/run/podman/podman.sock"
    no_user = RemoteHost.parse("ssh://gpu-box:22/run/podman/podman.sock")
    assert no_user.destination == "gpu-box" and no_user.url == "ssh://gpu-box:22/run/podman/podman.sock"
    assert RemoteHost.from_word(host.to_word()) == host
    assert engine_from_word(host.to_word()).host == host


@pytest.mark.parametrize(
    "url",
    ["ssh://root@gpu-box/run/podman/podman.sock", "tcp://gpu-box:22/run/podman.sock", "ssh://root@gpu-box:22"],
    ids=["no port", "not ssh", "no socket"],
)
def test_a_malformed_url_is_one_error_saying_the_form(url):
    with pytest.raises(PodkernelError, match=r"ssh://USER@HOST:PORT/path/to/podman.sock"):
        RemoteHost.parse(url)


def test_the_remote_options_are_checked(tmp_path):
    key = tmp_path / "id_ed25519"
    key.write_text("key")
    assert remote_setting(None, URL, str(key)) == {"url": URL, "identity": str(key)}
    assert remote_setting("gpu", None, None) == {"connection": "gpu"}
    assert remote_setting(None, None, None) == {}
    for args, message in [
        (("gpu", URL, None), "not both"),
        ((None, None, str(key)), "--identity goes with --url"),
        ((None, URL, str(tmp_path / "missing")), "no such file"),
        ((None, "ssh://gpu-box/x", None), "with the port"),
    ]:
        with pytest.raises(PodkernelError, match=message):
            remote_setting(*args)


def test_the_remote_setting_survives_the_kernelspec():
    settings = KernelSettings(name="far", image="img", remote={"url": URL, "identity": "/keys/id"})
    assert KernelSettings.from_metadata("far", settings.to_metadata()) == settings
    assert settings.where == URL and KernelSettings(name="near", image="img").where == "this machine"
    broken = dict(settings.to_metadata(), remote={"url": URL, "port": "22"})
    with pytest.raises(PodkernelError, match="metadata.podkernel.remote"):
        KernelSettings.from_metadata("far", broken)


@pytest.mark.parametrize("flag", ["mount_cwd", "keep_id", "warm"])
def test_flags_for_this_machine_are_refused_for_another(flag):
    with pytest.raises(PodkernelError, match="kernels on this machine"):
        settings_from_args("img", False, [], "far", {}, **{flag: True}, remote={"connection": "gpu"})


def test_another_engine_than_podman_is_refused_for_another_machine():
    with pytest.raises(PodkernelError, match="run with Podman"):
        container_engine("docker", {"url": URL})


def remote_launch() -> Launch:
    return new_launch(
        "far",
        "sha256abc",
        suffix="1a2b3c4d",
        ports=PORTS,
        published_ports={key: "" for key in PORTS},
        connection_file="/home/u/.local/share/jupyter/runtime/kernel-1.json",
        private_dir="/run/user/1000/podkernel-77-0011223344556677",
        launcher_pid=4242,
        cwd="/home/u/project",
        userns=None,
        selinux=False,
    )


def test_the_remote_plan_hands_over_the_key_as_a_secret_and_publishes_on_the_remotes_loopback():
    engine = RemotePodmanEngine(RemoteHost.parse(URL))
    settings = KernelSettings(name="far", image="img", run_args=["--gpus", "all"])
    launch = remote_launch()
    command = ["python3", "-m", "ipykernel_launcher", "-f", CONTAINER_PATH]
    args = plan.remote_run_args(settings, launch, engine, command)
    assert args[:2] == ["--gpus", "all"]  # the user's run args, verbatim
    assert f"{launch.container_name},type=mount,target={START_FIFO_PATH},mode=0444" in args
    assert ["--tmpfs", f"{os.path.dirname(CONTAINER_PATH)}:mode=1777"] == args[args.index("--tmpfs") :][:2]
    published = [args[i + 1] for i, arg in enumerate(args) if arg == "--publish"]
    assert published == [f"127.0.0.1::{port}" for port in PORTS.values()]
    # Nothing that names a file of this machine, and no option remote Podman refuses or ignores.
    for absent in ("--pidfile", "--log-driver", "--volume", launch.connection_copy, launch.container_pidfile):
        assert absent not in args
    # The kernel's own Python waits for the connection file (there at once), its modules imported.
    entrypoint = args.index("--entrypoint")
    assert args[entrypoint + 1 : entrypoint + 4] == ["python3", "sha256abc", "-c"]
    assert args[-7:] == [plan.wrapper("warm_python.py"), CONTAINER_PATH, str(plan.REMOTE_WAIT_S), "exec", *command[2:]]


def test_ssh_never_asks_and_checks_the_host_key(monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path))
    link = SshLink(RemoteHost.parse(URL, "/keys/id"))
    args = link.ssh("-O", "check")
    text = " ".join(args)
    for option in ("BatchMode=yes", "StrictHostKeyChecking=yes", f"UserKnownHostsFile={tmp_path}/.ssh/known_hosts"):
        assert option in text
    assert args[-1] == "ana@gpu-box" and ["-p", "2222"] == args[args.index("-p") :][:2]
    assert ["-i", "/keys/id", "-o", "IdentitiesOnly=yes"] == args[args.index("-i") :][:4]
    assert os.path.basename(link.directory).startswith("podkernel-ssh-")


def test_what_to_do_about_a_failed_ssh_connection():
    host = RemoteHost.parse(URL)
    assert "ssh -p 2222 ana@gpu-box once" in ssh_advice(["Host key verification failed."], host)
    assert "check the user and the key" in ssh_advice(["ana@gpu-box: Permission denied (publickey)."], host)
    assert "is up" in ssh_advice(["ssh: connect to host gpu-box port 2222: Connection refused"], host)


@pytest.fixture
def session(tmp_path, request):
    """The session script, run by sh as sshd would run it, with a stand-in ``podman`` on PATH
    that records its arguments (and, for ``logs --follow``, streams until it is killed)."""
    record = tmp_path / "calls"
    fake = tmp_path / "bin" / "podman"
    fake.parent.mkdir()
    fake.write_text(
        "#!/bin/sh\n"
        f'echo "$*" >> {shlex.quote(str(record))}\n'
        'case "$*" in *"logs --follow"*) echo kernel output; exec sleep 600;; esac\n'
        'case "$*" in *" wait "*) exec sleep "${FAKE_CONTAINER_RUNS_S:-600}";; esac\n'
    )
    fake.chmod(0o755)
    process = subprocess.Popen(
        ["sh", "-c", session_script(), "podkernel-session", "podkernel-far-1", "/run/podman/podman.sock", "2"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env=dict(os.environ, PATH=f"{fake.parent}:{os.environ['PATH']}", **getattr(request, "param", {})),
        start_new_session=True,
    )

    def calls() -> list[str]:
        return record.read_text().splitlines() if record.exists() else []

    yield process, calls
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def wait_for_removal(calls, timeout: float) -> float:
    started = time.monotonic()
    while not any(" rm --force" in call for call in calls()):
        assert time.monotonic() - started < timeout, calls()
        time.sleep(0.05)
    return time.monotonic() - started


def test_the_session_streams_the_kernels_output_and_keeps_it_while_heartbeats_come(session):
    process, calls = session
    assert process.stdout.readline() == b"kernel output\n"
    for _ in range(6):  # 3 s of heartbeats, past the 2 s timeout
        process.stdin.write(b"beat\n")
        process.stdin.flush()
        time.sleep(0.5)
    assert sorted(calls()) == [
        "--url unix:///run/podman/podman.sock logs --follow podkernel-far-1",
        "--url unix:///run/podman/podman.sock wait podkernel-far-1",
    ]


@pytest.mark.parametrize("session", [{"FAKE_CONTAINER_RUNS_S": "1"}], indirect=True)
def test_the_session_ends_when_the_container_has_ended_even_if_its_log_stream_does_not(session):
    process, _ = session
    started = time.monotonic()
    for _ in range(10):
        process.stdin.write(b"beat\n")
        process.stdin.flush()
        if process.poll() is not None:
            break
        time.sleep(0.5)
    process.wait(timeout=5)
    assert 2.5 < time.monotonic() - started < 4.5  # 1 s, then 2 s for the last lines
    assert process.stdout.read() == b"kernel output\n"


def test_the_session_removes_the_container_and_secret_when_heartbeats_stop(session):
    process, calls = session
    process.stdin.write(b"beat\n")
    process.stdin.flush()
    assert 1 < wait_for_removal(calls, 5) < 4
    time.sleep(0.5)
    assert "--url unix:///run/podman/podman.sock rm --force --ignore --time 0 podkernel-far-1" in calls()
    assert "--url unix:///run/podman/podman.sock secret rm podkernel-far-1" in calls()


def test_the_session_removes_the_container_at_once_when_its_input_ends(session):
    process, calls = session
    process.stdin.close()  # the launcher died, or ssh did
    assert wait_for_removal(calls, 1) < 1

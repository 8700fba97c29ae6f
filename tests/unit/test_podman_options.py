"""Which run and build args podkernel refuses, read the way Podman's parser reads them."""

import pytest

from podkernel.errors import PodkernelError
from podkernel.plan.podman_options import Option, check_build_args, check_run_args, gives_option, parse_run_options


@pytest.mark.parametrize(
    "run_args, refused",
    [
        (["-d"], "--detach"),
        (["--detach"], "--detach"),
        (["-i"], "--interactive"),
        (["-t"], "--tty"),
        (["-it"], "--interactive"),
        (["-v", "/a:/b", "-ti"], "--tty"),
        (["-a", "stdout"], "--attach"),
        (["-astdout"], "--attach"),
        (["--attach=stderr"], "--attach"),
        (["--rm"], "--rm"),
        (["--rm=false"], "--rm"),
        (["--name", "mine"], "--name"),
        (["--name=mine"], "--name"),
        (["--pidfile", "/tmp/x"], "--pidfile"),
    ],
)
def test_reserved_run_options_are_refused(run_args, refused):
    with pytest.raises(PodkernelError, match=f"option {refused} is not allowed"):
        check_run_args(run_args)


@pytest.mark.parametrize(
    "run_args",
    [
        [],
        ["-v", "/data:/data", "-e", "A=-d"],
        ["--entrypoint", "-it"],
        ["-e", "--rm"],
        ["-p8888:8888", "--publish", "127.0.0.1:9:9"],
        ['--entrypoint=["/bin/bash", "-c"]'],
        ["--device=/dev/kfd", "--group-add", "keep-groups", "--ipc=host", "--shm-size", "8G", "--user=root"],
        ["--privileged", "--read-only", "-w", "/work", "--hostname=-d"],
        ["-P", "-q"],
    ],
)
def test_ordinary_run_args_pass(run_args):
    check_run_args(run_args)


def test_options_are_read_like_podman_reads_them():
    assert parse_run_options(["-it", "-p8:8", "-e", "A=1", "--init", "--user=1000", "--memory", "2g", "img?"]) == [
        Option("--interactive", None),
        Option("--tty", None),
        Option("--publish", "8:8"),
        Option("--env", "A=1"),
        Option("--init", None),
        Option("--user", "1000"),
        Option("--memory", "2g"),
    ]


@pytest.mark.parametrize("build_args", [["--iidfile", "x"], ["--iidfile=x"], ["--no-cache", "--iidfile", "/tmp/i"]])
def test_iidfile_in_build_args_is_refused(build_args):
    with pytest.raises(PodkernelError, match="--iidfile is not allowed"):
        check_build_args(build_args)


def test_ordinary_build_args_pass():
    check_build_args(["--build-arg=A=B", "-v", "/etc/ssl/certs:/etc/ssl/certs:ro", "--no-cache", "-f", "Other"])


@pytest.mark.parametrize(
    "run_args, expected",
    [([], False), (["--init"], True), (["--init=false"], True), (["-e", "--init"], False)],
)
def test_gives_option(run_args, expected):
    assert gives_option(run_args, "--init") is expected


@pytest.mark.parametrize(
    "run_args, fragments",
    [
        (["--no-such-flag", "-v", "/d:/d"], ["--no-such-flag", "--no-such-flag=VALUE", "=true"]),
        (["-v", "/d:/d", "python", "-m", "ipykernel_launcher"], ["'python'", "-- separator"]),
        (["-X"], ["-X", "not a podman run option"]),
        (["--network=host"], ["--network=host", "every interface"]),
        (["--net", "host"], ["--net=host"]),
        (["--network", "none"], ["--network=none"]),
    ],
)
def test_run_args_that_cannot_be_read_or_kept_local_are_refused(run_args, fragments):
    with pytest.raises(PodkernelError) as error:
        check_run_args(run_args)
    for fragment in fragments:
        assert fragment in str(error.value)


def test_flags_never_take_the_next_argument():
    """--no-hostname (Podman 5.4) is a flag; an unknown option with =VALUE is read without guessing."""
    check_run_args(["--no-hostname", "-v", "/d:/d", "--future-option=x", "--network=mynet"])
    assert [option.name for option in parse_run_options(["--no-hostname", "-v", "/d:/d"])] == [
        "--no-hostname",
        "--volume",
    ]

# ruff: noqa: E501  (the README's command lines, verbatim)
"""Section splitting for every install example the README gives, and the edge cases around them."""

import re
import shlex
from pathlib import Path

import pytest

from podkernel.plan.install_args import Sections, split_build_args, split_image_args

README = Path(__file__).resolve().parents[2] / "README.md"

DATASCIENCE = Sections(
    run_args=['--entrypoint=["/bin/bash", "-c"]'],
    command=["python -m ipykernel_launcher -f $PODKERNEL_CONNECTION_FILE"],
)
ROCM_RUN = [
    "-v",
    "/etc/ssl/certs:/etc/ssl/certs:ro",
    "--device=/dev/kfd",
    "--device=/dev/dri",
    "--ipc=host",
    "--group-add",
    "keep-groups",
    "--cap-add=SYS_PTRACE",
    "--security-opt",
    "seccomp=unconfined",
    "--shm-size",
    "8G",
    "--user=root",
]

# Each install command line in the README, as a user types it, and the sections it must give.
EXAMPLES = {
    'podkernel install \\\n    jupyter/datascience-notebook:latest \'--entrypoint=["/bin/bash", "-c"]\' -- '
    "'python -m ipykernel_launcher -f $PODKERNEL_CONNECTION_FILE'": DATASCIENCE,
    'podkernel install jupyter/datascience-notebook:latest \'--entrypoint=["/bin/bash", "-c"]\' -- '
    "'python -m ipykernel_launcher -f $PODKERNEL_CONNECTION_FILE'": DATASCIENCE,
    "podkernel install --build ~/jupyter-container-kernels/python": Sections(),
    "podkernel install --build examples/python": Sections(),
    "podkernel install --build ~/jupyter-container-kernels/python -- -v $HOME:$HOME -- bash": Sections(
        run_args=["-v", "$HOME:$HOME"], command=["bash"]
    ),
    "podkernel install --build ~/jupyter-container-kernels/python -- --build-arg=somearg=somevalue -- -v $HOME:$HOME -- bash": Sections(
        build_args=["--build-arg=somearg=somevalue"], run_args=["-v", "$HOME:$HOME"], command=["bash"]
    ),
    "podkernel install --build ~/jupyter-container-kernels/python --build-arg=somearg=somevalue -- -v $HOME:$HOME -- bash": Sections(
        build_args=["--build-arg=somearg=somevalue"], run_args=["-v", "$HOME:$HOME"], command=["bash"]
    ),
    "podkernel install --build ~/opt/jupyter-container-kernels/rocm-python -- \\\n"
    "    -v /etc/ssl/certs:/etc/ssl/certs:ro \\\n"
    "    -- \\\n"
    "    -v /etc/ssl/certs:/etc/ssl/certs:ro \\\n"
    "    --device=/dev/kfd \\\n"
    "    --device=/dev/dri \\\n"
    "    --ipc=host \\\n"
    "    --group-add keep-groups \\\n"
    "    --cap-add=SYS_PTRACE \\\n"
    "    --security-opt seccomp=unconfined \\\n"
    "    --shm-size 8G \\\n"
    "    --user=root": Sections(build_args=["-v", "/etc/ssl/certs:/etc/ssl/certs:ro"], run_args=ROCM_RUN),
    'podkernel install localhost/podkernel-test-debian-ipykernel \'--entrypoint=["/bin/sh", "-c"]\' -- '
    "'exec python3 -m ipykernel_launcher -f $PODKERNEL_CONNECTION_FILE'": Sections(
        run_args=['--entrypoint=["/bin/sh", "-c"]'],
        command=["exec python3 -m ipykernel_launcher -f $PODKERNEL_CONNECTION_FILE"],
    ),
}


def shell_words(command_line: str) -> list[str]:
    """Split a command line as a POSIX shell does (line continuations included), without expansion."""
    return shlex.split(command_line.replace("\\\n", " "))


def sections_of(command_line: str) -> Sections:
    words = shell_words(command_line)
    assert words[:2] == ["podkernel", "install"]
    words = words[2:]
    while words[0].startswith("--") and words[0] != "--build":
        words = words[2:] if words[0] in ("--name", "--display-name", "--env", "--language", "--prefix") else words[1:]
    if words[0] == "--build":
        return split_build_args(words[2:])
    return split_image_args(words[1:])


@pytest.mark.parametrize("command_line", list(EXAMPLES))
def test_example_splits_into_its_sections(command_line):
    assert sections_of(command_line) == EXAMPLES[command_line]


def readme_install_commands() -> list[str]:
    text = README.read_text()
    blocks = re.findall(r"```sh\n(.*?)```", text, flags=re.S)
    commands = []
    for block in blocks:
        for match in re.finditer(r"^podkernel install(?:.*\\\n)*.*$", block, flags=re.M):
            commands.append(match.group(0))
    return commands


def test_every_readme_install_example_is_covered():
    commands = readme_install_commands()
    assert len(commands) >= 6
    for command_line in commands:
        assert command_line in EXAMPLES, f"README example without an expected parse: {command_line}"


@pytest.mark.parametrize(
    "args, expected",
    [
        ([], Sections()),
        (["-v", "/a:/b"], Sections(run_args=["-v", "/a:/b"])),
        (["--", "ipython", "kernel"], Sections(command=["ipython", "kernel"])),
        (["-e", "A=1", "--"], Sections(run_args=["-e", "A=1"])),
        # older form: a leading "--" before the run args
        (["--", "-e", "A=1", "--", "bash"], Sections(run_args=["-e", "A=1"], command=["bash"])),
        (["--", "--", "bash"], Sections(command=["bash"])),
        # "-- A" alone: run args when A is nothing but run options, as with "-- A -- B"
        (["--", "-v", "/d:/d"], Sections(run_args=["-v", "/d:/d"])),
        (["--", "-v", "/d:/d", "--", "bash"], Sections(run_args=["-v", "/d:/d"], command=["bash"])),
        (["--", "-m", "ipykernel_launcher", "-f", "$F"], Sections(command=["-m", "ipykernel_launcher", "-f", "$F"])),
        (["--", "python", "-m", "x"], Sections(command=["python", "-m", "x"])),
        # separators after the command section belong to the command
        (
            ["-e", "A=1", "--", "tool", "--", "--flag"],
            Sections(run_args=["-e", "A=1"], command=["tool", "--", "--flag"]),
        ),
        # inline JSON passes through untouched
        (
            ['--entrypoint=["/bin/sh", "-c"]', "--", "exec x"],
            Sections(run_args=['--entrypoint=["/bin/sh", "-c"]'], command=["exec x"]),
        ),
    ],
)
def test_image_sections(args, expected):
    assert split_image_args(args) == expected


@pytest.mark.parametrize(
    "args, expected",
    [
        ([], Sections()),
        (["--no-cache"], Sections(build_args=["--no-cache"])),
        (["--no-cache", "--", "-v", "/a:/b"], Sections(build_args=["--no-cache"], run_args=["-v", "/a:/b"])),
        (["--", "-v", "/a:/b"], Sections(run_args=["-v", "/a:/b"])),
        (["--", "--build-arg", "A=1"], Sections(build_args=["--build-arg", "A=1"])),
        (["--", "--", "--", "bash"], Sections(command=["bash"])),
        (["--", "--", "-v", "/a:/b", "--", "-c", "x"], Sections(run_args=["-v", "/a:/b"], command=["-c", "x"])),
        (
            ["-f", "Other", "--", "-e", "A=1", "--", "bash", "--", "x"],
            Sections(build_args=["-f", "Other"], run_args=["-e", "A=1"], command=["bash", "--", "x"]),
        ),
    ],
)
def test_build_sections(args, expected):
    assert split_build_args(args) == expected

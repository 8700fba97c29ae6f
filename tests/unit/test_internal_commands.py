"""The hidden subcommands: each defined once (its name, its arguments, the line that runs it and the
parser that reads it back), each with a handler, and a wrong argument count a clear error."""

import subprocess
import sys

import pytest

from podkernel.errors import PodkernelError
from podkernel.launcher.internal import HANDLERS
from podkernel.model.internal_commands import INTERNAL_COMMANDS, REMOVE_ABANDONED, WARM_UP


def test_every_hidden_subcommand_has_a_handler_that_takes_its_arguments():
    assert set(HANDLERS) == set(INTERNAL_COMMANDS)
    for name, command in INTERNAL_COMMANDS.items():
        handler = HANDLERS[name].__code__
        assert handler.co_argcount == len(command.params), name


def test_the_line_that_runs_one_is_read_back_by_its_parser():
    line = REMOVE_ABANDONED.argv("podman", "podkernel-k-1a2b3c4d", "/tmp/podkernel-1-ab", "/tmp/p/container.pid", 7)
    assert line[:4] == [sys.executable, "-m", "podkernel", "remove-abandoned"]
    assert REMOVE_ABANDONED.parse(line[4:]) == ["podman", "podkernel-k-1a2b3c4d", "/tmp/podkernel-1-ab"] + [
        "/tmp/p/container.pid",
        "7",
    ]
    assert WARM_UP.parse(["k"]) == ["k"] and WARM_UP.parse(["k", "/dir"]) == ["k", "/dir"]


@pytest.mark.parametrize("args", [[], ["podman", "c"], ["a", "b", "c", "d", "e", "f"]])
def test_a_wrong_argument_count_is_a_clear_error(args):
    with pytest.raises(PodkernelError, match="takes ENGINE CONTAINER PRIVATE_DIR PIDFILE OUTPUT_FD"):
        REMOVE_ABANDONED.parse(args)
    with pytest.raises(PodkernelError):
        REMOVE_ABANDONED.argv(*args)


def test_run_with_a_wrong_argument_count_it_says_so_in_one_line():
    result = subprocess.run([sys.executable, "-m", "podkernel", "stop-build", "podman"], capture_output=True, text=True)
    assert result.returncode == 1
    assert result.stderr.strip() == (
        "podkernel: error: podkernel stop-build takes ENGINE IIDFILE OUTPUT_FD (1 given): it is run by podkernel itself"
    )

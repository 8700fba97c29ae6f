"""The kernel in its host: the notebook's folder, file ownership, and where build output goes."""

import os
import subprocess

import pytest
from jupyter_client.manager import start_new_kernel

from kernel_helpers import DEBIAN_IMAGE, UID1000_IMAGE, execute

ROOTLESS = os.geteuid() != 0


def write_from_kernel(name: str, folder, **start_options) -> tuple[str, os.stat_result]:
    """Start the kernel in ``folder``; have it report its cwd and write a file there."""
    manager, client = start_new_kernel(kernel_name=name, startup_timeout=120, cwd=str(folder), **start_options)
    try:
        reply, printed = execute(client, "import os\nprint(os.getcwd())\nopen('from-kernel.txt', 'w').write('hi')")
        assert reply["status"] == "ok", reply
    finally:
        client.stop_channels()
        manager.shutdown_kernel()
    written = folder / "from-kernel.txt"
    assert written.read_text() == "hi"
    return printed.strip(), written.stat()


def test_mount_cwd_works_in_the_notebook_folder(install, tmp_path):
    folder = tmp_path / "notebooks"
    folder.mkdir()
    cwd, stat = write_from_kernel(install("--mount-cwd", DEBIAN_IMAGE), folder)
    assert cwd == str(folder)
    assert stat.st_uid == os.getuid()


@pytest.mark.skipif(not ROOTLESS, reason="--keep-id is about rootless Podman")
def test_keep_id_makes_files_from_a_uid_1000_image_yours(install, tmp_path):
    folder = tmp_path / "notebooks"
    folder.mkdir()
    cwd, stat = write_from_kernel(install("--mount-cwd", "--keep-id", UID1000_IMAGE), folder)
    assert cwd == str(folder)
    assert (stat.st_uid, stat.st_gid) == (os.getuid(), os.getgid())


def test_build_output_goes_to_stderr_never_stdout(install, tmp_path):
    build_dir = tmp_path / "kernel"
    build_dir.mkdir()
    (build_dir / "Containerfile").write_text(f"FROM {DEBIAN_IMAGE}\nRUN echo built > /built\n")
    name = install("--build", str(build_dir))
    out, err = tmp_path / "launcher.out", tmp_path / "launcher.err"
    with open(out, "w") as stdout, open(err, "w") as stderr:
        manager, client = start_new_kernel(kernel_name=name, startup_timeout=120, stdout=stdout, stderr=stderr)
        client.stop_channels()
        manager.shutdown_kernel()
    assert "STEP 2/2" in err.read_text()
    assert out.read_text() == ""

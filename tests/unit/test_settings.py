"""Kernel names, --env parsing, build folders and the metadata round trip."""

import pytest

from podkernel.engines import engine_for
from podkernel.errors import PodkernelError
from podkernel.model.settings import KernelSettings, check_kernel_name, default_kernel_name, parse_env
from podkernel.plan.install_args import resolve_build_dir


@pytest.mark.parametrize(
    "image, name",
    [
        ("jupyter/datascience-notebook:latest", "podkernel-datascience-notebook"),
        ("quay.io/jupyter/datascience-notebook", "podkernel-datascience-notebook"),
        ("localhost:5000/team/python:3.12", "podkernel-python-3.12"),
        ("localhost/podkernel-test-debian-ipykernel", "podkernel-test-debian-ipykernel"),
        ("ghcr.io/x/My_Image@sha256:abcd", "podkernel-my_image"),
    ],
)
def test_default_name_from_image(image, name):
    assert default_kernel_name(image=image) == name


def test_default_name_from_build_dir(tmp_path):
    folder = tmp_path / "ROCm Python"
    folder.mkdir()
    assert default_kernel_name(build_dir=str(folder)) == "podkernel-rocm-python"


@pytest.mark.parametrize("name", ["has space", "slash/name", "ümlaut", "", "foo\n", "\u212aelvin", "\u017fpark"])
def test_bad_names_are_refused(name):
    with pytest.raises(PodkernelError, match="not allowed"):
        check_kernel_name(name)


def test_good_name_is_lowercased():
    assert check_kernel_name("My.Kernel_1-x") == "my.kernel_1-x"


def test_env_parsing():
    assert parse_env(["A=1", "B=x=y", "EMPTY="]) == {"A": "1", "B": "x=y", "EMPTY": ""}
    for bad in ["NOVALUE", "=x", "1A=2", "A B=1"]:
        with pytest.raises(PodkernelError, match="is not KEY=VALUE"):
            parse_env([bad])


def test_build_dir_needs_a_containerfile(tmp_path):
    with pytest.raises(PodkernelError, match="does not exist"):
        resolve_build_dir(str(tmp_path / "missing"))
    with pytest.raises(PodkernelError, match="no Containerfile or Dockerfile"):
        resolve_build_dir(str(tmp_path))
    assert resolve_build_dir(str(tmp_path), needs_containerfile=False) == str(tmp_path)
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    assert resolve_build_dir(str(tmp_path)) == str(tmp_path)


def test_metadata_round_trip():
    for settings in (
        KernelSettings(name="a", image="img", run_args=["-v", "/x:/x"], command=["bash"], env={"K": "V"}),
        KernelSettings(name="b", build_dir="/src", build_args=["--no-cache"]),
    ):
        assert KernelSettings.from_metadata(settings.name, settings.to_metadata()) == settings


def test_foreign_metadata_is_refused():
    with pytest.raises(PodkernelError, match="reinstall"):
        KernelSettings.from_metadata("x", {"version": 99, "image": "img"})


@pytest.mark.parametrize(
    "changes, field",
    [
        ({"mount_cwd": "false"}, "mount_cwd"),
        ({"keep_id": 1}, "keep_id"),
        ({"run_args": "-v /d:/d"}, "run_args"),
        ({"run_args": ["-e", 3]}, "run_args"),
        ({"command": None}, "command"),
        ({"env": ["A=1"]}, "env"),
        ({"gpu": "intel"}, "gpu"),
        ({"image": ["img"]}, "image"),
    ],
)
def test_hand_edited_metadata_of_the_wrong_type_is_refused(changes, field):
    data = dict(KernelSettings(name="k", image="img").to_metadata(), **changes)
    with pytest.raises(PodkernelError, match=f"metadata.podkernel.{field} = .* must be"):
        KernelSettings.from_metadata("k", data)


def test_a_hand_edited_engine_that_podkernel_does_not_know_is_refused():
    """The engines' registry says which engines exist: the kernel's engine is resolved there."""
    data = dict(KernelSettings(name="k", image="img").to_metadata(), engine="lxc")
    with pytest.raises(PodkernelError, match="metadata.podkernel.engine = .* must be"):
        engine_for(KernelSettings.from_metadata("k", data))


@pytest.mark.parametrize("data", [[], "podkernel", None, 1])
def test_metadata_that_is_no_object_is_refused(data):
    with pytest.raises(PodkernelError, match="reinstall it"):
        KernelSettings.from_metadata("k", data)


@pytest.mark.parametrize(
    "kernel, tag",
    [
        ("podkernel-python", "localhost/podkernel-build/podkernel-python:latest"),
        ("My.Kernel__2", "localhost/podkernel-build/my.kernel-2:latest"),
        ("..odd--name..", "localhost/podkernel-build/odd-name:latest"),
    ],
)
def test_built_images_get_a_tag_of_their_kernel(kernel, tag):
    from podkernel.launcher.images import built_image_tag

    assert built_image_tag(kernel) == tag


def test_the_key_never_goes_into_a_runtime_dir_that_is_not_the_users_own(tmp_path, monkeypatch):
    """Root under `su` or `sudo -E` keeps another user's XDG_RUNTIME_DIR, whose owner could swap its contents."""
    import os

    from podkernel.system.private_dir import make_private_dir, private_dir_path

    runtime = tmp_path / "runtime"
    runtime.mkdir(mode=0o700)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(runtime))
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    assert os.path.dirname(private_dir_path()) == str(runtime)
    runtime.chmod(0o777)  # others may write in it
    assert os.path.dirname(private_dir_path()) == str(tmp_path)
    if os.geteuid() == 0:
        runtime.chmod(0o700)
        os.chown(runtime, 65534, 65534)  # another user's
        assert os.path.dirname(private_dir_path()) == str(tmp_path)
    path = private_dir_path()
    make_private_dir(path)
    assert os.stat(path).st_mode & 0o777 == 0o700

"""The command line without Podman: raw argument hand-off, kernelspec files, and one-line errors."""

import json
import os

import pytest

from helpers import podkernel
from podkernel.cli import install
from podkernel.commands.install import settings_from_args
from podkernel.model.settings import KernelSettings
from podkernel.system import kernelspecs


def parse_install(args):
    return install.make_context("install", list(args)).params


def test_install_takes_everything_after_the_image_raw():
    params = parse_install(["--name", "k", "img", '--entrypoint=["/bin/sh", "-c"]', "--", "exec x -f $F"])
    assert params["target"] == "img" and params["name"] == "k"
    assert params["args"] == ('--entrypoint=["/bin/sh", "-c"]', "--", "exec x -f $F")


def test_install_keeps_every_separator_and_option_like_word():
    args = ["--build", "dir", "--", "--build-arg=A=B", "--", "-v", "/h:/h", "--help", "--", "bash", "--version"]
    params = parse_install(args)
    assert params["build"] and params["target"] == "dir"
    assert params["args"] == tuple(args[2:])


def test_settings_from_a_build_command_line(tmp_path):
    (tmp_path / "Containerfile").write_text("FROM scratch\n")
    settings = settings_from_args(
        str(tmp_path), True, ["--", "--build-arg=A=B", "--", "-v", "/h:/h", "--", "bash"], None, {}
    )
    assert settings == KernelSettings(
        name=f"podkernel-{tmp_path.name.lower()}",
        build_dir=str(tmp_path),
        build_args=["--build-arg=A=B"],
        run_args=["-v", "/h:/h"],
        command=["bash"],
    )


def spec_for(name="demo", **fields):
    settings = KernelSettings(name=name, image="img", **fields)
    return kernelspecs.kernel_json(settings, "Demo", "python", "message")


def test_install_load_list_remove(jupyter_dirs):
    path = kernelspecs.install(spec_for(), "demo", kernelspecs.Location(), replace=False)
    assert path == str(jupyter_dirs / "kernels" / "demo")
    spec = json.loads((jupyter_dirs / "kernels" / "demo" / "kernel.json").read_text())
    assert spec["argv"][1:] == ["-m", "podkernel", "start", "demo", "{connection_file}", "{resource_dir}"]
    assert os.path.isabs(spec["argv"][0])
    assert kernelspecs.load("demo").settings.image == "img"
    assert [kernel.settings.name for kernel in kernelspecs.installed()] == ["demo"]
    assert kernelspecs.remove(["demo"]) == [path]
    assert not os.path.exists(path)


def test_prefix_install_goes_under_share_jupyter(tmp_path, jupyter_dirs, monkeypatch):
    path = kernelspecs.install(spec_for(), "demo", kernelspecs.Location(str(tmp_path / "env")), replace=False)
    assert path == str(tmp_path / "env" / "share" / "jupyter" / "kernels" / "demo")


def test_existing_kernel_needs_replace(jupyter_dirs):
    kernelspecs.install(spec_for(), "demo", kernelspecs.Location(), replace=False)
    result = podkernel("install", "--name", "demo", "img")
    assert result.returncode == 1
    assert "already exists" in result.stderr and "--replace" in result.stderr


def write_foreign_kernel(jupyter_dirs):
    folder = jupyter_dirs / "kernels" / "python-host"
    folder.mkdir(parents=True)
    (folder / "kernel.json").write_text(
        json.dumps(
            {
                "argv": ["python", "-m", "ipykernel", "-f", "{connection_file}"],
                "display_name": "Host",
                "language": "python",
            }
        )
    )
    return folder


def test_a_kernel_named_twice_is_removed_once(jupyter_dirs):
    kernelspecs.install(spec_for(), "demo", kernelspecs.Location(), replace=False)
    result = podkernel("remove", "demo", "DEMO")
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("Removed") == 1


def test_remove_refuses_other_kernels(jupyter_dirs):
    folder = write_foreign_kernel(jupyter_dirs)
    kernelspecs.install(spec_for(), "demo", kernelspecs.Location(), replace=False)
    result = podkernel("remove", "demo", "python-host")
    assert result.returncode == 1 and "not a podkernel kernel" in result.stderr
    assert folder.exists() and (jupyter_dirs / "kernels" / "demo").exists()


def one_line_error(result, *fragments):
    assert result.returncode != 0, result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


@pytest.mark.parametrize(
    "args, fragments",
    [
        (["install", "img", "-d", "--", "x"], ["--detach is not allowed"]),
        (["install", "img", "-it"], ["--interactive is not allowed"]),
        (["install", "img", "--rm"], ["--rm is not allowed"]),
        (["install", "img", "--name=x"], ["--name is not allowed"]),
        (["install", "img", "-a", "stdout"], ["--attach is not allowed"]),
        (["install", "--env", "NOEQUALS", "img"], ["is not KEY=VALUE"]),
        (["install", "--name", "bad name", "img"], ["is not allowed", "letters, digits"]),
        (["install", "--build", "/nonexistent/folder"], ["does not exist"]),
        (["install", "--sys-prefix", "--prefix", "{tmp}/prefix", "img"], ["only one of"]),
        (["install", "--prefix", "{tmp}/a-file", "img"], ["'--prefix'", "is a file", "--help"]),
        (["install", "--interrupt-mode", "sometimes", "img"], ["'--interrupt-mode'", "sometimes"]),
        (["install", "--nmae", "x", "img"], ["no option --nmae", "did you mean --name?"]),
        (
            ["install", "--name=k", "--dispaly-name=K", "img"],
            ["no option --dispaly-name", "did you mean --display-name?"],
        ),
        (["install", "--build", "--no-chek", "dir"], ["no option --no-chek", "did you mean --no-check?"]),
        (["install", "-v", "/h:/h", "img"], ["no option -v", "options for podman go after IMAGE"]),
        (["install", "--check-timeout", "0", "img"], ["'--check-timeout'", "0"]),
        (["check", "nope"], ["no kernel named 'nope'"]),
        (["install", "img", "--no-check"], ["--no-check is an option of podkernel install", "give it before IMAGE"]),
        (["install", "--build", "{tmp}", "--language", "R"], ["--language is an option of podkernel", "before DIR"]),
        (["install", "img", "--", "--interrupt-mode=signal", "--", "x"], ["--interrupt-mode is an option of"]),
        (["list", "--bogus"], ["No such option", "--bogus"]),
        (["nosuchcommand"], ["No such command"]),
        (["show", "nope"], ["no kernel named 'nope'", "podkernel list"]),
        (["build", "nope"], ["no kernel named 'nope'"]),
        (["remove", "nope"], ["no kernel named 'nope'"]),
        (["start", "nope", "{tmp}/connection.json"], ["no kernel named 'nope'"]),
    ],
)
def test_user_errors_are_one_line(jupyter_dirs, tmp_path, args, fragments):
    (tmp_path / "a-file").write_text("")
    one_line_error(podkernel(*[arg.replace("{tmp}", str(tmp_path)) for arg in args]), *fragments)
    assert not (jupyter_dirs / "kernels").exists() or not any((jupyter_dirs / "kernels").iterdir())


def test_build_dir_without_containerfile(jupyter_dirs, tmp_path):
    one_line_error(podkernel("install", "--build", str(tmp_path)), "no Containerfile or Dockerfile")


def test_iidfile_build_arg(jupyter_dirs, tmp_path):
    (tmp_path / "Containerfile").write_text("FROM scratch\n")
    one_line_error(
        podkernel("install", "--build", str(tmp_path), f"--iidfile={tmp_path}/iid"), "--iidfile is not allowed"
    )


def test_foreign_kernel_is_not_started_or_shown(jupyter_dirs):
    write_foreign_kernel(jupyter_dirs)
    one_line_error(podkernel("show", "python-host"), "not a podkernel kernel")


def test_podman_missing(jupyter_dirs, tmp_path):
    env = dict(os.environ, PATH=str(tmp_path))
    one_line_error(podkernel("install", "img", env=env), "podman is not installed", "install Podman")
    assert not (jupyter_dirs / "kernels").exists()


def test_gpus_flag_gets_a_warning(jupyter_dirs, tmp_path):
    from podkernel.engines.podman import PodmanEngine

    warnings = PodmanEngine().install_warnings(KernelSettings(name="k", image="img", run_args=["--gpus", "all"]))
    assert any("Podman ignores --gpus" in warning and "--gpu nvidia" in warning for warning in warnings)


def test_host_flags_are_stored_and_shown_in_metadata(jupyter_dirs, tmp_path):
    (tmp_path / "Containerfile").write_text("FROM scratch\n")
    settings = settings_from_args(str(tmp_path), True, [], "k", {}, mount_cwd=True, keep_id=True, gpu="amd")
    assert KernelSettings.from_metadata("k", settings.to_metadata()) == settings
    assert settings.to_metadata()["gpu"] == "amd" and settings.to_metadata()["mount_cwd"] is True


def test_bare_command_prints_its_help():
    result = podkernel()
    assert result.returncode == 0 and result.stdout.startswith("Usage: podkernel")


def test_table_cells_are_text_not_markup(capsys):
    from podkernel.ui.tables import print_table

    print_table(["Name", "Detail"], [["Python [conda env:base]", "exec: [/bin/sh] not found"]])
    printed = capsys.readouterr().out
    assert "Python [conda env:base]" in printed and "[/bin/sh]" in printed


def test_the_engine_runs_with_the_system_program_folders():
    from podkernel.system.host import missing_program_dirs

    assert missing_program_dirs("/usr/bin:/bin") == ["/usr/local/sbin", "/usr/sbin", "/sbin"]
    assert missing_program_dirs("/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin") == []


def test_the_default_display_name_names_the_language_when_it_is_known(tmp_path):
    from podkernel.commands.install import default_display_name

    image = KernelSettings(name="k", image="quay.io/jupyter/r-notebook:2024")
    assert default_display_name(image, "R") == "r-notebook:2024 (R, podkernel)"
    assert default_display_name(image, "python") == "r-notebook:2024 (Python, podkernel)"
    assert (
        default_display_name(KernelSettings(name="k", build_dir=str(tmp_path)), None) == f"{tmp_path.name} (podkernel)"
    )


def test_install_knows_which_of_its_options_podman_lacks():
    from podkernel.commands.install import OWN_OPTIONS
    from podkernel.plan.podman_options import RUN_BOOLEAN_OPTIONS, RUN_VALUE_OPTIONS

    options = [param for param in install.params if param.param_type_name == "option"]
    names = {name for option in options for name in (*option.opts, *option.secondary_opts)}
    assert OWN_OPTIONS == names - RUN_BOOLEAN_OPTIONS - RUN_VALUE_OPTIONS - {"-h", "--help"}

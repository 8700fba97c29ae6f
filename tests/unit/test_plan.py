"""The launch plan: the exact podman run arguments, for both kinds of kernel."""

import pytest

from podkernel.engines import ENGINE_NAMES, ENGINES, engine_class
from podkernel.errors import PodkernelError
from podkernel.model.labels import container_name, is_container_name
from podkernel.model.launch import Launch
from podkernel.model.settings import KernelSettings
from podkernel.plan import run_args as plan

PORTS = {"shell_port": 5001, "iopub_port": 5002, "stdin_port": 5003, "control_port": 5004, "hb_port": 5005}
SPARE_PORTS = {key: port + 20000 for key, port in PORTS.items()}


def run_args(settings: KernelSettings, launch: Launch) -> list[str]:
    """The plan with the kernel's own engine, built without that engine installed."""
    return plan.run_args(settings, launch, engine_class(ENGINES[settings.engine])())


def test_every_engine_name_has_an_engine_module():
    assert tuple(ENGINES) == ENGINE_NAMES


def launch(**changes) -> Launch:
    values = dict(
        image_id="sha256abc",
        container_name="podkernel-demo-1a2b3c4d",
        ports=PORTS,
        published_ports=SPARE_PORTS,
        connection_file="/home/u/.local/share/jupyter/runtime/kernel-1.json",
        connection_copy="/run/user/1000/podkernel-x/connection.json",
        container_pidfile="/run/user/1000/podkernel-x/container.pid",
        launcher_pid=4242,
        cwd="/home/u/project",
    )
    values.update(changes)
    return Launch(**values)


OWNED = [
    "--detach",
    "--rm",
    "--name",
    "podkernel-demo-1a2b3c4d",
    "--label",
    "io.podkernel.kernel=demo",
    "--label",
    "io.podkernel.connection-file=/home/u/.local/share/jupyter/runtime/kernel-1.json",
    "--label",
    "io.podkernel.launcher-pid=4242",
]
PIDFILE_AND_LOGS = ["--pidfile", "/run/user/1000/podkernel-x/container.pid", "--log-driver", "passthrough"]
MOUNT_AND_ENV = [
    "--volume",
    "/run/user/1000/podkernel-x/connection.json:/run/podkernel/connection.json:U",
    "--env",
    "PODKERNEL_CONNECTION_FILE=/run/podkernel/connection.json",
    "--env",
    "DOCKERNEL_CONNECTION_FILE=/run/podkernel/connection.json",
]
PUBLISH = [
    "--publish",
    "127.0.0.1:25001:5001",
    "--publish",
    "127.0.0.1:25002:5002",
    "--publish",
    "127.0.0.1:25003:5003",
    "--publish",
    "127.0.0.1:25004:5004",
    "--publish",
    "127.0.0.1:25005:5005",
]


def test_image_kernel_argv():
    settings = KernelSettings(
        name="demo",
        image="quay.io/jupyter/base-notebook",
        run_args=['--entrypoint=["/bin/bash", "-c"]', "-v", "/data:/data"],
        command=["python -m ipykernel_launcher -f $PODKERNEL_CONNECTION_FILE"],
        env={"MODE": "test"},
    )
    assert run_args(settings, launch()) == [
        '--entrypoint=["/bin/bash", "-c"]',
        "-v",
        "/data:/data",
        *OWNED,
        "--init",
        *PIDFILE_AND_LOGS,
        *MOUNT_AND_ENV,
        "--env",
        "MODE=test",
        *PUBLISH,
        "sha256abc",
        "python -m ipykernel_launcher -f $PODKERNEL_CONNECTION_FILE",
    ]


def test_build_kernel_argv_runs_the_built_image_id():
    settings = KernelSettings(
        name="demo", build_dir="/src/kernel", build_args=["--build-arg=A=B"], run_args=["-v", "/h:/h"]
    )
    args = run_args(settings, launch(image_id="0123abcd"))
    assert args == ["-v", "/h:/h", *OWNED, "--init", *PIDFILE_AND_LOGS, *MOUNT_AND_ENV, *PUBLISH, "0123abcd"]
    assert "--build-arg=A=B" not in args


def test_users_own_init_and_log_driver_are_kept():
    settings = KernelSettings(name="demo", image="img", run_args=["--init=false", "--log-driver", "k8s-file"])
    args = run_args(settings, launch())
    assert args.count("--init") == 0 and args[0] == "--init=false"
    assert "passthrough" not in args and args[1:3] == ["--log-driver", "k8s-file"]


def test_key_never_reaches_the_command_line():
    settings = KernelSettings(name="demo", image="img")
    assert not any("key" in arg.lower() for arg in run_args(settings, launch()))


def test_container_name_says_whose_it_is():
    assert container_name("podkernel-python", "ab12") == "podkernel-python-ab12"
    assert container_name("mine", "ab12") == "podkernel-mine-ab12"
    assert is_container_name(container_name("mine", "0a1b2c3d"))
    assert is_container_name(container_name("podkernel-python", "warm-0a1b2c3d"))
    assert not is_container_name("podkernel-test-base-working-container")  # a build's
    assert not is_container_name("other-0a1b2c3d")


def test_mount_cwd_mounts_the_start_folder_and_works_there():
    args = run_args(KernelSettings(name="demo", image="img", mount_cwd=True), launch())
    assert args[:4] == ["--volume", "/home/u/project:/home/u/project", "--workdir", "/home/u/project"]


def test_mount_cwd_with_a_colon_in_the_path():
    args = run_args(KernelSettings(name="demo", image="img", mount_cwd=True), launch(cwd="/home/u/a:b"))
    assert args[:4] == ["--mount", "type=bind,source=/home/u/a:b,destination=/home/u/a:b", "--workdir", "/home/u/a:b"]
    with pytest.raises(PodkernelError, match="cannot mount /home/u/a:b,c"):
        run_args(KernelSettings(name="demo", image="img", mount_cwd=True), launch(cwd="/home/u/a:b,c"))


def test_keep_id_adds_the_userns_chosen_for_this_host():
    settings = KernelSettings(name="demo", image="img", keep_id=True)
    assert "--userns=keep-id:uid=1000,gid=100" in run_args(settings, launch(userns="--userns=keep-id:uid=1000,gid=100"))
    assert not any(arg.startswith("--userns") for arg in run_args(settings, launch(userns=None)))


def test_gpu_flags_expand_to_plain_run_args():
    nvidia = run_args(KernelSettings(name="demo", image="img", gpu="nvidia"), launch())
    assert nvidia[:2] == ["--device", "nvidia.com/gpu=all"]
    amd = run_args(KernelSettings(name="demo", image="img", gpu="amd"), launch())
    assert amd[:7] == ["--device", "/dev/kfd", "--device", "/dev/dri", "--group-add", "keep-groups", "--ipc=host"]


def test_users_own_run_args_come_after_the_host_flags_so_they_win():
    settings = KernelSettings(name="demo", image="img", mount_cwd=True, run_args=["--workdir", "/elsewhere"])
    args = run_args(settings, launch())
    assert args.index("/elsewhere") > args.index("/home/u/project")


def test_selinux_relabels_only_the_connection_file_mount():
    settings = KernelSettings(name="demo", image="img", mount_cwd=True, run_args=["-v", "/data:/data"])
    args = run_args(settings, launch(selinux=True))
    assert "/run/user/1000/podkernel-x/connection.json:/run/podkernel/connection.json:U,z" in args
    assert "/home/u/project:/home/u/project" in args and "/data:/data" in args


def test_docker_engine_uses_what_docker_has():
    settings = KernelSettings(name="demo", image="img", engine="docker", gpu="nvidia", keep_id=True)
    args = run_args(settings, launch(userns=None))
    assert args[:2] == ["--gpus", "all"]
    assert "--pidfile" not in args and "passthrough" not in args
    assert "/run/user/1000/podkernel-x/connection.json:/run/podkernel/connection.json" in args
    assert "JUPYTER_ALLOW_INSECURE_WRITES=true" in args
    assert not any(arg.startswith("--userns") for arg in args)


def test_kernel_is_published_on_the_spare_ports_only():
    settings = KernelSettings(name="demo", image="img")
    args = run_args(settings, launch())
    publishes = [args[i + 1] for i, arg in enumerate(args) if arg == "--publish"]
    assert publishes == [f"127.0.0.1:{SPARE_PORTS[key]}:{port}" for key, port in PORTS.items()]

"""``podkernel install``: turn an image or a build folder into an installed kernelspec."""

from __future__ import annotations

import os
import sys

import click

from .. import kernelspecs
from ..engines import ContainerEngine, container_engine, default_engine_name
from ..errors import PodkernelError
from ..host import nvidia_cdi_specs
from ..images import resolve_image
from ..podman_options import check_build_args, check_run_args, option_name
from ..progress import image_progress
from ..sections import split_build_args, split_image_args
from ..settings import (
    KernelSettings,
    check_kernel_name,
    default_kernel_name,
    parse_env,
    resolve_build_dir,
)


def _location(location: str, prefix: str | None) -> kernelspecs.Location:
    if prefix is not None and location != "user":
        raise PodkernelError("give only one of --user, --sys-prefix and --prefix")
    if prefix is not None:
        return kernelspecs.Location(prefix)
    return kernelspecs.Location(sys.prefix if location == "sys-prefix" else None)


def settings_from_args(
    target: str,
    build: bool,
    args: list[str],
    name: str | None,
    env: dict[str, str],
    mount_cwd: bool = False,
    keep_id: bool = False,
    gpu: str | None = None,
    engine: str = "podman",
) -> KernelSettings:
    """Check an install command line and turn it into settings (no Podman needed)."""
    if build:
        sections = split_build_args(args)
        check_build_args(sections.build_args)
        names_a_file = any(option_name(arg) in ("-f", "--file") for arg in sections.build_args)
        build_dir = resolve_build_dir(target, needs_containerfile=not names_a_file)
        image = None
    else:
        sections = split_image_args(args)
        build_dir, image = None, target
    check_run_args(sections.run_args)
    return KernelSettings(
        name=check_kernel_name(name) if name else default_kernel_name(image=image, build_dir=build_dir),
        image=image,
        build_dir=build_dir,
        build_args=sections.build_args,
        run_args=sections.run_args,
        command=sections.command,
        env=env,
        mount_cwd=mount_cwd,
        keep_id=keep_id,
        gpu=gpu,
        engine=engine,
    )


def host_warnings(settings: KernelSettings, engine: ContainerEngine) -> list[str]:
    """What will not work as the user may expect on this host, with what to do instead."""
    warnings = engine.install_warnings(settings)
    if settings.keep_id and engine.supports_keep_id and os.geteuid() == 0:
        warnings.append("--keep-id only takes effect when this kernel runs under rootless Podman (not as root)")
    if settings.gpu == "nvidia" and not nvidia_cdi_specs():
        warnings.append(
            "no NVIDIA CDI spec found in /etc/cdi or /var/run/cdi: "
            "generate one with: sudo nvidia-ctk cdi generate --output=/etc/cdi/nvidia.yaml"
        )
    if settings.gpu == "amd" and not os.path.exists("/dev/kfd"):
        warnings.append("/dev/kfd is missing: install the ROCm kernel driver (amdgpu) for --gpu amd")
    return warnings


def default_display_name(settings: KernelSettings) -> str:
    if settings.build_dir is not None:
        short = settings.build_dir.rstrip("/").rsplit("/", 1)[-1]
    else:
        short = settings.image.rsplit("/", 1)[-1]
    return f"{short} (podkernel)"


def install(
    *,
    target: str,
    build: bool,
    args: tuple[str, ...],
    name: str | None,
    display_name: str | None,
    language: str,
    interrupt_mode: str,
    env: tuple[str, ...],
    location: str,
    prefix: str | None,
    replace: bool,
    mount_cwd: bool,
    keep_id: bool,
    gpu: str | None,
    engine: str | None,
) -> None:
    settings = settings_from_args(
        target, build, list(args), name, parse_env(env), mount_cwd, keep_id, gpu, engine or default_engine_name()
    )
    engine = container_engine(settings.engine)
    for warning in host_warnings(settings, engine):
        click.echo(f"Warning: {warning}", err=True)
    where = _location(location, prefix)
    kernelspecs.check_free(settings.name, where, replace)
    with image_progress(settings) as show:
        image_id = resolve_image(settings, engine, show)
    spec = kernelspecs.kernel_json(settings, display_name or default_display_name(settings), language, interrupt_mode)
    path = kernelspecs.install(spec, settings.name, where, replace)
    click.echo(f"Installed kernel {settings.name} ({spec['display_name']}) in {path}")
    click.echo(f"Image: {image_id}")

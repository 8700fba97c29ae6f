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
    DEFAULT_WARM_IDLE_S,
    KernelSettings,
    check_kernel_name,
    default_kernel_name,
    parse_env,
    remote_setting,
    resolve_build_dir,
)
from .check import report_warnings, run_trial


def _location(location: str, prefix: str | None) -> kernelspecs.Location:
    if prefix is not None and location != "user":
        raise PodkernelError("give only one of --user, --sys-prefix and --prefix")
    if prefix is not None:
        return kernelspecs.Location(prefix)
    return kernelspecs.Location(sys.prefix if location == "sys-prefix" else None)


# install's options that podman run lacks: after IMAGE or DIR they are a mistake, not Podman's.
# (--name, --env, --user and --replace are podman run options too.)
OWN_OPTIONS = frozenset(
    {
        "--build",
        "--display-name",
        "--language",
        "--interrupt-mode",
        "--sys-prefix",
        "--prefix",
        "--mount-cwd",
        "--keep-id",
        "--gpu",
        "--engine",
        "--check",
        "--no-check",
        "--check-timeout",
        "--warm",
        "--warm-idle",
        "--connection",
        "--url",
        "--identity",
    }
)


def _refuse_own_options(args: list[str], target: str) -> None:
    """An install option among the args for Podman: say where it goes instead of handing it on."""
    for arg in args:
        if option_name(arg) in OWN_OPTIONS:
            raise PodkernelError(
                f"{option_name(arg)} is an option of podkernel install, not of podman: "
                f"give it before {target} (podkernel install {arg} ... {target} ...)"
            )


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
    warm: bool = False,
    warm_idle_s: int = DEFAULT_WARM_IDLE_S,
    remote: dict[str, str] | None = None,
) -> KernelSettings:
    """Check an install command line and turn it into settings (no Podman needed)."""
    if remote:
        for given, flag in ((mount_cwd, "--mount-cwd"), (keep_id, "--keep-id"), (warm, "--warm")):
            if given:
                raise PodkernelError(f"{flag} is for kernels on this machine; leave it out for a kernel on another one")
        if engine != "podman":
            raise PodkernelError("kernels on another machine run with Podman: leave out --engine, or give podman")
    sections = split_build_args(args) if build else split_image_args(args)
    _refuse_own_options(sections.build_args + sections.run_args, "DIR" if build else "IMAGE")
    if build:
        check_build_args(sections.build_args)
        names_a_file = any(option_name(arg) in ("-f", "--file") for arg in sections.build_args)
        build_dir = resolve_build_dir(target, needs_containerfile=not names_a_file)
        image = None
    else:
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
        warm=warm,
        warm_idle_s=warm_idle_s,
        remote=remote or {},
    )


def host_warnings(settings: KernelSettings, engine: ContainerEngine) -> list[str]:
    """What will not work as the user may expect on this host, with what to do instead."""
    warnings = engine.install_warnings(settings)
    if settings.keep_id and engine.supports_keep_id and os.geteuid() == 0:
        warnings.append("--keep-id only takes effect when this kernel runs under rootless Podman (not as root)")
    if settings.remote:  # the host checks below are about this machine
        return warnings
    if settings.gpu == "nvidia" and not nvidia_cdi_specs():
        warnings.append(
            "no NVIDIA CDI spec found in /etc/cdi or /var/run/cdi: "
            "generate one with: sudo nvidia-ctk cdi generate --output=/etc/cdi/nvidia.yaml"
        )
    if settings.gpu == "amd" and not os.path.exists("/dev/kfd"):
        warnings.append("/dev/kfd is missing: install the ROCm kernel driver (amdgpu) for --gpu amd")
    return warnings


DEFAULT_LANGUAGE = "python"  # what a kernelspec says when neither --language nor a trial tells
NOT_INSTALLED_ADVICE = "nothing was installed: fix the image or the kernel's command, or install anyway with --no-check"


def default_display_name(settings: KernelSettings, language: str | None) -> str:
    """``NAME-OF-IMAGE (Language, podkernel)``, or without the language when it is not known."""
    if settings.build_dir is not None:
        short = settings.build_dir.rstrip("/").rsplit("/", 1)[-1]
    else:
        short = settings.image.rsplit("/", 1)[-1]
    return f"{short} ({language[:1].upper() + language[1:]}, podkernel)" if language else f"{short} (podkernel)"


def install(
    *,
    target: str,
    build: bool,
    args: tuple[str, ...],
    name: str | None,
    display_name: str | None,
    language: str | None,
    interrupt_mode: str,
    env: tuple[str, ...],
    location: str,
    prefix: str | None,
    replace: bool,
    mount_cwd: bool,
    keep_id: bool,
    gpu: str | None,
    engine: str | None,
    check: bool,
    check_timeout: float,
    warm: bool,
    warm_idle: int,
    connection: str | None,
    url: str | None,
    identity: str | None,
) -> None:
    """Install a kernel; unless ``check`` is off, only once a trial start has shown that it works."""
    settings = settings_from_args(
        target,
        build,
        list(args),
        name,
        parse_env(env),
        mount_cwd,
        keep_id,
        gpu,
        engine or ("podman" if connection or url else default_engine_name()),
        warm,
        warm_idle,
        remote_setting(connection, url, identity),
    )
    engine = container_engine(settings.engine, settings.remote)
    for warning in host_warnings(settings, engine):
        click.echo(f"Warning: {warning}", err=True)
    where = _location(location, prefix)
    kernelspecs.check_free(settings.name, where, replace)
    with image_progress(settings) as show:
        image_id = resolve_image(settings, engine, show)

    def spec_for(kernel_language: str | None) -> dict:
        shown = display_name or default_display_name(settings, kernel_language)
        return kernelspecs.kernel_json(settings, shown, kernel_language or DEFAULT_LANGUAGE, interrupt_mode)

    spec, report = spec_for(language), None
    if check:
        with kernelspecs.staged(spec, settings.name) as kernel_dir:
            report = run_trial(
                kernel_dir,
                engine,
                check_timeout,
                image_id=image_id,
                advice=NOT_INSTALLED_ADVICE,
            )
        if language is None and report.language:
            spec = spec_for(report.language)
    path = kernelspecs.install(spec, settings.name, where, replace)
    click.echo(f"Installed kernel {settings.name} ({spec['display_name']}) in {path}")
    click.echo(f"Image: {image_id}" + (f" on {settings.where}" if settings.remote else ""))
    if report is not None:
        click.echo(report.summary())
        for warning in report_warnings(report, spec):
            click.echo(f"Warning: {warning}", err=True)
    if settings.warm:
        from .. import warm as warm_containers

        warm_containers.discard(engine, settings.name)  # a replaced kernel's
        click.echo(f"Warm: {warm_containers.prepare(settings, engine, image_id, os.getcwd())}")

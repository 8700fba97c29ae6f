"""``podkernel install``: turn an image or a build folder into an installed kernelspec."""

from __future__ import annotations

import os
import sys
from typing import NamedTuple

import click

from ..engines import container_engine, engine_name
from ..engines.base import ContainerEngine
from ..errors import PodkernelError
from ..launcher import warm as warm_containers
from ..launcher.images import resolve_image
from ..launcher.trial import KernelReport
from ..model.settings import KernelSettings, check_kernel_name, default_kernel_name, parse_env
from ..plan.install_args import resolve_build_dir, split_build_args, split_image_args
from ..plan.podman_options import check_build_args, check_run_args, option_name
from ..system import kernelspecs
from ..ui.progress import image_progress
from .common import report_warnings, run_trial


class InstallOptions(NamedTuple):
    """install's command line, as click hands it on (cli.py)."""

    target: str
    build: bool
    args: tuple[str, ...]
    name: str | None
    display_name: str | None
    language: str | None
    interrupt_mode: str
    env: tuple[str, ...]
    location: str
    prefix: str | None
    replace: bool
    mount_cwd: bool
    keep_id: bool
    gpu: str | None
    engine: str | None
    check: bool
    check_timeout: float
    warm: bool
    warm_idle: int
    remote: dict[str, str]  # model.remote_host.remote_setting


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
    target: str, build: bool, args: list[str], name: str | None, env: dict[str, str], **flags
) -> KernelSettings:
    """Check an install command line and turn it into settings (no Podman needed). ``flags`` are
    the settings' other fields (mount_cwd, keep_id, gpu, engine, warm, warm_idle_s, remote)."""
    if flags.get("remote"):
        for flag in ("mount_cwd", "keep_id", "warm"):
            if flags.get(flag):
                option = "--" + flag.replace("_", "-")
                raise PodkernelError(f"{option} is for kernels on this machine; leave it out for one on another")
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
        **flags,
    )


DEFAULT_LANGUAGE = "python"  # what a kernelspec says when neither --language nor a trial tells
NOT_INSTALLED_ADVICE = "nothing was installed: fix the image or the kernel's command, or install anyway with --no-check"


def default_display_name(settings: KernelSettings, language: str | None) -> str:
    """``NAME-OF-IMAGE (Language, podkernel)``, or without the language when it is not known."""
    if settings.build_dir is not None:
        short = settings.build_dir.rstrip("/").rsplit("/", 1)[-1]
    else:
        short = settings.image.rsplit("/", 1)[-1]
    return f"{short} ({language[:1].upper() + language[1:]}, podkernel)" if language else f"{short} (podkernel)"


def install(options: InstallOptions) -> None:
    """Install a kernel; unless ``options.check`` is off, only once a trial start has shown that it works."""
    remote = options.remote
    settings = settings_from_args(
        options.target,
        options.build,
        list(options.args),
        options.name,
        parse_env(options.env),
        mount_cwd=options.mount_cwd,
        keep_id=options.keep_id,
        gpu=options.gpu,
        engine=engine_name(options.engine, remote=remote),
        warm=options.warm,
        warm_idle_s=options.warm_idle,
        remote=remote,
    )
    engine = container_engine(settings.engine, settings.remote)
    for warning in engine.install_warnings(settings):
        click.echo(f"Warning: {warning}", err=True)
    where = _location(options.location, options.prefix)
    kernelspecs.check_free(settings.name, where, options.replace)
    with image_progress(settings) as show:
        image_id = resolve_image(settings, engine, show)
    spec, report = _tried_spec(options, settings, engine, image_id)
    path = kernelspecs.install(spec, settings.name, where, options.replace)
    click.echo(f"Installed kernel {settings.name} ({spec['display_name']}) in {path}")
    click.echo(f"Image: {image_id}" + (f" on {settings.where}" if settings.remote else ""))
    if report is not None:
        click.echo(report.summary())
        for warning in report_warnings(report, spec):
            click.echo(f"Warning: {warning}", err=True)
    if settings.warm:
        warm_containers.discard(engine, settings.name)  # a replaced kernel's
        click.echo(f"Warm: {warm_containers.prepare(settings, engine, image_id, os.getcwd())}")


def _tried_spec(
    options: InstallOptions, settings: KernelSettings, engine: ContainerEngine, image_id: str
) -> tuple[dict, KernelReport | None]:
    """The kernelspec to install, and the trial start's report (None with --no-check); the
    language is the trial kernel's own unless --language gave one."""

    def spec_for(kernel_language: str | None) -> dict:
        shown = options.display_name or default_display_name(settings, kernel_language)
        return kernelspecs.kernel_json(settings, shown, kernel_language or DEFAULT_LANGUAGE, options.interrupt_mode)

    spec = spec_for(options.language)
    if not options.check:
        return spec, None
    with kernelspecs.staged(spec, settings.name) as kernel_dir:
        report = run_trial(kernel_dir, engine, options.check_timeout, image_id=image_id, advice=NOT_INSTALLED_ADVICE)
    if options.language is None and report.language:
        spec = spec_for(report.language)
    return spec, report

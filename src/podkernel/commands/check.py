"""``podkernel check NAME``: start an installed kernel once, as a frontend would, and report on it."""

from __future__ import annotations

import click

from .. import kernelspecs
from ..engines import ContainerEngine, container_engine
from ..errors import PodkernelError
from ..progress import trial_progress
from ..trial import KernelReport, TrialFailed, try_kernel


def run_trial(
    kernel_dir: str, engine: ContainerEngine, timeout: float, *, advice: str, image_id: str | None = None
) -> KernelReport:
    """Try the kernelspec in ``kernel_dir`` under a live status line; a failure is an error that ends in ``advice``."""
    try:
        with trial_progress("Trying the kernel") as progress:
            return try_kernel(kernel_dir, engine, image_id=image_id, timeout=timeout, progress=progress)
    except TrialFailed as failure:
        raise PodkernelError(failure.explain(advice)) from None


def report_warnings(report: KernelReport, spec: dict) -> list[str]:
    """What the trial found that works other than the kernelspec says, with what to do."""
    warnings = []
    if report.language and report.language.lower() != str(spec.get("language", "")).lower():
        warnings.append(
            f"the kernel says its language is {report.language}, but its kernelspec says {spec.get('language')}: "
            f"frontends treat its code as {spec.get('language')}; reinstall with --language {report.language}"
        )
    if report.interrupt_works is False:
        if spec.get("interrupt_mode") == "signal":
            warnings.append(
                "SIGINT did not stop a running cell: check that the kernel's process gets it (a wrapper that "
                "ignores SIGINT?), or reinstall with --interrupt-mode message if the kernel supports it"
            )
        else:
            warnings.append(
                "the kernel ignored an interrupt request (message mode): reinstall with --interrupt-mode signal"
            )
    return warnings


def check(name: str, timeout: float) -> None:
    kernel = kernelspecs.load(name)
    engine = container_engine(kernel.settings.engine, kernel.settings.remote)
    report = run_trial(
        kernel.resource_dir,
        engine,
        timeout,
        advice=f"fix the image or the kernel's settings (podkernel show {kernel.settings.name} prints what runs)",
    )
    click.echo(report.summary())
    warnings = report_warnings(report, kernel.spec)
    for warning in warnings:
        click.echo(f"Warning: {warning}", err=True)
    if report.interrupt_works is False:
        raise SystemExit(1)

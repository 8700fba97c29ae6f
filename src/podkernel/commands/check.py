"""``podkernel check NAME``: start an installed kernel once, as a frontend would, and report on it."""

from __future__ import annotations

import click

from ..engines import engine_for
from ..system import kernelspecs
from .common import report_warnings, run_trial


def check(name: str, timeout: float) -> None:
    kernel = kernelspecs.load(name)
    report = run_trial(
        kernel.resource_dir,
        engine_for(kernel.settings),
        timeout,
        advice=f"fix the image or the kernel's settings (podkernel show {kernel.settings.name} prints what runs)",
    )
    click.echo(report.summary())
    warnings = report_warnings(report, kernel.spec)
    for warning in warnings:
        click.echo(f"Warning: {warning}", err=True)
    if report.interrupt_works is False:
        raise SystemExit(1)

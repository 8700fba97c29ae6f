"""What several commands share: the trial start under a status line, and what its report means."""

from __future__ import annotations

from ..engines.base import ContainerEngine
from ..errors import PodkernelError
from ..launcher.trial import KernelReport, TrialFailed, try_kernel
from ..ui.progress import trial_progress


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

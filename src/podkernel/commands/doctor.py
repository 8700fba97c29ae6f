"""``podkernel doctor``: check the host, print each result with its fix; exit 1 if any check fails."""

from __future__ import annotations

from ..doctor.checks import FAIL, run_checks
from ..errors import PodkernelError
from ..ui.tables import print_table

MARKS = {"pass": "ok", "warn": "warning", "fail": "FAILED"}


def doctor(image: str | None, engine: str | None, remote: dict[str, str]) -> None:
    checks = run_checks(image, engine, remote)
    print_table(
        ["Check", "Result", "Detail", "Fix"],
        [[check.name, MARKS[check.status], check.detail, check.fix] for check in checks],
    )
    failed = [check.name for check in checks if check.status == FAIL]
    if failed:
        raise PodkernelError(f"{len(failed)} check(s) failed: {', '.join(failed)}; see the Fix column")

"""One doctor check's result."""

from __future__ import annotations

from typing import NamedTuple

PASS, WARN, FAIL = "pass", "warn", "fail"


class Check(NamedTuple):
    name: str
    status: str
    detail: str
    fix: str = ""

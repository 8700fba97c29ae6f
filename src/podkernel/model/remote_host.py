"""Where a remote Podman is: an SSH destination and its API socket's path, and a kernel's
``remote`` setting (a system connection's name, or a URL and key) as install stores it."""

from __future__ import annotations

import json
import os
import re
from typing import NamedTuple

from ..errors import PodkernelError

# Compiled at first use, by re (not at import: a local start parses no URL).
SSH_URL = r"ssh://(?:(?P<user>[^@/]+)@)?(?P<host>\[[^\]]+\]|[^:/]+):(?P<port>\d+)(?P<socket>/.*)"


class RemoteHost(NamedTuple):
    """Where a remote Podman is: an SSH destination and the path of its API socket there."""

    user: str  # empty: ssh's default
    host: str
    port: int
    socket: str
    identity: str | None = None

    @classmethod
    def parse(cls, url: str, identity: str | None = None) -> RemoteHost:
        """Read ``ssh://USER@HOST:PORT/SOCKET`` (Podman's form; the port is required)."""
        match = re.fullmatch(SSH_URL, url)
        if not match:
            raise PodkernelError(
                f"{url!r} is not a remote Podman URL: give ssh://USER@HOST:PORT/path/to/podman.sock "
                "(with the port, as Podman needs it)"
            )
        return cls(
            match["user"] or "", match["host"].strip("[]"), int(match["port"]), match["socket"], identity or None
        )

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"ssh://{self.user + '@' if self.user else ''}{host}:{self.port}{self.socket}"

    @property
    def destination(self) -> str:
        """What ssh is given: without a user, ssh's own default (~/.ssh/config, else this user's name)."""
        return f"{self.user}@{self.host}" if self.user else self.host

    def to_word(self) -> str:
        """One command-line word that :func:`from_word` reads back (for the watchdog)."""
        return json.dumps({"url": self.url, "identity": self.identity})

    @classmethod
    def from_word(cls, word: str) -> RemoteHost:
        data = json.loads(word)
        return cls.parse(data["url"], data.get("identity"))


def remote_setting(connection: str | None, url: str | None, identity: str | None) -> dict[str, str]:
    """A kernel's ``remote`` setting from --connection, or --url and --identity; empty for none."""
    if connection and url:
        raise PodkernelError("give --connection or --url, not both")
    if identity and not url:
        raise PodkernelError("--identity goes with --url (a system connection names its own key)")
    if connection:
        return {"connection": connection}
    if not url:
        return {}
    if identity:
        identity = os.path.abspath(os.path.expanduser(identity))
        if not os.path.isfile(identity):
            raise PodkernelError(f"--identity {identity}: no such file; give the SSH private key's path")
    RemoteHost.parse(url, identity)  # a malformed URL is an error now, not at the first start
    return {"url": url, **({"identity": identity} if identity else {})}

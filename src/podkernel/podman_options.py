"""What podkernel knows about ``podman run`` and ``podman build`` options (pure tables and checks).

Options are read the way Podman's own parser reads them: a long option takes its value
after ``=`` or as the next argument unless it is a boolean; short options can be grouped
(``-it``) and a short option's value may follow without a space (``-p8888:8888``).
The tables come from ``podman run --help`` and ``podman build --help`` (Podman 4).
"""

from __future__ import annotations

from typing import NamedTuple

from .errors import PodkernelError

# Options of `podman run` that take no value.
RUN_BOOLEAN_OPTIONS = frozenset(
    {
        "--detach",
        "--disable-content-trust",
        "--env-host",
        "--help",
        "--http-proxy",
        "--init",
        "--interactive",
        "--no-healthcheck",
        "--no-hosts",
        "--oom-kill-disable",
        "--passwd",
        "--privileged",
        "--publish-all",
        "--quiet",
        "--read-only",
        "--read-only-tmpfs",
        "--replace",
        "--rm",
        "--rmi",
        "--rootfs",
        "--sig-proxy",
        "--tls-verify",
        "--tty",
        "--unsetenv-all",
    }
)
RUN_BOOLEAN_SHORT = frozenset("diPqt")
RUN_SHORT_TO_LONG = {
    "a": "--attach",
    "c": "--cpu-shares",
    "d": "--detach",
    "e": "--env",
    "h": "--hostname",
    "i": "--interactive",
    "l": "--label",
    "m": "--memory",
    "p": "--publish",
    "P": "--publish-all",
    "q": "--quiet",
    "t": "--tty",
    "u": "--user",
    "v": "--volume",
    "w": "--workdir",
}

# Options that `podman build` knows and `podman run` does not.
BUILD_ONLY_OPTIONS = frozenset(
    {
        "--all-platforms",
        "--build-arg",
        "--build-arg-file",
        "--build-context",
        "--cache-from",
        "--cache-to",
        "--cache-ttl",
        "--cert-dir",
        "--compress",
        "--cpp-flag",
        "--creds",
        "--decryption-key",
        "--disable-compression",
        "--file",
        "-f",
        "--force-rm",
        "--format",
        "--from",
        "--hooks-dir",
        "--identity-label",
        "--ignorefile",
        "--iidfile",
        "--isolation",
        "--jobs",
        "--layers",
        "--logfile",
        "--logsplit",
        "--manifest",
        "--no-cache",
        "--omit-history",
        "--os-feature",
        "--os-version",
        "--output",
        "-o",
        "--retry",
        "--retry-delay",
        "--runtime-flag",
        "--sign-by",
        "--skip-unused-stages",
        "--squash",
        "--squash-all",
        "--ssh",
        "--stdin",
        "--tag",
        "--target",
        "--timestamp",
        "--userns-gid-map",
        "--userns-gid-map-group",
        "--userns-uid-map",
        "--userns-uid-map-user",
    }
)

# Run options podkernel owns, with the reason shown when a user gives one.
RESERVED_RUN_OPTIONS = {
    "--detach": "podkernel runs the container itself and waits for it",
    "--interactive": "a kernel talks over its ports, not stdin",
    "--tty": "a kernel talks over its ports, not a terminal",
    "--attach": "podkernel decides what the container's streams are attached to",
    "--rm": "podkernel always removes the kernel's container",
    "--name": "podkernel names each kernel's container so it can clean it up",
    "--pidfile": "podkernel uses it to watch the kernel's process",
}
RESERVED_BUILD_OPTIONS = {
    "--iidfile": "podkernel reads the built image's ID from its own --iidfile",
}


def option_name(arg: str) -> str:
    """The option an argument names (``--env=A=B`` -> ``--env``), or ``""`` for a non-option."""
    if arg.startswith("--") and len(arg) > 2:
        return arg.split("=", 1)[0]
    if arg.startswith("-") and len(arg) > 1:
        return arg[:2]
    return ""


class Option(NamedTuple):
    """One option found in an argument list, with its value when it has one."""

    name: str
    value: str | None


def parse_run_options(args: list[str]) -> list[Option]:
    """The options in a list of ``podman run`` arguments, long names for short ones."""
    options: list[Option] = []
    index = 0
    while index < len(args):
        arg = args[index]
        index += 1
        if arg.startswith("--") and len(arg) > 2:
            name, has_value, value = arg.partition("=")
            if not has_value and name in RUN_BOOLEAN_OPTIONS:
                options.append(Option(name, None))
                continue
            if not has_value:
                value = args[index] if index < len(args) else ""
                index += 1
            options.append(Option(name, value))
        elif arg.startswith("-") and len(arg) > 1:
            letters = arg[1:]
            for position, letter in enumerate(letters):
                long_name = RUN_SHORT_TO_LONG.get(letter, "-" + letter)
                if letter in RUN_BOOLEAN_SHORT:
                    options.append(Option(long_name, None))
                    continue
                value = letters[position + 1 :].lstrip("=")
                if not value and index < len(args):
                    value, index = args[index], index + 1
                options.append(Option(long_name, value))
                break
    return options


def check_run_args(run_args: list[str]) -> None:
    """Refuse run args that would break how podkernel runs the kernel."""
    for option in parse_run_options(run_args):
        reason = RESERVED_RUN_OPTIONS.get(option.name)
        if reason:
            raise PodkernelError(
                f"podman run option {option.name} is not allowed in a kernel's run args: "
                f"{reason}; remove it and install again"
            )


def check_build_args(build_args: list[str]) -> None:
    """Refuse build args that would break how podkernel pins the built image."""
    for arg in build_args:
        reason = RESERVED_BUILD_OPTIONS.get(option_name(arg))
        if reason:
            raise PodkernelError(
                f"podman build option {option_name(arg)} is not allowed in a kernel's build args: "
                f"{reason}; remove it and install again"
            )


def gives_option(run_args: list[str], name: str) -> bool:
    """Whether the user's run args already set the option ``name`` (a long name)."""
    return any(option.name == name for option in parse_run_options(run_args))

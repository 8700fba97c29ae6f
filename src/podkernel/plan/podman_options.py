"""What podkernel knows about ``podman run`` and ``podman build`` options (pure tables and checks).

Options are read the way Podman's own parser reads them: a long option takes its value
after ``=`` or as the next argument unless it is a boolean; short options can be grouped
(``-it``) and a short option's value may follow without a space (``-p8888:8888``).
The tables come from ``podman run --help`` and ``podman build --help`` (Podman 4).
"""

from __future__ import annotations

from typing import NamedTuple

from ..errors import PodkernelError

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
        "--no-hostname",  # Podman 5.4
    }
)
# Options of `podman run` that take a value (Podman 4.3's list, hidden aliases, and a few newer).
RUN_VALUE_OPTIONS = frozenset(
    {
        "--add-host",
        "--annotation",
        "--arch",
        "--attach",
        "--authfile",
        "--blkio-weight",
        "--blkio-weight-device",
        "--cap-add",
        "--cap-drop",
        "--cgroup-conf",
        "--cgroup-parent",
        "--cgroupns",
        "--cgroups",
        "--chrootdirs",
        "--cidfile",
        "--conmon-pidfile",
        "--cpu-period",
        "--cpu-quota",
        "--cpu-rt-period",
        "--cpu-rt-runtime",
        "--cpu-shares",
        "--cpus",
        "--cpuset-cpus",
        "--cpuset-mems",
        "--detach-keys",
        "--device",
        "--device-cgroup-rule",
        "--device-read-bps",
        "--device-read-iops",
        "--device-write-bps",
        "--device-write-iops",
        "--dns",
        "--dns-option",
        "--dns-search",
        "--entrypoint",
        "--env",
        "--env-file",
        "--env-merge",
        "--expose",
        "--gidmap",
        "--group-add",
        "--health-cmd",
        "--health-interval",
        "--health-on-failure",
        "--health-retries",
        "--health-start-period",
        "--health-timeout",
        "--hostname",
        "--hostuser",
        "--image-volume",
        "--init-path",
        "--ip",
        "--ip6",
        "--ipc",
        "--label",
        "--label-file",
        "--log-driver",
        "--log-opt",
        "--mac-address",
        "--memory",
        "--memory-reservation",
        "--memory-swap",
        "--memory-swappiness",
        "--mount",
        "--name",
        "--network",
        "--network-alias",
        "--oom-score-adj",
        "--os",
        "--passwd-entry",
        "--personality",
        "--pid",
        "--pidfile",
        "--pids-limit",
        "--platform",
        "--pod",
        "--pod-id-file",
        "--preserve-fds",
        "--publish",
        "--pull",
        "--requires",
        "--restart",
        "--sdnotify",
        "--seccomp-policy",
        "--secret",
        "--security-opt",
        "--shm-size",
        "--stop-signal",
        "--stop-timeout",
        "--subgidname",
        "--subuidname",
        "--sysctl",
        "--systemd",
        "--timeout",
        "--tmpfs",
        "--tz",
        "--uidmap",
        "--ulimit",
        "--umask",
        "--unsetenv",
        "--user",
        "--userns",
        "--uts",
        "--variant",
        "--volume",
        "--volumes-from",
        "--workdir",
        # hidden aliases and Docker-compatible spellings
        "--net",
        "--gpus",
        "--cpu-count",
        "--kernel-memory",
        "--volume-driver",
        # newer Podman
        "--group-entry",
        "--hosts-file",
        "--retry",
        "--retry-delay",
        "--shm-size-systemd",
        "--cert-dir",
        "--creds",
        "--decryption-key",
        "--health-startup-cmd",
        "--health-startup-interval",
        "--health-startup-retries",
        "--health-startup-success",
        "--health-startup-timeout",
        "--health-log-destination",
        "--health-max-log-count",
        "--health-max-log-size",
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


def parse_run_options(args: list[str], strict: bool = False) -> list[Option]:
    """The options in a list of ``podman run`` arguments, long names for short ones.

    ``strict`` (at install) refuses what cannot be read without guessing: an option this
    table does not know given without ``=VALUE`` (a flag or an option with a value? guessing
    wrong swallows the next argument), an unknown short option, and a word that is no option
    (a container command without its ``--``). Otherwise such an option is taken to have a value.
    """
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
            if not has_value and strict and name not in RUN_VALUE_OPTIONS:
                raise PodkernelError(
                    f"podkernel does not know the podman run option {name}: write it as {name}=VALUE, "
                    f"or {name}=true if it takes no value, so that it cannot take the next argument by mistake"
                )
            if not has_value:
                value = args[index] if index < len(args) else ""
                index += 1
            options.append(Option(name, value))
        elif arg.startswith("-") and len(arg) > 1:
            letters = arg[1:]
            for position, letter in enumerate(letters):
                if strict and letter not in RUN_SHORT_TO_LONG:
                    raise PodkernelError(f"-{letter} in {arg!r} is not a podman run option: check the run args")
                long_name = RUN_SHORT_TO_LONG.get(letter, "-" + letter)
                if letter in RUN_BOOLEAN_SHORT:
                    options.append(Option(long_name, None))
                    continue
                value = letters[position + 1 :].lstrip("=")
                if not value and index < len(args):
                    value, index = args[index], index + 1
                options.append(Option(long_name, value))
                break
        elif strict:
            raise PodkernelError(
                f"{arg!r} among the podman run args is not an option: the container command goes after a "
                f"-- separator (podkernel install IMAGE [run args] -- COMMAND)"
            )
    return options


def is_run_options(args: list[str]) -> bool:
    """Whether ``args`` is a non-empty list of podman run options and their values, and nothing else."""
    try:
        return bool(args) and bool(parse_run_options(args, strict=True))
    except PodkernelError:
        return False


# Values of --network (or --net) under which a kernel's ports cannot be kept to 127.0.0.1.
REFUSED_NETWORKS = {
    "host": "the kernel would listen on every interface of this host; leave --network out",
    "none": "the kernel's ports could not be published; leave --network out",
}


def check_run_args(run_args: list[str]) -> None:
    """Refuse run args that would break how podkernel runs the kernel, or that it cannot read."""
    for option in parse_run_options(run_args, strict=True):
        reason = RESERVED_RUN_OPTIONS.get(option.name)
        if option.name in ("--network", "--net"):
            reason = REFUSED_NETWORKS.get((option.value or "").split(":")[0])
        if reason:
            shown = option.name if option.name in RESERVED_RUN_OPTIONS else f"{option.name}={option.value}"
            raise PodkernelError(
                f"podman run option {shown} is not allowed in a kernel's run args: {reason}; "
                "remove it and install again"
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

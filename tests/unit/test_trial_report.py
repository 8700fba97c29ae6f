"""The trial start's own logic without Podman: what it reports, and how it reads a container's sockets."""

import ipaddress
import os
import socket

from podkernel.launcher.trial import KernelReport, TrialFailed
from podkernel.system.host import listening_addresses


def test_listening_addresses_tell_loopback_from_all_interfaces():
    sockets = []
    for family, address in ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET, "0.0.0.0"), (socket.AF_INET6, "::1")):
        listener = socket.socket(family)
        listener.bind((address, 0))
        listener.listen()
        sockets.append(listener)
    bound_only = socket.socket()
    bound_only.bind(("127.0.0.1", 0))  # bound, not listening: no kernel answers there
    try:
        found = listening_addresses(os.getpid())
        ports = [listener.getsockname()[1] for listener in sockets]
        assert found[ports[0]] == [ipaddress.ip_address("127.0.0.1")]
        assert found[ports[1]] == [ipaddress.ip_address("0.0.0.0")]
        assert found[ports[2]] == [ipaddress.ip_address("::1")]
        assert all(address.is_loopback for port in (ports[0], ports[2]) for address in found[port])
        assert not found[ports[1]][0].is_loopback
        assert bound_only.getsockname()[1] not in found
    finally:
        for listener in [*sockets, bound_only]:
            listener.close()


def test_listening_addresses_of_a_process_that_is_gone():
    assert listening_addresses(2**22 + 1) is None  # above the kernel's pid_max limit: never a process


def report(**fields):
    values = dict(
        implementation="IRkernel",
        implementation_version="1.3",
        language="R",
        language_version="4.2.2",
        ready_s=1.37,
        interrupt="interrupt works (0.01 s)",
        interrupt_works=True,
    )
    return KernelReport(**{**values, **fields})


def test_the_report_is_one_line():
    assert report().summary() == "ok: IRkernel 1.3 (R 4.2.2), ready in 1.4 s, interrupt works (0.01 s)"
    failed = report(
        interrupt="a waiting cell kept running 5 s after the interrupt (message mode)", interrupt_works=False
    )
    assert failed.summary().startswith("started, but interrupts do not work: IRkernel 1.3 (R 4.2.2), ready in 1.4 s, ")
    unknown = report(implementation="", implementation_version="", language="", language_version="")
    assert unknown.summary().startswith("ok: a kernel, ready in 1.4 s")


def test_a_failed_trial_gives_its_reason_and_advice_first_then_the_output():
    failure = TrialFailed("the kernel's container exited with status 1", ["Traceback ...", "ImportError: x"])
    lines = failure.explain("nothing was installed").splitlines()
    assert lines[0] == "the kernel's container exited with status 1; nothing was installed"
    assert lines[2:] == ["    Traceback ...", "    ImportError: x"]
    assert TrialFailed("no reply", []).explain("fix it") == "no reply; fix it"

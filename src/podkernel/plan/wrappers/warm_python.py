"""A warm Python kernel's command, run by the kernel's own Python as ``PY -c "$(cat this file)"``.

Arguments: the connection file's path, the idle seconds, whether a shell ran the kernel (which
exports $PWD: ``shell`` or ``exec``), then the module and its arguments. It imports the kernel's
modules first, then waits as warm.sh does (``ps`` shows it as ``podkernel-wait`` meanwhile),
then runs the module as ``PY -m`` would. Handed its connection file, the kernel is its imports
ahead of a cold start; it needs nothing the kernel lacks.
"""


def wait():
    import os
    import signal
    import sys

    file, idle = sys.argv[1], int(sys.argv[2])
    signal.signal(signal.SIGALRM, lambda *_: os._exit(0))
    signal.alarm(idle)
    try:
        import ipykernel.ipkernel  # noqa: F401
        import ipykernel.kernelapp  # noqa: F401
    except Exception:
        pass
    with open("/proc/self/comm") as comm:
        name = comm.read().strip()
    with open("/proc/self/comm", "w") as comm:
        comm.write("podkernel-wait")
    umask = os.umask(0o077)
    try:
        with open(os.path.join(os.path.dirname(file), ".start"), "rb") as fifo:
            contents = fifo.read()
        with open(file + ".new", "wb") as new:
            new.write(contents)
        os.rename(file + ".new", file)
    except OSError:
        os._exit(98)
    signal.alarm(0)
    signal.signal(signal.SIGALRM, signal.SIG_DFL)
    os.umask(umask)
    with open("/proc/self/comm", "w") as comm:
        comm.write(name)
    if sys.argv[3] == "shell":
        os.environ["PWD"] = os.getcwd()
    sys.argv = sys.argv[4:]
    if sys.path[:1] == [""]:  # where -c puts the folder, -m puts its full path
        sys.path[0] = os.getcwd()


wait()
del wait
__import__("runpy")._run_module_as_main(__import__("sys").argv[0])

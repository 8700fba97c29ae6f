"""The ``podkernel`` command line: a thin click layer over one module per command."""

from __future__ import annotations

import functools
import signal
import sys

import click

from . import __version__
from .engines import ENGINE_NAMES
from .errors import PodkernelError
from .model.remote_host import remote_setting
from .model.settings import DEFAULT_WARM_IDLE_S, GPU_KINDS, INTERRUPT_MODES, MIN_WARM_IDLE_S

ENGINE_HELP = "Container engine CLI (default: $PODKERNEL_ENGINE, else podman)."
WARM_IDLE = {
    "type": click.IntRange(min=MIN_WARM_IDLE_S),
    "default": DEFAULT_WARM_IDLE_S,
    "show_default": True,
    "metavar": "SECONDS",
    "help": "How long a warm container waits for a start before it removes itself.",
}
CHECK_TIMEOUT = {
    "type": click.FloatRange(min=1),
    "default": 60,
    "show_default": True,
    "metavar": "SECONDS",
    "help": "How long the trial start waits for the kernel's first reply.",
}


# click 8.2 raises this for a bare `podkernel`; older versions print the help themselves.
NO_ARGS_IS_HELP = getattr(click.exceptions, "NoArgsIsHelpError", ())


def remote_options(what: str):
    """--connection, --url and --identity, handed on as one ``remote`` setting (model.remote_host)."""

    def decorate(command):
        @click.option("--connection", metavar="NAME", help=f"{what} on another machine (a Podman system connection).")
        @click.option("--url", metavar="ssh://USER@HOST:PORT/SOCKET", help=f"{what} on another machine.")
        @click.option("--identity", metavar="KEY", help="The SSH private key for --url.")
        @functools.wraps(command)
        def with_remote(*args, connection: str | None, url: str | None, identity: str | None, **kwargs):
            return command(*args, remote=remote_setting(connection, url, identity), **kwargs)

        return with_remote

    return decorate


def _interrupt(*_) -> None:
    raise KeyboardInterrupt


class _Group(click.Group):
    """Every error a user can cause, click's own usage errors included, is one line on stderr."""

    def main(self, *args, **kwargs):
        # SIGTERM and SIGHUP stop a command as Ctrl-C does: what it made meanwhile (a staged
        # kernelspec, a trial's kernel, a build) is cleaned up on the way out.
        for signum in (signal.SIGTERM, signal.SIGHUP):
            signal.signal(signum, _interrupt)
        try:
            result = super().main(*args, standalone_mode=False, **kwargs)
        except NO_ARGS_IS_HELP as error:  # plain `podkernel`: its help, as before click 8.2
            click.echo(error.ctx.get_help())
            sys.exit(0)
        except PodkernelError as error:
            click.echo(f"Error: {error}", err=True)
            sys.exit(1)
        except click.ClickException as error:
            message = " ".join(error.format_message().split())
            if isinstance(error, click.UsageError) and error.ctx is not None:
                message += f" (see {error.ctx.command_path} --help)"
            click.echo(f"Error: {message}", err=True)
            sys.exit(error.exit_code)
        except click.Abort:
            click.echo("Aborted.", err=True)
            sys.exit(1)
        sys.exit(result if isinstance(result, int) else 0)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="podkernel")
def cli() -> None:
    """Run Jupyter kernels in Podman containers.

    Install a kernel from an image or a folder with a Containerfile; any Jupyter frontend
    then starts it in a fresh container.
    """


@cli.command(context_settings={"allow_interspersed_args": False, "ignore_unknown_options": True})
@click.option("--build", "build", is_flag=True, help="TARGET is a folder with a Containerfile or Dockerfile to build.")
@click.option("--name", help="Kernelspec name (default: podkernel- and the image's or folder's name).")
@click.option("--display-name", help="The name frontends show.")
@click.option("--language", help="The kernel's language (default: what the trial start's kernel says, else python).")
@click.option(
    "--interrupt-mode",
    type=click.Choice(INTERRUPT_MODES),
    default="message",
    show_default=True,
    help="How frontends interrupt the kernel: a message, or SIGINT forwarded into the container.",
)
@click.option(
    "--env",
    "env",
    multiple=True,
    metavar="KEY=VALUE",
    help="Set an environment variable in the container (repeatable).",
)
@click.option("--user", "location", flag_value="user", default=True, help="Install for the current user (default).")
@click.option("--sys-prefix", "location", flag_value="sys-prefix", help="Install into this Python environment.")
@click.option("--prefix", type=click.Path(file_okay=False), help="Install into PREFIX/share/jupyter/kernels.")
@click.option("--replace", is_flag=True, help="Overwrite a kernel of the same name.")
@click.option(
    "--mount-cwd",
    is_flag=True,
    help="Mount the folder the kernel starts in (the notebook's) at the same path, and work there.",
)
@click.option(
    "--keep-id",
    is_flag=True,
    help="Rootless Podman: run as your own uid (--userns=keep-id), so files in mounts stay yours.",
)
@click.option(
    "--gpu", type=click.Choice(GPU_KINDS), help="Pass the host's GPUs in: NVIDIA through CDI, AMD through ROCm devices."
)
@click.option("--engine", type=click.Choice(ENGINE_NAMES), help=ENGINE_HELP)
@remote_options("Run the kernel")
@click.option(
    "--check/--no-check",
    default=True,
    help="Start the kernel once before installing it, as a frontend would (default), or skip that.",
)
@click.option("--check-timeout", **CHECK_TIMEOUT)
@click.option("--warm", is_flag=True, help="Keep a pre-started container ready, so that starts and restarts are quick.")
@click.option("--warm-idle", **WARM_IDLE)
@click.argument("target", metavar="IMAGE|DIR")
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
@click.pass_context
def install(ctx: click.Context, **options) -> None:
    """Install a kernel that runs in a container, once a trial start has shown that it works.

    \b
      podkernel install IMAGE [podman run args] -- [container command args]
      podkernel install --build DIR [podman build args] -- [podman run args] -- [container command args]

    Everything after IMAGE or DIR is passed to Podman as written.
    """
    if options["target"].startswith("-"):
        raise click.UsageError(_unknown_option_message(ctx, options["target"]), ctx)
    from .commands.install import InstallOptions
    from .commands.install import install as run

    run(InstallOptions(**options))


def _unknown_option_message(ctx: click.Context, word: str) -> str:
    """An option that came before IMAGE or DIR but is not install's: say so, and name the closest one."""
    import difflib

    given = word.split("=", 1)[0]
    known = [name for param in ctx.command.params for name in (*param.opts, *param.secondary_opts)]
    message = f"install has no option {given}"
    closest = difflib.get_close_matches(given, known, n=1, cutoff=0.6)
    if closest:
        return f"{message}: did you mean {closest[0]}?"
    return f"{message}; options for podman go after IMAGE or DIR (podkernel install IMAGE {word} ...)"


@cli.command(name="list")
def list_() -> None:
    """List the podkernel kernels Jupyter can see."""
    from .commands.list import list_kernels

    list_kernels()


@cli.command()
@click.argument("names", nargs=-1, required=True, metavar="NAME...")
def remove(names: tuple[str, ...]) -> None:
    """Remove podkernel kernels (and no other kernels)."""
    from .commands.remove import remove as run

    run(list(names))


@cli.command()
@click.argument("name")
def build(name: str) -> None:
    """Build (or pull) a kernel's image now and print its image ID."""
    from .commands.build import build as run

    run(name)


@cli.command()
@click.argument("name")
def show(name: str) -> None:
    """Print the podman command that starting the kernel runs."""
    from .commands.show import show as run

    run(name)


@cli.command()
@click.argument("name")
@click.option("--timeout", **CHECK_TIMEOUT)
def check(name: str, timeout: float) -> None:
    """Start an installed kernel once, as a frontend would, and report what it is or why it fails."""
    from .commands.check import check as run

    run(name, timeout)


@cli.command()
@click.argument("name")
@click.option("--off", is_flag=True, help="Switch it off, and remove the warm containers waiting for it.")
@click.option("--idle", type=WARM_IDLE["type"], metavar="SECONDS", help=WARM_IDLE["help"])
def warm(name: str, off: bool, idle: int | None) -> None:
    """Keep a pre-started container ready for an installed kernel (or, with --off, stop doing so)."""
    from .commands.warm import switch

    for line in switch(name, not off, idle):
        click.echo(line)


@cli.command()
@click.option("--image", help="Image to try containers and ports with (default: an installed kernel's image).")
@click.option("--engine", type=click.Choice(ENGINE_NAMES), help=ENGINE_HELP)
@remote_options("Check the engine")
def doctor(image: str | None, engine: str | None, remote: dict[str, str]) -> None:
    """Check that this host (or another machine) can run podkernel kernels, and say how to fix what is wrong."""
    from .commands.doctor import doctor as run

    run(image, engine, remote)


@cli.command()
@remote_options("List those")
def ps(remote: dict[str, str]) -> None:
    """List running podkernel containers and whether their launcher is alive."""
    from .commands.ps import ps as run

    run(remote)


@cli.command()
@click.option("--all", "everything", is_flag=True, help="Remove every podkernel container, running kernels included.")
@remote_options("Prune those")
def prune(everything: bool, remote: dict[str, str]) -> None:
    """Remove podkernel containers whose launcher is gone (never other containers), and end
    what a start killed midway left running."""
    from .commands.prune import prune as run

    run(everything, remote)


# Listed here for --help; ``__main__`` runs ``start`` before click is even imported.
@cli.command()
@click.argument("name")
@click.argument("connection_file")
@click.argument("kernel_dir", required=False)
def start(name: str, connection_file: str, kernel_dir: str | None) -> None:
    """Start a kernel for a connection file (what kernel.json runs)."""
    from .launcher.start import start_command

    raise SystemExit(start_command([name, connection_file, *([kernel_dir] if kernel_dir else [])], None))

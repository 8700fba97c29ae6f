"""The ``podkernel`` command line: a thin click layer over one module per command."""

from __future__ import annotations

import sys

import click

from . import __version__
from .errors import PodkernelError
from .settings import ENGINE_NAMES, GPU_KINDS, INTERRUPT_MODES

ENGINE_HELP = "Container engine CLI (default: $PODKERNEL_ENGINE, else podman)."


# click 8.2 raises this for a bare `podkernel`; older versions print the help themselves.
NO_ARGS_IS_HELP = getattr(click.exceptions, "NoArgsIsHelpError", ())


class _Group(click.Group):
    """Every error a user can cause, click's own usage errors included, is one line on stderr."""

    def main(self, *args, **kwargs):
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
@click.option("--language", default="python", show_default=True, help="The kernel's language.")
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
@click.argument("target", metavar="IMAGE|DIR")
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def install(**options) -> None:
    """Install a kernel that runs in a container.

    \b
      podkernel install IMAGE [podman run args] -- [container command args]
      podkernel install --build DIR [podman build args] -- [podman run args] -- [container command args]

    Everything after IMAGE or DIR is passed to Podman as written.
    """
    from .commands.install import install as run

    run(**options)


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
@click.option("--image", help="Image to try containers and ports with (default: an installed kernel's image).")
@click.option("--engine", type=click.Choice(ENGINE_NAMES), help=ENGINE_HELP)
def doctor(image: str | None, engine: str | None) -> None:
    """Check that this host can run podkernel kernels, and say how to fix what is wrong."""
    from .commands.doctor import doctor as run

    run(image, engine)


@cli.command()
def ps() -> None:
    """List running podkernel containers and whether their launcher is alive."""
    from .commands.ps import ps as run

    run()


@cli.command()
@click.option("--all", "everything", is_flag=True, help="Remove every podkernel container, running kernels included.")
def prune(everything: bool) -> None:
    """Remove podkernel containers whose launcher is gone (never other containers)."""
    from .commands.prune import prune as run

    run(everything)


# Listed here for --help; ``__main__`` runs ``start`` before click is even imported.
@cli.command()
@click.argument("name")
@click.argument("connection_file")
@click.argument("kernel_dir", required=False)
def start(name: str, connection_file: str, kernel_dir: str | None) -> None:
    """Start a kernel for a connection file (what kernel.json runs)."""
    from .commands.start import start as run

    raise SystemExit(run(name, connection_file, kernel_dir))

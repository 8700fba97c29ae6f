"""Find the image ID a kernel runs: build its directory, or look up (and if needed pull) its image."""

from __future__ import annotations

import os
import re
from collections.abc import Callable

from ..engines.base import ContainerEngine, OutputHandler, to_stderr
from ..errors import PodkernelError
from ..model.settings import KernelSettings

# ``podkernel start`` runs the image with this ID instead of resolving the kernel's image, so
# that install's trial start runs exactly the image that install has just built or found.
TRIAL_IMAGE_ID_VARIABLE = "PODKERNEL_TRIAL_IMAGE_ID"


def built_image_tag(kernel_name: str) -> str:
    """The tag a ``--build`` kernel's current image carries, so that ``podman image prune`` keeps it.

    Each build moves the tag to the new image; the image it replaces is left to prune.
    """
    repository = re.sub(r"[._-]*[^a-z0-9._-]+[._-]*|[._-]{2,}", "-", kernel_name.lower()).strip("._-") or "kernel"
    return f"localhost/podkernel-build/{repository}:latest"


def resolve_image(
    settings: KernelSettings,
    engine: ContainerEngine,
    show: OutputHandler = to_stderr,
    looked_up: Callable[[], str | None] | None = None,
) -> str:
    """The ID of the image to run now; build output and pull progress lines go to ``show``.

    ``looked_up`` is an :meth:`ContainerEngine.image_id_soon` of the kernel's image started earlier.
    """
    if settings.build_dir is not None:
        if not os.path.isdir(settings.build_dir):
            raise PodkernelError(
                f"build directory {settings.build_dir} of kernel {settings.name!r} is gone: "
                f"restore it, or reinstall the kernel with podkernel install --replace"
            )
        return engine.build(settings.build_dir, settings.build_args, show, tag=built_image_tag(settings.name))
    assert settings.image is not None
    image_id = looked_up() if looked_up is not None else engine.image_id(settings.image)
    if image_id is None:
        engine.pull(settings.image, show)
        image_id = engine.image_id(settings.image)
    if image_id is None:
        raise PodkernelError(f"image {settings.image} is still missing after a pull: check its name")
    return image_id

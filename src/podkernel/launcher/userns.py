"""``--keep-id``: under rootless Podman, map the host user onto the user the image runs as.

Plain ``--userns=keep-id`` runs the kernel as the host user's own uid. An image whose
``USER`` is someone else (uid 1000, ``jovyan``) gets ``keep-id:uid=N,gid=M`` instead, so the
kernel keeps its own user and whatever it writes in a mount still belongs to the host user.
A user given by name is looked up once per image ID, by running ``id`` in it, and cached.
"""

from __future__ import annotations

import json
import os

from ..engines.base import ContainerEngine
from ..errors import PodkernelError
from ..model.settings import KernelSettings
from ..plan.podman_options import parse_run_options

ROOT_USERS = ("", "root", "0", "0:0", "root:root")


def _cache_path() -> str:
    cache_home = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(cache_home, "podkernel", "image-users.json")


def _cached_ids(engine: ContainerEngine, image_id: str) -> tuple[int, int] | None:
    path = _cache_path()
    try:
        with open(path, encoding="utf-8") as handle:
            cache = json.load(handle)
    except (OSError, ValueError):
        cache = {}
    if image_id in cache:
        uid, gid = cache[image_id]
        return uid, gid
    ids = engine.image_user_ids(image_id)
    if ids is not None:
        cache[image_id] = list(ids)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w", encoding="utf-8") as handle:
            json.dump(cache, handle)
    return ids


def keep_id_userns(settings: KernelSettings, engine: ContainerEngine, image_id: str) -> str | None:
    """The ``--userns`` run arg for ``--keep-id``, or None where it does not apply (not rootless)."""
    if not settings.keep_id or os.geteuid() == 0 or not engine.supports_keep_id:
        return None
    given = [option.value for option in parse_run_options(settings.run_args) if option.name == "--user"]
    user = given[-1] if given else engine.image_user(image_id)
    if user in ROOT_USERS:
        return "--userns=keep-id"
    uid, _, gid = user.partition(":")
    if uid.isdigit() and (not gid or gid.isdigit()):
        return f"--userns=keep-id:uid={uid},gid={gid or uid}"
    ids = None if given else _cached_ids(engine, image_id)
    if ids is None:
        raise PodkernelError(
            f"--keep-id needs the number of the image's user {user!r} and cannot find it: "
            f"add --user UID:GID to the run args (reinstall with --replace), or drop --keep-id"
        )
    return f"--userns=keep-id:uid={ids[0]},gid={ids[1]}"

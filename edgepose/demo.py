"""The demo photo that ``edgepose run`` (and ``bench``) use when given no source.

Grace Hopper's portrait (U.S. Navy photo, public domain; 512x600, 61 KB), as matplotlib
ships it in ``mpl-data/sample_data/grace_hopper.jpg``. Found, in order: in an installed
matplotlib (the ``mediapipe`` extras bring one), in the cache (``demo/``), or taken once
out of a pinned matplotlib wheel on PyPI (7.8 MB, sha256-checked, then deleted). No
edgepose dependency is needed for it, and no image lives in this repository.
"""

from __future__ import annotations

import importlib.util
import logging
from pathlib import Path

from edgepose import downloads, models
from edgepose.downloads import Archive, Member

log = logging.getLogger(__name__)

PHOTO = Member("matplotlib/mpl-data/sample_data/grace_hopper.jpg",
               "a8ca6d734765703b09728ab47fe59f473d93ae3967fc24c7c0288c3c7adb7130")
# Any matplotlib wheel holds the same photo: this is the smallest file of that release.
WHEEL = Archive(
    "matplotlib 3.9.4 wheel (PyPI)",
    "https://files.pythonhosted.org/packages/87/b8/2737456e566e9f4d94ae76b8aa0d953d9acb847714f9"
    "a7ad80184474f5be/matplotlib-3.9.4-pp39-pypy39_pp73-macosx_11_0_arm64.whl",
    "matplotlib-3.9.4-pp39-pypy39_pp73-macosx_11_0_arm64.whl", 7_769_300,
    "09debb9ce941eb23ecdbe7eab972b1c3e0276dcf01688073faff7b0f61d6c6ca")


class NoDemoPhoto(Exception):
    """No demo photo here, and it could not be fetched: the message says why."""


def cached_path() -> Path:
    return models.cache_dir() / "demo" / Path(PHOTO.path).name


def find_photo() -> Path | None:
    """The demo photo if this machine has it (installed matplotlib, or the cache)."""
    for path in (installed_copy(), cached_path()):
        if path is not None and path.is_file() and models.sha256_of(path) == PHOTO.sha256:
            return path
    return None


def installed_copy() -> Path | None:
    """Where an installed matplotlib keeps the photo (found without importing it)."""
    spec = importlib.util.find_spec("matplotlib")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0]) / "mpl-data" / "sample_data" / Path(PHOTO.path).name


def demo_photo(download: bool = True, timeout: float = 30.0) -> Path:
    """The demo photo's path, fetched once into the cache when it is not here.

    NoDemoPhoto when it is not here and downloading is off (``download=False`` or
    ``EDGEPOSE_OFFLINE``) or fails.
    """
    found = find_photo()
    if found is not None:
        return found
    if not download or models.offline():
        raise NoDemoPhoto("the demo photo is not on this machine and downloads are turned off")
    dest = cached_path()
    log.info("fetching the demo photo from %s", WHEEL.name)
    try:
        downloads.fetch_members(WHEEL, {dest: PHOTO}, dest.parent, timeout=timeout)
    except downloads.DownloadError as exc:
        raise NoDemoPhoto(f"the demo photo could not be fetched ({exc})") from None
    except OSError as exc:
        raise NoDemoPhoto(f"the demo photo could not be written into {dest.parent} "
                          f"({exc.strerror or exc}): set EDGEPOSE_CACHE to a writable folder") from None
    return dest

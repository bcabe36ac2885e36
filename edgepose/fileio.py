"""Writing files so that a reader never sees one half written.

Model files are found by name (the cache, ``converted/``, a ``.task`` bundle): a crash or
a failed check in the middle of writing one must leave either the old file or none.
"""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from pathlib import Path
from typing import Iterator

# mkstemp makes a private file; a model or report is not a secret.
FILE_MODE = 0o644


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: int = FILE_MODE) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; when the block ends without an exception,
    rename it to ``path``, else delete it.

    The block writes the file by path (``tmp.write_bytes(data)``, ``onnx.save(m, tmp)``,
    a library writer), and may check it before it goes into place: raising inside the
    block leaves ``path`` as it was. The parent folder is created when missing.

    >>> with atomic_write(out) as tmp:
    ...     tmp.write_bytes(data)
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}-", suffix=".part")
    except OSError as exc:  # name the file asked for, not the temporary one
        raise OSError(exc.errno, exc.strerror, str(path)) from None
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def check_writable(folder: str | os.PathLike, target: str | os.PathLike) -> None:
    """InputError unless a file can be made in ``folder`` (created when missing) for
    ``target``: checked before a long run, so it does not fail only at its end."""
    from edgepose.errors import InputError

    if Path(folder).exists() and not Path(folder).is_dir():
        raise InputError(f"could not write {target}: {folder} is a file, not a folder")
    try:
        Path(folder).mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=folder, prefix=".edgepose-check-")
        os.close(fd)
        os.unlink(name)
    except OSError as exc:
        raise InputError(f"could not write {target}: {exc.strerror or exc}") from None


def same_file(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    """Whether ``a`` and ``b`` are one file (a link, a hard link, another spelling); when
    one does not exist yet, whether they name the same place."""
    try:
        return os.path.samefile(a, b)
    except OSError:
        return Path(a).resolve() == Path(b).resolve()


def not_a_file(path: str | os.PathLike) -> str:
    """Why ``path`` is not a file to read, as the end of a sentence ("model X ..."): "does
    not exist", "is a folder, not a file", "is a symbolic link loop", "is a broken
    symbolic link (to T)", or "is not a regular file" (a device, a socket)."""
    path = Path(path)
    try:
        os.stat(path)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return "is a symbolic link loop"
        if path.is_symlink():
            return f"is a broken symbolic link (to {os.readlink(path)})"
        return "does not exist"
    if path.is_dir():
        return "is a folder, not a file"
    return "is not a regular file"

"""Writing files so that a reader never sees one half written.

Model files are found by name (the cache, ``converted/``, a ``.task`` bundle): a crash or
a failed check in the middle of writing one must leave either the old file or none.
"""

from __future__ import annotations

import contextlib
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
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}-", suffix=".part")
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()

"""Writing output files: the one way every command, flow and report writes a file."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

__all__ = ["write_atomically"]


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_atomically(path: str | os.PathLike, content: str | bytes | Callable[[BinaryIO], None],
                     *, if_changed: bool = False) -> bool:
    """Write ``content`` (text, bytes, or a function that writes to a binary file) to
    ``path`` through a temporary file in the same folder and a rename, so that a reader
    never sees a half-written file and an interrupted run leaves none behind. The folder
    is created if needed; the file gets the mode of an ordinary new file (``0666`` less
    the umask), not ``mkstemp``'s ``0600``.

    With ``if_changed``, a file that already holds exactly ``content`` is left alone and
    keeps its modification time (simulator builds and tool caches stay incremental).
    Returns whether the file was written.
    """
    path = Path(path)
    data = content.encode() if isinstance(content, str) else content
    if if_changed and isinstance(data, bytes) and path.is_file() and path.read_bytes() == data:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as file:
            if isinstance(data, bytes):
                file.write(data)
            else:
                data(file)
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return True

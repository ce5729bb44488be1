"""Writing output files safely: check the destination first, write beside it, move into place."""
from __future__ import annotations

import os
import secrets
from contextlib import contextmanager
from pathlib import Path


def check_output(path: str | os.PathLike, overwrite: bool = False) -> Path:
    """Raise a clear ``OSError`` unless a file can be written at ``path``; return it as a ``Path``.

    Checks, in order: ``path`` is not a folder, its folder exists, and it does not exist already
    unless ``overwrite=True``. Call it before expensive work, so that a typo fails at once.
    """
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"{path} is a folder; give the output a file name")
    parent = path.parent
    if not parent.is_dir():
        if parent.exists():
            raise NotADirectoryError(f"{parent} is a file, not a folder, so {path} cannot be written")
        raise FileNotFoundError(f"no folder {parent} for {path}; create it first")
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists; pass overwrite=True to replace it")
    return path


@contextmanager
def atomic_write(path: str | os.PathLike, overwrite: bool = False):
    """Yield a temporary path beside ``path``; move it onto ``path`` when the block succeeds.

    The temporary file is removed if the block raises (``KeyboardInterrupt`` included), so a failed
    or interrupted write never leaves a partial file. Its name ends with ``path``'s own name, so
    writers that pick a format from the suffix (matplotlib, astropy's ``.fits.gz``) see the right one.
    """
    path = check_output(path, overwrite)
    tmp = path.with_name(f".tmp-{secrets.token_hex(4)}-{path.name}")
    try:
        yield tmp
        if not overwrite and path.exists():  # appeared while we were writing
            raise FileExistsError(f"{path} exists; pass overwrite=True to replace it")
        os.replace(tmp, path)
    except OSError as err:
        tmp.unlink(missing_ok=True)
        if isinstance(err, FileExistsError):
            raise
        # the error names the temporary file, or nothing; the user knows the destination
        raise type(err)(f"could not write {path} ({err.strerror or err})") from err
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise

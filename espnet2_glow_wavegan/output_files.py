"""Outputs a failed run never clobbers: written beside the target, moved into place only when complete."""

import contextlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterator


def check_output_folder(path, option: str = "--output") -> None:
    """Stop, before any model loads, when the folder an output is to go into does not exist."""
    folder = Path(path).absolute().parent
    if not folder.is_dir():
        raise SystemExit(f"ERROR: {option} {path}: the folder {folder} does not exist (create it first; nothing was written)")


@contextlib.contextmanager
def replaced_on_success(target) -> Iterator[Path]:
    """A temporary file beside ``target`` (same suffix, so that writers infer the same format); it replaces
    ``target`` when the block ends without an error, and is removed otherwise, leaving ``target`` as it was."""
    target = Path(target)
    check_output_folder(target)
    fd, partial = tempfile.mkstemp(prefix=f".{target.name}.partial-", suffix=target.suffix, dir=target.absolute().parent)
    os.close(fd)
    partial = Path(partial)
    try:
        yield partial
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    os.replace(partial, target)


@contextlib.contextmanager
def folder_replaced_on_success(target) -> Iterator[Path]:
    """As :func:`replaced_on_success` for a folder that must be new or empty: written beside it, renamed into place."""
    target = Path(target)
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise SystemExit(f"ERROR: {target} is not empty: give a new folder (nothing was overwritten)")
    check_output_folder(target, "the folder")
    partial = Path(tempfile.mkdtemp(prefix=f".{target.name}.partial-", dir=target.absolute().parent))
    try:
        yield partial
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    if target.exists():
        target.rmdir()  # empty, checked above
    partial.rename(target)

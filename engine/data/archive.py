"""Unpack an uploaded zip safely before import: no absolute paths, no '..', no links, bounded size."""
from __future__ import annotations

import errno
import shutil
import stat
import zipfile
from pathlib import Path, PurePosixPath

MAX_UNCOMPRESSED_BYTES = 20 * 1024**3   # a zip bomb stops here, not the disk
FREE_MARGIN_BYTES = 1024**3  # keep this much disk free after unpacking (the import copies the images too)


class ArchiveError(ValueError):
    """The archive is refused as a whole; nothing was imported."""


def _checked_name(info: zipfile.ZipInfo) -> PurePosixPath:
    name = PurePosixPath(info.filename.replace("\\", "/"))
    if name.is_absolute() or ".." in name.parts or (name.parts and name.parts[0].endswith(":")):
        raise ArchiveError(f"zip entry {info.filename!r} points outside the archive (path traversal); "
                           "nothing was imported")
    if stat.S_ISLNK(info.external_attr >> 16):
        raise ArchiveError(f"zip entry {info.filename!r} is a symbolic link; nothing was imported")
    return name


def _free_bytes(folder: Path) -> int:
    probe = folder
    while not probe.exists():
        probe = probe.parent
    return shutil.disk_usage(probe).free


def safe_extract(archive: Path, dest: Path) -> Path:
    """Extract every entry under `dest` after checking all of them first; returns the folder to import:
    `dest`, or its one top-level folder when the zip wraps everything in one (`zip -r x.zip myxr/`)."""
    try:
        with zipfile.ZipFile(archive) as zf:
            infos = zf.infolist()
            names = [_checked_name(info) for info in infos]
            declared = sum(info.file_size for info in infos)
            if declared > MAX_UNCOMPRESSED_BYTES:
                raise ArchiveError("zip expands to more than 20 GiB; nothing was imported")
            free = _free_bytes(dest)
            if declared + FREE_MARGIN_BYTES > free:
                raise ArchiveError(f"zip expands to {declared / 2**30:.2f} GiB but only {free / 2**30:.2f} GiB are "
                                   "free here; nothing was imported (free disk space, or import from a folder)")
            dest.mkdir(parents=True, exist_ok=True)
            written = 0
            for info, name in zip(infos, names):
                if info.is_dir() or "__MACOSX" in name.parts:
                    continue
                target = dest.joinpath(*name.parts)
                target.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(info) as src, open(target, "wb") as out:
                    while chunk := src.read(1 << 20):
                        written += len(chunk)
                        if written > declared:  # the directory lied about the sizes
                            raise ArchiveError("zip entries expand beyond their declared sizes; nothing was imported")
                        out.write(chunk)
    except zipfile.BadZipFile as error:
        raise ArchiveError(f"not a valid zip file ({error}); nothing was imported") from error
    except OSError as error:
        shutil.rmtree(dest, ignore_errors=True)
        if error.errno == errno.ENOSPC:
            raise ArchiveError("the disk filled up while unpacking the zip; nothing was imported "
                               "(free disk space and try again)") from error
        raise ArchiveError(f"could not unpack the zip ({error.strerror or error}); nothing was imported") from error
    return single_top_folder(dest)


def single_top_folder(folder: Path) -> Path:
    """The one visible sub-folder when `folder` holds nothing else (the wrapper of a zipped folder)."""
    visible = [p for p in folder.iterdir() if not p.name.startswith(".") and p.name != "__MACOSX"]
    if len(visible) == 1 and visible[0].is_dir():
        return visible[0]
    return folder

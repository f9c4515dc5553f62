"""Unpack an uploaded zip safely before import: no absolute paths, no '..', no links, bounded size."""
from __future__ import annotations

import stat
import zipfile
from pathlib import Path, PurePosixPath

MAX_UNCOMPRESSED_BYTES = 20 * 1024**3   # a zip bomb stops here, not the disk


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


def safe_extract(archive: Path, dest: Path) -> Path:
    """Extract every entry under `dest` after checking all of them first; returns `dest`."""
    try:
        with zipfile.ZipFile(archive) as zf:
            infos = zf.infolist()
            names = [_checked_name(info) for info in infos]
            if sum(info.file_size for info in infos) > MAX_UNCOMPRESSED_BYTES:
                raise ArchiveError("zip expands to more than 20 GiB; nothing was imported")
            dest.mkdir(parents=True, exist_ok=True)
            for info, name in zip(infos, names):
                if info.is_dir() or "__MACOSX" in name.parts:
                    continue
                target = dest.joinpath(*name.parts)
                target.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(info) as src, open(target, "wb") as out:
                    while chunk := src.read(1 << 20):
                        out.write(chunk)
    except zipfile.BadZipFile as error:
        raise ArchiveError(f"not a valid zip file ({error}); nothing was imported") from error
    return dest

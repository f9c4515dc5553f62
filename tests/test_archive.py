"""Uploaded zips: traversal and links are refused before anything is written."""
from __future__ import annotations

import zipfile

import pytest

from engine.data.archive import ArchiveError, safe_extract


def _zip(path, entries: dict[str, bytes]) -> None:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in entries.items():
            zf.writestr(name, data)


@pytest.mark.parametrize("bad", ["../evil.png", "/etc/evil.png", "a/../../evil.png", "C:/evil.png"])
def test_traversal_refused_and_nothing_written(tmp_path, bad) -> None:
    archive = tmp_path / "up.zip"
    _zip(archive, {"ok.png": b"x", bad: b"y"})
    with pytest.raises(ArchiveError, match="outside the archive"):
        safe_extract(archive, tmp_path / "out")
    assert not (tmp_path / "out").exists() and not (tmp_path / "evil.png").exists()


def test_symlink_entry_refused(tmp_path) -> None:
    archive = tmp_path / "up.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        info = zipfile.ZipInfo("link.png")
        info.external_attr = (0o120777 << 16)
        zf.writestr(info, "/etc/passwd")
    with pytest.raises(ArchiveError, match="symbolic link"):
        safe_extract(archive, tmp_path / "out")


def test_good_zip_extracts_nested_folders(tmp_path) -> None:
    archive = tmp_path / "up.zip"
    _zip(archive, {"normal/a.png": b"1", "pneumonia/b.png": b"2", "__MACOSX/._a.png": b"junk"})
    out = safe_extract(archive, tmp_path / "out")
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*.png")) == ["normal/a.png", "pneumonia/b.png"]


def test_not_a_zip(tmp_path) -> None:
    (tmp_path / "x.zip").write_text("plain text")
    with pytest.raises(ArchiveError, match="not a valid zip"):
        safe_extract(tmp_path / "x.zip", tmp_path / "out")

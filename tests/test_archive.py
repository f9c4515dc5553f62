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


def test_zip_larger_than_the_free_disk_is_refused_before_writing(tmp_path, monkeypatch) -> None:
    import engine.data.archive as archive_module

    archive = tmp_path / "big.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("a/x.png", b"\0" * (4 * 2**20))  # 4 MiB of zeros, a few KB compressed
    monkeypatch.setattr(archive_module, "_free_bytes", lambda folder: 2**20)  # 1 MiB free
    with pytest.raises(ArchiveError, match="free here; nothing was imported"):
        safe_extract(archive, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_disk_filling_up_while_unpacking_is_one_clear_error(tmp_path, monkeypatch) -> None:
    import builtins
    import errno as errno_module

    import engine.data.archive as archive_module

    archive = tmp_path / "x.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("a/x.png", b"data")
    real_open = builtins.open

    def full_open(path, mode="r", *args, **kwargs):
        if "w" in mode and str(path).startswith(str(tmp_path / "out")):
            raise OSError(errno_module.ENOSPC, "No space left on device")
        return real_open(path, mode, *args, **kwargs)

    monkeypatch.setattr(archive_module, "open", full_open, raising=False)
    with pytest.raises(ArchiveError, match="disk filled up"):
        safe_extract(archive, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_a_zip_of_one_folder_is_unwrapped(tmp_path) -> None:
    archive = tmp_path / "myxr.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("myxr/normal/a.png", b"x")
        zf.writestr("myxr/pneumonia/b.png", b"y")
        zf.writestr("__MACOSX/myxr/._a.png", b"z")
    assert safe_extract(archive, tmp_path / "out") == tmp_path / "out" / "myxr"


def test_zip_of_one_folder_imports_its_class_folders_with_labels(tmp_path, capsys) -> None:
    """Issue 13 item 5: `zip -r x.zip myxr/` around normal/, pneumonia/ imported 0 labels under a green banner."""
    import io

    import numpy as np
    from PIL import Image

    from engine.cli import main

    archive = tmp_path / "myxr.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for i, folder in enumerate(("normal", "pneumonia", "normal", "pneumonia")):
            buffer = io.BytesIO()
            Image.fromarray(np.full((16, 16), 40 * i + 5, np.uint8)).save(buffer, format="PNG")
            zf.writestr(f"myxr/{folder}/{i}.png", buffer.getvalue())
        zf.writestr("myxr/notes.txt", "reader notes")
    source = safe_extract(archive, tmp_path / "out")
    assert main(["import", "--project", "z", "--task", "multiclass", "--source", str(source)]) == 0
    out = capsys.readouterr().out
    assert "imported 4 images (4 labels)" in out and "no labels found" not in out
    assert "skipped 1 files that are not images: notes.txt" in out  # listed, not silently dropped

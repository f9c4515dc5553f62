"""No identifier next to the data it protects: DICOM file names are not stored, the patient-key secret is
outside the database (key file 0600 or MEDSSL_PATIENT_KEY), and old installs are migrated (issue 12)."""
from __future__ import annotations

import shutil
import stat
from pathlib import Path

import pydicom
import pytest
from sqlalchemy import select

from db.config import StoreConfig
from db.models import Image, Setting
from db.patient_secret import (
    CHECK_SETTING,
    KEY_FILE,
    LEGACY_SETTING,
    PatientKeyError,
    fingerprint,
    patient_key_secret,
)
from db.settings import patient_key
from db.store import open_store
from engine.cli import main


def _dicom_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "dcm" / "a"
    folder.mkdir(parents=True)
    shutil.copy(pydicom.data.get_testdata_file("CT_small.dcm"), folder / "ct_small_Doe_John.dcm")
    shutil.copy(pydicom.data.get_testdata_file("MR_small.dcm"), folder / "mr_small_Roe_Jane.dcm")
    return tmp_path / "dcm"


def test_dicom_file_names_are_not_stored_or_exported(tmp_path: Path, _isolated_home: Path) -> None:
    assert main(["import", "--project", "ct", "--task", "multiclass", "--classes", "a,b",
                 "--source", str(_dicom_folder(tmp_path))]) == 0
    out = tmp_path / "labels.csv"
    assert main(["export", "--project", "ct", "--what", "labels", "--out", str(out)]) == 0
    store = open_store(StoreConfig.from_env())
    with store.sessions.begin() as s:
        images = s.scalars(select(Image)).all()
        assert len(images) == 2 and {i.source_name for i in images} == {""}
        assert {i.modality for i in images} == {"CT", "MR"}
    store.dispose()
    everything = b"".join(p.read_bytes() for p in _isolated_home.rglob("*") if p.is_file()) + out.read_bytes()
    for name in (b"Doe_John", b"Roe_Jane", b"ct_small", b"mr_small"):
        assert name not in everything


def test_secret_is_a_0600_key_file_and_only_a_fingerprint_is_in_the_database(tmp_path: Path,
                                                                             _isolated_home: Path) -> None:
    assert main(["import", "--project", "ct", "--task", "multiclass", "--classes", "a,b",
                 "--source", str(_dicom_folder(tmp_path))]) == 0
    key_file = _isolated_home / KEY_FILE
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    secret = bytes.fromhex(key_file.read_text().strip())
    store = open_store(StoreConfig.from_env())
    with store.sessions.begin() as s:
        settings = {row.key: row.value for row in s.scalars(select(Setting))}
        keys = {i.patient_key for i in s.scalars(select(Image))}
    store.dispose()
    assert LEGACY_SETTING not in settings and settings[CHECK_SETTING] == fingerprint(secret)
    assert secret.hex() not in str(settings)
    raw_ids = {str(pydicom.dcmread(pydicom.data.get_testdata_file(f)).PatientID) for f in ("CT_small.dcm", "MR_small.dcm")}
    assert keys == {patient_key(secret, raw) for raw in raw_ids}  # reproducible only with the file


def test_env_secret_wins_and_a_wrong_secret_is_refused(store, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("MEDSSL_PATIENT_KEY", "ab" * 32)
    with store.sessions.begin() as s:
        assert patient_key_secret(s, tmp_path) == bytes.fromhex("ab" * 32)
    assert not (tmp_path / KEY_FILE).exists()
    monkeypatch.setenv("MEDSSL_PATIENT_KEY", "cd" * 32)  # another install, another key: refused
    with pytest.raises(PatientKeyError, match="not the one"), store.sessions.begin() as s:
        patient_key_secret(s, tmp_path)
    monkeypatch.setenv("MEDSSL_PATIENT_KEY", "short")
    with pytest.raises(PatientKeyError, match="too short"), store.sessions.begin() as s:
        patient_key_secret(s, tmp_path)


def test_legacy_secret_row_moves_to_the_key_file_on_open(tmp_path: Path, _isolated_home: Path) -> None:
    store = open_store(StoreConfig.from_env())
    legacy = "11" * 32
    with store.sessions.begin() as s:
        s.add(Setting(key=LEGACY_SETTING, value=legacy))
    store.dispose()
    (_isolated_home / KEY_FILE).unlink(missing_ok=True)
    reopened = open_store(StoreConfig.from_env())  # the migration runs at open
    with reopened.sessions.begin() as s:
        assert s.get(Setting, LEGACY_SETTING) is None
        assert s.get(Setting, CHECK_SETTING).value == fingerprint(bytes.fromhex(legacy))
    reopened.dispose()
    key_file = _isolated_home / KEY_FILE
    assert key_file.read_text().strip() == legacy and stat.S_IMODE(key_file.stat().st_mode) == 0o600

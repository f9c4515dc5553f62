"""PACS over DICOMweb against a real Orthanc: import (counts as a file import, no identifier under MEDSSL_HOME,
re-run imports nothing), DICOM SEG and SR written back and decoded again, and the errors a PACS user meets."""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file
from sqlalchemy import func, select

from db.config import StoreConfig
from db.labels import add_label
from db.models import DicomSource, Image, Project
from db.store import open_store
from engine.bench.orthanc import missing_reason, orthanc
from engine.cli import main
from engine.data.io import save_mask

pytestmark = pytest.mark.skipif(missing_reason() is not None, reason=missing_reason() or "")

# distinct SOP instances: CT, MR, a 2-frame RGB RLE, a colour US, a JPEG 2000 NM, plus two non-images (RT dose, SEG)
IMAGE_FILES = ("CT_small.dcm", "MR_small.dcm", "SC_rgb_rle_2frame.dcm", "examples_rgb_color.dcm", "JPEG2000.dcm")
OTHER_FILES = ("rtdose_1frame.dcm", "liver_1frame.dcm")


def _datasets(names) -> list[pydicom.Dataset]:
    return [pydicom.dcmread(get_testdata_file(name)) for name in names]


def _identifiers(datasets) -> set[bytes]:
    values = set()
    for ds in datasets:
        for tag in ("PatientName", "PatientID"):
            value = str(ds.get(tag) or "").strip()
            if len(value) >= 4:
                values.add(value.encode())
    return values


@pytest.fixture
def pacs(tmp_path: Path):
    from dicomweb_client.api import DICOMwebClient

    with orthanc(tmp_path / "orthanc") as url:
        DICOMwebClient(url).store_instances(_datasets(IMAGE_FILES + OTHER_FILES))
        yield url


def _open(home: Path):
    return open_store(StoreConfig.from_env(home=home))   # MEDSSL_DB when a test set it


def test_import_matches_a_file_import_and_keeps_no_identifier(pacs: str, tmp_path: Path, _isolated_home: Path,
                                                              db_url: str, monkeypatch, capsys) -> None:
    monkeypatch.setenv("MEDSSL_DB", db_url)   # SQLite, and PostgreSQL when the test cluster is there
    folder = tmp_path / "files"
    folder.mkdir()
    for name in IMAGE_FILES:
        shutil.copy(get_testdata_file(name), folder / name)
    assert main(["import", "--project", "files", "--task", "multiclass", "--classes", "a,b",
                 "--source", str(folder)]) == 0
    assert main(["import", "--project", "pacs", "--task", "multiclass", "--classes", "a,b",
                 "--dicomweb", pacs]) == 0
    out = capsys.readouterr().out
    assert "2 objects that are not images" in out                       # RT dose and SEG left on the server
    store = _open(_isolated_home)
    with store.sessions.begin() as session:
        hashes = {name: set(session.scalars(select(Image.sha256).join(Project).where(Project.name == name)))
                  for name in ("files", "pacs")}
        sources = session.scalar(select(func.count()).select_from(DicomSource))
        keys = set(session.scalars(select(Image.patient_key).join(Project).where(Project.name == "pacs")))
        file_keys = set(session.scalars(select(Image.patient_key).join(Project).where(Project.name == "files")))
    assert len(hashes["pacs"]) == 6 and hashes["pacs"] == hashes["files"]   # 2-frame file -> 2 images
    assert sources == 6                                                     # file imports keep no UIDs
    assert keys == file_keys and None not in keys                           # same HMAC patient keys
    assert main(["import", "--project", "pacs", "--dicomweb", pacs]) == 0   # re-run: nothing new, nothing fetched
    assert "imported 0 images" in capsys.readouterr().out
    secrets = _identifiers(_datasets(IMAGE_FILES))
    for path in _isolated_home.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert not any(s in data for s in secrets), f"an identifier is in {path}"
    store.dispose()


def test_study_and_limit_select_what_is_fetched(pacs: str, _isolated_home: Path) -> None:
    ct = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    assert main(["import", "--project", "p", "--task", "multiclass", "--classes", "a,b", "--dicomweb", pacs,
                 "--study", str(ct.StudyInstanceUID)]) == 0
    assert main(["import", "--project", "q", "--task", "multiclass", "--classes", "a,b", "--dicomweb", pacs,
                 "--query", "Modality=MR"]) == 0
    assert main(["import", "--project", "r", "--task", "multiclass", "--classes", "a,b", "--dicomweb", pacs,
                 "--limit", "2"]) == 0
    store = _open(_isolated_home)
    with store.sessions.begin() as session:
        counts = dict(session.execute(select(Project.name, func.count(Image.id)).join(Image)
                                      .group_by(Project.name)).all())
        ct_source = session.scalars(select(DicomSource.sop_uid).join(Project, Project.id == DicomSource.project_id)
                                    .where(Project.name == "p")).all()
    assert counts == {"p": 1, "q": 1, "r": 2} and ct_source == [str(ct.SOPInstanceUID)]
    store.dispose()


def _labeled_project(store, name: str, annotator: str = "reader1"):
    from db.projects import get_or_create_annotator

    with store.sessions.begin() as session:
        project = session.scalar(select(Project).where(Project.name == name))
        images = session.scalars(select(Image).where(Image.project_id == project.id).order_by(Image.id)).all()
        return project.id, [(i.id, i.width, i.height) for i in images], get_or_create_annotator(session, annotator).id


def _fetch_all(url: str, modality: str) -> list[pydicom.Dataset]:
    from dicomweb_client.api import DICOMwebClient

    dw = DICOMwebClient(url)
    found = dw.search_for_instances(search_filters={"Modality": modality})
    return [dw.retrieve_instance(i["0020000D"]["Value"][0], i["0020000E"]["Value"][0], i["00080018"]["Value"][0])
            for i in found]


def test_masks_go_back_as_dicom_seg_that_decodes_to_the_same_mask(pacs: str, tmp_path: Path,
                                                                 _isolated_home: Path) -> None:
    import highdicom as hd

    from db.models import Annotator

    assert main(["import", "--project", "seg", "--task", "segmentation", "--classes", "background,lesion,cyst",
                 "--dicomweb", pacs, "--query", "Modality=CT"]) == 0
    assert main(["import", "--project", "seg", "--dicomweb", pacs, "--query", "Modality=OT"]) == 0  # 2-frame RGB
    store = _open(_isolated_home)
    project_id, images, annotator_id = _labeled_project(store, "seg")
    assert len(images) == 3
    rng = np.random.default_rng(0)
    drawn = {}
    with store.sessions.begin() as session:
        for image_id, width, height in images[:2]:                        # CT and frame 1 of the RGB pair
            mask = np.zeros((height, width), np.uint8)
            mask[5:30, 10:40] = 1
            mask[40:50, 40:60] = 2
            mask[rng.random(mask.shape) < 0.01] = 1
            path = save_mask(mask, store.config.masks_dir / f"p{project_id}" / f"{image_id}-t")
            add_label(session, session.get(Image, image_id), session.get(Annotator, annotator_id), None,
                      mask_path=path.relative_to(store.config.home).as_posix())
            drawn[image_id] = mask
        refs = {s.image_id: s for s in session.scalars(select(DicomSource))}
        refs = {i: (refs[i].sop_uid, refs[i].frame_number, refs[i].frames) for i in drawn}
    out = tmp_path / "seg_out"
    assert main(["export", "--project", "seg", "--what", "dicom-seg", "--to-dicomweb", pacs, "--out", str(out)]) == 0
    assert len(list(out.glob("*.dcm"))) == 2                                 # one per source series
    liver = pydicom.dcmread(get_testdata_file("liver_1frame.dcm")).SOPInstanceUID
    segs = [ds for ds in _fetch_all(pacs, "SEG") if ds.SOPInstanceUID != liver]
    assert len(segs) == 2
    for image_id, (sop, frame, frames) in refs.items():
        seg = next(s for s in segs if sop in _referenced_instances(s))
        assert [str(item.SegmentLabel) for item in seg.SegmentSequence] == ["lesion", "cyst"]
        assert {str(item.SegmentAlgorithmType) for item in seg.SegmentSequence} == {"MANUAL"}
        np.testing.assert_array_equal(_decoded(seg, sop, frame, drawn[image_id].shape), drawn[image_id])
    ct_seg = next(s for s in segs if "CT" in {str(r.Modality) for r in [pydicom.dcmread(get_testdata_file(
        "CT_small.dcm"))]} and str(pydicom.dcmread(get_testdata_file("CT_small.dcm")).SOPInstanceUID)
        in _referenced_instances(s))
    sop = str(pydicom.dcmread(get_testdata_file("CT_small.dcm")).SOPInstanceUID)
    by_highdicom = hd.seg.Segmentation.from_dataset(ct_seg).get_pixels_by_source_instance([sop],
                                                                                          combine_segments=True)[0]
    ct_id = next(i for i, r in refs.items() if r[0] == sop)
    np.testing.assert_array_equal(by_highdicom, drawn[ct_id])
    assert main(["import", "--project", "seg", "--dicomweb", pacs]) == 0    # our SEGs are not imported as images
    with store.sessions.begin() as session:
        assert session.scalar(select(func.count(Image.id)).where(Image.project_id == project_id)) == 6
    store.dispose()


def _referenced_instances(seg: pydicom.Dataset) -> set[str]:
    return {str(src.ReferencedSOPInstanceUID) for group in seg.PerFrameFunctionalGroupsSequence
            for derivation in group.DerivationImageSequence for src in derivation.SourceImageSequence}


def _decoded(seg: pydicom.Dataset, sop: str, frame: int, shape) -> np.ndarray:
    """Label map of one source frame, read with pydicom alone (an independent check of what highdicom wrote)."""
    pixels = seg.pixel_array.reshape(int(seg.NumberOfFrames), *shape)
    shared = seg.SharedFunctionalGroupsSequence[0]
    out = np.zeros(shape, np.uint8)
    for k, group in enumerate(seg.PerFrameFunctionalGroupsSequence):
        source = group.DerivationImageSequence[0].SourceImageSequence[0]
        source_frame = int(source.get("ReferencedFrameNumber", 1) or 1)
        if str(source.ReferencedSOPInstanceUID) == sop and source_frame == frame:
            identification = group.get("SegmentIdentificationSequence") or shared.SegmentIdentificationSequence
            out[pixels[k] > 0] = int(identification[0].ReferencedSegmentNumber)
    return out


def test_class_labels_go_back_as_a_tid1500_report(pacs: str, _isolated_home: Path) -> None:
    import highdicom as hd

    from db.models import Annotator

    mr = pydicom.dcmread(get_testdata_file("MR_small.dcm"))
    assert main(["import", "--project", "cls", "--task", "multiclass", "--classes", "normal,pneumonia",
                 "--dicomweb", pacs, "--query", "Modality=MR"]) == 0
    store = _open(_isolated_home)
    _, images, annotator_id = _labeled_project(store, "cls")
    with store.sessions.begin() as session:
        add_label(session, session.get(Image, images[0][0]), session.get(Annotator, annotator_id), 1)
    assert main(["export", "--project", "cls", "--what", "dicom-sr", "--to-dicomweb", pacs]) == 0
    (sr,) = _fetch_all(pacs, "SR")
    report = hd.sr.Comprehensive3DSR.from_dataset(sr)
    (group,) = report.content.get_image_measurement_groups()
    (evaluation,) = group.get_qualitative_evaluations()
    assert evaluation.value.meaning == "pneumonia"
    assert group.source_images[0].referenced_sop_instance_uid == mr.SOPInstanceUID
    assert sr.PatientID == mr.PatientID                                  # the report goes to the right patient
    store.dispose()


def test_out_folder_inside_the_data_folder_is_refused(pacs: str, _isolated_home: Path, capsys) -> None:
    assert main(["import", "--project", "cls", "--task", "multiclass", "--classes", "a,b", "--dicomweb", pacs,
                 "--query", "Modality=MR"]) == 0
    assert main(["export", "--project", "cls", "--what", "dicom-sr", "--dicomweb", pacs,
                 "--out", str(_isolated_home / "exports" / "sr")]) == 1
    assert "inside the data folder" in capsys.readouterr().err


def test_errors_a_pacs_user_meets(tmp_path: Path, _isolated_home: Path, capsys) -> None:
    from dicomweb_client.api import DICOMwebClient

    from engine.bench.orthanc import free_port

    args = ["import", "--project", "p", "--task", "multiclass", "--classes", "a,b"]
    assert main(args + ["--dicomweb", f"http://127.0.0.1:{free_port()}/dicom-web"]) == 1
    assert "cannot reach the DICOMweb server" in capsys.readouterr().err
    with orthanc(tmp_path / "locked", users={"alice": "s3cret-pw"}) as url:
        assert main(args + ["--dicomweb", url]) == 1
        err = capsys.readouterr().err
        assert "HTTP 401" in err and "--auth-file" in err
        auth = tmp_path / "auth"
        auth.write_text("alice:wrong\n")
        assert main(args + ["--dicomweb", url, "--auth-file", str(auth)]) == 1
        assert "HTTP 401" in capsys.readouterr().err
        import requests

        session = requests.Session()
        session.auth = ("alice", "s3cret-pw")
        DICOMwebClient(url, session=session).store_instances(_datasets(IMAGE_FILES[:2]))
        auth.write_text("alice:s3cret-pw\n")
        assert main(args + ["--dicomweb", url, "--auth-file", str(auth), "--study", "1.2.3.4.5"]) == 1
        assert "no instance of study 1.2.3.4.5" in capsys.readouterr().err
        assert main(args + ["--dicomweb", url, "--auth-file", str(auth)]) == 0
        out = capsys.readouterr()
        assert "imported 2 images" in out.out and "s3cret" not in out.out + out.err
    assert not any("s3cret" in p.read_text(errors="ignore") for p in (_isolated_home / "logs").rglob("*")
                   if p.is_file())


def test_timeout_mid_batch_keeps_what_was_fetched_and_a_rerun_finishes(pacs: str, _isolated_home: Path,
                                                                        monkeypatch, capsys) -> None:
    import requests

    from engine.data.pacs import pacs_import

    real = pacs_import._Fetcher._datasets
    calls = {"n": 0}

    def flaky(self, unit):
        calls["n"] += 1
        if calls["n"] == 3:
            raise requests.exceptions.ReadTimeout("read timed out")
        return real(self, unit)

    monkeypatch.setattr(pacs_import, "FETCH_THREADS", 1)   # units in order: two arrive, the third times out
    monkeypatch.setattr(pacs_import._Fetcher, "_datasets", flaky)
    args = ["import", "--project", "p", "--task", "multiclass", "--classes", "a,b", "--dicomweb", pacs]
    assert main(args) == 1
    out = capsys.readouterr().out
    assert "did not answer in time; re-run the same command" in out
    monkeypatch.setattr(pacs_import._Fetcher, "_datasets", real)
    store = _open(_isolated_home)
    with store.sessions.begin() as session:
        first = session.scalar(select(func.count(Image.id)))
    assert 2 <= first < 6
    assert main(args[:3] + ["--dicomweb", pacs]) == 0
    with store.sessions.begin() as session:
        assert session.scalar(select(func.count(Image.id))) == 6
    store.dispose()


def test_undecodable_transfer_syntax_is_one_rejection_and_the_rest_imports(tmp_path: Path,
                                                                            _isolated_home: Path, capsys) -> None:
    from dicomweb_client.api import DICOMwebClient
    from pydicom.uid import generate_uid

    odd = pydicom.dcmread(get_testdata_file("MR_small.dcm"))
    odd.SOPInstanceUID = odd.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    odd.file_meta.TransferSyntaxUID = "1.2.840.10008.1.2.4.100"  # MPEG2: no decoder here
    odd.PixelData = pydicom.encaps.encapsulate([b"\x00\x00\x01\xb3" + b"\x00" * 64])
    with orthanc(tmp_path / "o") as url:
        DICOMwebClient(url).store_instances([odd] + _datasets(IMAGE_FILES[:1]))
        assert main(["import", "--project", "p", "--task", "multiclass", "--classes", "a,b", "--dicomweb", url]) == 0
    out = capsys.readouterr().out
    assert "imported 1 images" in out and f"rejected instance {odd.SOPInstanceUID}" in out
    assert "could not decode" in out


def test_model_output_goes_back_marked_as_a_proposal(pacs: str, tmp_path: Path, _isolated_home: Path) -> None:
    from db.enums import LabelSource
    from db.models import Annotator, Label, Prediction
    from db.results import add_checkpoint

    assert main(["import", "--project", "seg", "--task", "segmentation", "--classes", "background,lesion",
                 "--dicomweb", pacs, "--query", "Modality=CT"]) == 0
    assert main(["import", "--project", "cls", "--task", "multiclass", "--classes", "normal,pneumonia",
                 "--dicomweb", pacs, "--query", "Modality=MR"]) == 0
    store = _open(_isolated_home)
    seg_id, seg_images, _ = _labeled_project(store, "seg")
    cls_id, cls_images, annotator_id = _labeled_project(store, "cls")
    with store.sessions.begin() as session:
        seg_ckpt = add_checkpoint(session, seg_id, None, "secl", "unet", "checkpoints/s.pt", {}, {}, 0, "x").id
        cls_ckpt = add_checkpoint(session, cls_id, None, "src_mt", "compact_cnn", "checkpoints/c.pt", {}, {}, 0, "y").id
        image_id, width, height = seg_images[0]
        mask = np.zeros((height, width), np.uint8)
        mask[20:60, 20:60] = 1
        path = save_mask(mask, store.config.masks_dir / f"p{seg_id}" / f"{image_id}-model")
        session.add(Label(image_id=image_id, kind="class", value=None, source=LabelSource.MODEL.value,
                          mask_path=path.relative_to(store.config.home).as_posix(), checkpoint_id=seg_ckpt))
        session.add(Prediction(checkpoint_id=cls_ckpt, image_id=cls_images[0][0], predicted=1, probs=[0.2, 0.8]))
        assert session.get(Annotator, annotator_id) is not None
    assert main(["export", "--project", "seg", "--what", "dicom-seg", "--dicomweb", pacs]) == 2   # needs a target
    assert main(["export", "--project", "seg", "--what", "dicom-seg", "--dicomweb", pacs,
                 "--out", str(tmp_path / "none")]) == 1                                      # no human mask yet
    assert main(["export", "--project", "seg", "--what", "dicom-seg", "--dicomweb", pacs, "--include-model",
                 "--out", str(tmp_path / "seg")]) == 0
    (seg_file,) = (tmp_path / "seg").glob("*.dcm")
    seg = pydicom.dcmread(seg_file)
    assert seg.SegmentSequence[0].SegmentAlgorithmType == "AUTOMATIC"
    assert "model proposal" in seg.SeriesDescription and seg.SegmentSequence[0].SegmentAlgorithmName
    np.testing.assert_array_equal(_decoded(seg, str(pydicom.dcmread(get_testdata_file("CT_small.dcm")).SOPInstanceUID),
                                           1, mask.shape), mask)
    assert main(["export", "--project", "cls", "--what", "dicom-sr", "--dicomweb", pacs, "--include-model",
                 "--out", str(tmp_path / "sr")]) == 0
    (sr_file,) = (tmp_path / "sr").glob("*.dcm")
    text = str(pydicom.dcmread(sr_file))
    assert "pneumonia" in text and "Device" in text and "model proposal" in text
    store.dispose()


def test_saved_connection_with_a_secret_file_outside_the_data_folder(tmp_path: Path, _isolated_home: Path,
                                                                     capsys) -> None:
    import stat

    with orthanc(tmp_path / "locked", users={"bob": "pw-9-long"}) as url:
        import requests
        from dicomweb_client.api import DICOMwebClient

        session = requests.Session()
        session.auth = ("bob", "pw-9-long")
        DICOMwebClient(url, session=session).store_instances(_datasets(IMAGE_FILES[:1]))
        assert main(["import", "--project", "p", "--task", "multiclass", "--classes", "a,b", "--source",
                     get_testdata_file("MR_small.dcm")]) == 0
        secret = tmp_path / "pw.txt"
        secret.write_text("pw-9-long\n")
        assert main(["settings", "--project", "p", f"pacs_url={url}", "pacs_auth=basic", "pacs_user=bob",
                     "--pacs-secret-file", str(secret)]) == 0
        assert main(["settings", "--project", "p", "pacs_url=http://u:pw@host/dicom-web"]) == 2  # no credentials
        assert main(["import", "--project", "p", "--dicomweb"]) == 0                            # the saved one
        assert "imported 1 images" in capsys.readouterr().out
        assert main(["export", "--project", "p", "--what", "labels", "--out", str(tmp_path / "l.csv")]) == 0
    stored = list((tmp_path / "secrets").glob("*.secret"))
    assert len(stored) == 1 and stat.S_IMODE(stored[0].stat().st_mode) == 0o600
    ct = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    csv_text = (tmp_path / "l.csv").read_text()
    assert str(ct.SOPInstanceUID) not in csv_text and str(ct.StudyInstanceUID) not in csv_text
    for path in _isolated_home.rglob("*"):
        if path.is_file():
            assert b"pw-9-long" not in path.read_bytes(), path


def test_an_instance_that_disappeared_after_the_search_is_reported_and_the_rest_imports(
        pacs: str, _isolated_home: Path, monkeypatch, capsys) -> None:
    from engine.data.pacs import pacs_import, query

    real = query.find_instances

    def with_a_ghost(dw, studies, filters, limit):
        found = real(dw, studies, filters, limit)
        image = next(ref for ref in found if query.is_image(ref))
        ghost = query.InstanceRef(image.study, image.series, "1.2.3.999.1", image.sop_class, 1)
        return [*found, ghost]

    monkeypatch.setattr(pacs_import, "find_instances", with_a_ghost)
    monkeypatch.setattr(pacs_import, "SERIES_SHARE", 2.0)      # instance by instance, so the ghost gets a 404
    assert main(["import", "--project", "p", "--task", "multiclass", "--classes", "a,b", "--dicomweb", pacs]) == 0
    out = capsys.readouterr().out
    assert "imported 6 images" in out and "rejected instance 1.2.3.999.1" in out and "HTTP 404" in out
    monkeypatch.setattr(pacs_import, "SERIES_SHARE", 0.0)      # whole series: the ghost is simply not in it
    assert main(["import", "--project", "q", "--task", "multiclass", "--classes", "a,b", "--dicomweb", pacs]) == 0
    out = capsys.readouterr().out
    assert "imported 6 images" in out and "rejected instance 1.2.3.999.1: not on the server any more" in out

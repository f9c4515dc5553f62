"""PACS import throughput (a script, not a test): N instances from a throwaway local Orthanc over DICOMweb.

    python -m engine.bench.pacs_import --instances 1000 --out docs/results/pacs_import

Uploads N distinct 8-bit CR instances (10 studies; pixels from the real chest X-rays when ../shared is there,
else synthetic) with STOW-RS (not timed), then times `import --dicomweb` end to end (QIDO search, WADO fetch,
decode, dedupe, store, rows). Baselines measured in the same run: the bare WADO-RS fetch of the same instances
(the same series requests and threads, nothing decoded or stored) and a file import of the same instances from a folder.
"""
from __future__ import annotations

import argparse
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from db.config import StoreConfig
from db.store import open_store
from engine.bench.orthanc import missing_reason, orthanc
from engine.bench.report import bench_header, write_result
from engine.data.importer import ImportRequest, run_import
from engine.data.pacs.connection import PacsConnection, client
from engine.data.pacs.pacs_import import FETCH_THREADS, PacsRequest, _Fetcher, plan_units, run_pacs_import
from engine.data.pacs.query import find_instances

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "chest_xray_pneumonia_128" / "train.npz"


def _pixels(n: int, size: int = 128) -> tuple[np.ndarray, str]:
    if SHARED.exists():
        with np.load(SHARED) as bundle:
            images = bundle["images"][:n]
        if len(images) == n:
            return images.astype(np.uint8), f"real chest X-rays ({SHARED.parent.name})"
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (n, size, size), dtype=np.uint8), "synthetic noise"


def make_instances(n: int, studies: int = 10) -> tuple[list, str]:
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    pixels, origin = _pixels(n)
    study_uids = [generate_uid() for _ in range(studies)]
    series_uids = [generate_uid() for _ in range(studies)]
    out = []
    for k, image in enumerate(pixels):
        image = image.copy()
        image.flat[0] = k % 256          # distinct content even when the source repeats an image
        ds = Dataset()
        ds.file_meta = FileMetaDataset()
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.1"   # CR
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
        ds.StudyInstanceUID, ds.SeriesInstanceUID = study_uids[k % studies], series_uids[k % studies]
        ds.PatientName, ds.PatientID = f"Bench^Patient{k % studies}", f"BENCH{k % studies:04d}"
        ds.Modality, ds.InstanceNumber = "CR", k + 1
        ds.Rows, ds.Columns = image.shape
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated = ds.BitsStored = 8
        ds.HighBit, ds.PixelRepresentation = 7, 0
        ds.PixelData = image.tobytes()
        ds.preamble = b"\0" * 128   # a Part 10 file, as a modality sends it
        out.append(ds)
    return out, origin


def _bare_fetch(connection: PacsConnection) -> tuple[float, int]:
    """The same requests as the import (whole series, one client per thread), nothing decoded or stored."""
    refs = find_instances(client(connection), None, None, None)
    fetcher = _Fetcher(connection)
    start = time.perf_counter()
    with ThreadPoolExecutor(FETCH_THREADS) as pool:
        count = sum(pool.map(lambda unit: sum(1 for _ in fetcher._datasets(unit)), plan_units(refs, refs)))
    return time.perf_counter() - start, count


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instances", type=int, default=1000)
    parser.add_argument("--out", type=Path, required=True, help="folder for results.json / results.md")
    args = parser.parse_args(argv)
    if missing_reason():
        raise SystemExit(missing_reason())
    datasets, origin = make_instances(args.instances)
    with tempfile.TemporaryDirectory() as tmp, orthanc(Path(tmp) / "orthanc") as url:
        from dicomweb_client.api import DICOMwebClient

        for start in range(0, len(datasets), 100):
            DICOMwebClient(url).store_instances(datasets[start:start + 100])
        folder = Path(tmp) / "files"
        folder.mkdir()
        for k, ds in enumerate(datasets):
            ds.save_as(folder / f"{k:05d}.dcm", enforce_file_format=True)
        connection = PacsConnection(url)
        fetch_s, fetched = _bare_fetch(connection)
        store = open_store(StoreConfig.from_env(home=Path(tmp) / "home"))
        request = ImportRequest(project="pacs", source=None, task="multiclass", classes=["a", "b"], annotator="bench")
        start = time.perf_counter()
        report = run_pacs_import(store, request, PacsRequest(connection))
        pacs_s = time.perf_counter() - start
        start = time.perf_counter()
        again = run_pacs_import(store, request, PacsRequest(connection))
        rerun_s = time.perf_counter() - start
        start = time.perf_counter()
        files = run_import(store, ImportRequest(project="files", source=folder, task="multiclass", classes=["a", "b"],
                                                unlabeled=True, annotator="bench"))
        files_s = time.perf_counter() - start
        store.dispose()
    result: dict[str, Any] = {
        **bench_header("engine.bench.pacs_import", argv), "instances": args.instances, "pixels": origin,
        "imported": report.imported, "rejected": len(report.rejected), "seconds": round(pacs_s, 2),
        "instances_per_s": round(report.imported / pacs_s, 1),
        "baseline_bare_wado_fetch_per_s": round(fetched / fetch_s, 1),
        "ratio_to_bare_fetch": round(report.imported / pacs_s / (fetched / fetch_s), 3),
        "file_import_per_s": round(files.imported / files_s, 1),
        "ratio_to_file_import": round(report.imported / pacs_s / (files.imported / files_s), 3),
        "rerun_imported": again.imported, "rerun_seconds": round(rerun_s, 2), "goal_per_s": 200,
        "goal_met": report.imported / pacs_s >= 200}
    args.out.mkdir(parents=True, exist_ok=True)
    write_result(args.out / "results.json", result)
    (args.out / "results.md").write_text(markdown(result))
    return 0


def markdown(r: dict[str, Any]) -> str:
    return (f"# PACS import: {r['instances']:,} instances from a local Orthanc over DICOMweb\n\n"
            f"Command: `{r['command']}`  \nMachine: {r['machine']}  \nPixels: {r['pixels']}\n\n"
            "| imported | instances/s | bare WADO fetch/s | ratio | file import/s | ratio | re-run s (new) | "
            "goal ≥ 200/s |\n|---|---|---|---|---|---|---|---|\n"
            f"| {r['imported']} | {r['instances_per_s']} | {r['baseline_bare_wado_fetch_per_s']} | "
            f"{r['ratio_to_bare_fetch']} | {r['file_import_per_s']} | {r['ratio_to_file_import']} | "
            f"{r['rerun_seconds']} ({r['rerun_imported']}) | {'met' if r['goal_met'] else 'NOT met'} |\n")


if __name__ == "__main__":
    raise SystemExit(main())

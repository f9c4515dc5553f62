"""Import over DICOMweb: find instances (QIDO-RS), fetch them (WADO-RS, a few in flight at once) and hand the
decoded frames to the same pipeline as a file import (de-identification allow-list, patient-key HMAC, content
dedupe, batched commits). Instances already imported are not fetched again."""
from __future__ import annotations

import dataclasses
import queue
import threading
from collections import defaultdict
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

from db.dicom_sources import known_instances
from db.projects import get_project
from db.store import Store
from engine.data.dicom import decode_dataset
from engine.data.importer import ImportRequest, ingest
from engine.data.pacs.connection import PacsConnection, PacsError, client
from engine.data.pacs.errors import explain, http_status
from engine.data.pacs.query import InstanceRef, find_instances, is_image
from engine.data.pixels import ImageReadError
from engine.data.report import ImportReport
from engine.data.source_types import Rejected, SourceInfo, SourceItem

FETCH_THREADS = 4
WINDOW = 64       # decoded frames waiting to be stored: bounds memory
SERIES_SHARE = 0.5  # fetch a whole series in one request when at least this share of it is wanted
ANY_SYNTAX = (("application/dicom", "*"),)  # as stored: our decoders handle the compressed syntaxes


@dataclasses.dataclass
class PacsRequest:
    connection: PacsConnection
    studies: list[str] | None = None
    query: str | None = None
    limit: int | None = None


@dataclasses.dataclass(frozen=True)
class _Unit:
    """One request's worth of work: a whole series (one multipart response, ~10x faster per instance than one
    request each on a local Orthanc) or a single instance."""

    refs: tuple[InstanceRef, ...]
    whole_series: bool


@dataclasses.dataclass(frozen=True)
class _Failure:
    unit: _Unit
    error: BaseException


_DONE = object()


def plan_units(wanted: list[InstanceRef], found: list[InstanceRef]) -> list[_Unit]:
    sizes: dict[str, int] = defaultdict(int)
    for ref in found:
        sizes[ref.series] += 1
    by_series: dict[str, list[InstanceRef]] = defaultdict(list)
    for ref in wanted:
        by_series[ref.series].append(ref)
    units = []
    for series, refs in by_series.items():
        if len(refs) > 1 and len(refs) >= SERIES_SHARE * sizes[series]:
            units.append(_Unit(tuple(refs), True))
        else:
            units += [_Unit((ref,), False) for ref in refs]
    return units


class _Fetcher:
    """Yields SourceItems per frame while a thread pool fetches and decodes; a timeout or lost connection stops
    the stream and is remembered, so what was fetched before stays imported and the message says re-run."""

    def __init__(self, connection: PacsConnection):
        self.connection = connection
        self.local = threading.local()
        self.interrupted: str | None = None

    def _client(self):
        if not hasattr(self.local, "dw"):   # one client per thread: a requests session is not thread-safe
            self.local.dw = client(self.connection)
        return self.local.dw

    def _datasets(self, unit: _Unit) -> Iterator:
        first = unit.refs[0]
        if not unit.whole_series:
            yield self._client().retrieve_instance(first.study, first.series, first.sop, media_types=ANY_SYNTAX)
            return
        yield from self._client().iter_series(first.study, first.series, media_types=ANY_SYNTAX)

    def _run(self, unit: _Unit) -> Iterator[SourceItem | Rejected]:
        wanted = {ref.sop: ref for ref in unit.refs}
        for ds in self._datasets(unit):
            ref = wanted.pop(str(ds.get("SOPInstanceUID", "")), None)
            if ref is not None:
                yield from _frames(ref, ds)
        for sop in wanted:   # found by the search, gone from the series by the time it was fetched
            yield Rejected(f"instance {sop}", "not on the server any more (deleted since the search?)")

    def items(self, units: list[_Unit]) -> Iterator[SourceItem | Rejected]:
        import requests

        out: queue.Queue = queue.Queue(maxsize=WINDOW)
        stop = threading.Event()

        def put(item) -> bool:
            while not stop.is_set():
                try:
                    out.put(item, timeout=0.2)
                    return True
                except queue.Full:
                    continue
            return False

        def work(unit: _Unit) -> None:
            try:
                for item in self._run(unit):
                    if not put(item):
                        return
            except requests.exceptions.RequestException as exc:
                put(_Failure(unit, exc))

        def run_all() -> None:
            with ThreadPoolExecutor(FETCH_THREADS) as pool:
                list(pool.map(work, units))
            put(_DONE)

        threading.Thread(target=run_all, name="pacs-fetch", daemon=True).start()
        try:
            while (item := out.get()) is not _DONE:
                if isinstance(item, _Failure):
                    where = f"series {item.unit.refs[0].series}" if item.unit.whole_series \
                        else f"instance {item.unit.refs[0].sop}"
                    if isinstance(item.error, requests.exceptions.HTTPError) and \
                            http_status(item.error) in (404, 406, 410):
                        yield Rejected(where, explain(item.error, "fetch", self.connection.shown_url))
                        continue
                    self.interrupted = explain(item.error, f"fetching {where}", self.connection.shown_url)
                    return
                yield item
        finally:
            stop.set()


def _frames(ref: InstanceRef, ds) -> Iterator[SourceItem | Rejected]:
    try:
        images = decode_dataset(ds, strict=True)
    except ImageReadError as error:
        hint = "; ask the PACS to send it uncompressed" if "decode" in str(error) else ""
        yield Rejected(f"instance {ref.sop}", f"{error}{hint}")
        return
    for k, image in enumerate(images):
        name = f"instance {ref.sop}" + (f" frame {k + 1}" if len(images) > 1 else "")
        yield SourceItem(name=name, image=image, label=None, dicom_ref={
            "study_uid": ref.study, "series_uid": ref.series, "sop_uid": ref.sop,
            "sop_class_uid": str(ds.get("SOPClassUID") or ref.sop_class), "frame_number": k + 1,
            "frames": len(images)})


def run_pacs_import(store: Store, request: ImportRequest, pacs: PacsRequest,
                    on_progress: Callable[[int, int | None], None] | None = None) -> ImportReport:
    """Find, skip what is known, fetch and ingest; raises PacsError when the search itself fails."""
    import requests

    url = pacs.connection.shown_url
    try:
        refs = find_instances(client(pacs.connection), pacs.studies, pacs.query, pacs.limit)
    except requests.exceptions.RequestException as exc:
        raise PacsError(explain(exc, "search", url)) from None
    images = [r for r in refs if is_image(r)]
    with store.sessions.begin() as session:
        project = get_project(session, request.project)
        known = known_instances(session, project.id) if project is not None else set()
    wanted = [r for r in images if r.sop not in known]
    if pacs.studies and not refs:
        raise PacsError(f"search: no instance of study {', '.join(pacs.studies)} on {url} (deleted, or a wrong UID)")
    info = SourceInfo(kind="dicomweb", total=len(wanted), class_names=None, split=None, image_size=None,
                      layout="dicomweb")
    fetcher = _Fetcher(pacs.connection)
    report = ingest(store, dataclasses.replace(request, source=None, unlabeled=True), info,
                    fetcher.items(plan_units(wanted, images)), on_progress)
    if len(images) < len(refs):
        report.warnings.append(f"{len(refs) - len(images)} objects that are not images (SEG, SR, presentation "
                               "states…) were left on the server")
    if known and len(wanted) < len(images):
        report.warnings.append(f"{len(images) - len(wanted)} instances imported before were not fetched again")
    if fetcher.interrupted:
        report.warnings.append(fetcher.interrupted)
        report.incomplete = True
    return report

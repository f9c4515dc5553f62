"""DICOM objects that carry our results back to the PACS, built with highdicom (no hand-written IODs).

Masks become DICOM Segmentation objects (label values = segment numbers; background, class 0, is no segment).
Classification labels become a Comprehensive 3D SR following TID 1500 (Measurement Report): one measurement group
per image with a qualitative evaluation "Finding = <class>" that references the source instance. TID 1500 was
chosen over a Key Object Selection because a KOS can only flag images under one document title; it cannot say
which class each image carries, and it has no place to mark an algorithm's output as such (TID 1500's algorithm
identification does).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MANUFACTURER = "MedSSL Studio"
CODING_SCHEME = "99MEDSSL"   # private coding scheme for project class names (DICOM PS3.16 8.2: 99 prefix)
PROPOSAL_NOTE = "model proposal, not reviewed"


@dataclass(frozen=True)
class Origin:
    """Who made a result: a reader (by account name) or a model (by method and checkpoint)."""

    model: bool
    who: str              # account name, or method name
    checkpoint_id: int | None = None

    @property
    def description(self) -> str:
        if self.model:
            return f"MedSSL {PROPOSAL_NOTE} ({self.who}, checkpoint {self.checkpoint_id})"
        return "MedSSL reader label"


def _class_code(index: int, name: str):
    from highdicom.sr import CodedConcept

    return CodedConcept(value=f"C{index}", scheme_designator=CODING_SCHEME, meaning=name[:64] or f"class {index}")


def _label_concept():
    """The evaluation's name. Not DCM 'Finding' (121071): TID 1501 reserves that row for the group's finding type."""
    from highdicom.sr import CodedConcept

    return CodedConcept(value="LABEL", scheme_designator=CODING_SCHEME, meaning="Image class label")


def person_name(account: str) -> str:
    """An account name as a DICOM PN: one component gets a trailing caret (PS3.5 6.2.1.2)."""
    cleaned = account.replace("\\", " ").strip()[:60] or "reader"
    return cleaned if "^" in cleaned else cleaned + "^"


def _algorithm(origin: Origin):
    import highdicom as hd
    from pydicom.sr.codedict import codes

    return hd.AlgorithmIdentificationSequence(name=f"MedSSL {origin.who}", family=codes.cid7162.ArtificialIntelligence,
                                              version=str(origin.checkpoint_id))


def segmentation(sources: list, masks: np.ndarray, classes: list[str], origin: Origin, series_number: int):
    """One SEG over `sources` (one series): masks is (frames, rows, cols) of class indices, frame k on source
    frame k (single-frame sources in order, or the frames of one multi-frame source)."""
    import highdicom as hd
    from pydicom.sr.codedict import codes

    algorithm_type = hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC if origin.model \
        else hd.seg.SegmentAlgorithmTypeValues.MANUAL
    descriptions = [
        hd.seg.SegmentDescription(
            segment_number=k, segment_label=name[:64],
            segmented_property_category=codes.SCT.MorphologicallyAbnormalStructure,
            segmented_property_type=_class_code(k, name), algorithm_type=algorithm_type,
            algorithm_identification=_algorithm(origin) if origin.model else None)
        for k, name in enumerate(classes) if k > 0]
    seg = hd.seg.Segmentation(
        source_images=sources, pixel_array=masks.astype(np.uint8), segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=descriptions, series_instance_uid=hd.UID(), series_number=series_number,
        sop_instance_uid=hd.UID(), instance_number=1, manufacturer=MANUFACTURER,
        manufacturer_model_name=MANUFACTURER, software_versions="1", device_serial_number="0",
        content_label="MODEL" if origin.model else "READER", content_description=origin.description[:64],
        series_description=origin.description[:64], omit_empty_frames=True)
    return seg


@dataclass(frozen=True)
class ImageFinding:
    source: object            # the source instance's dataset (attributes only)
    frame_number: int | None  # for a multi-frame source
    class_indices: list[int]


def report(findings: list[ImageFinding], classes: list[str], origin: Origin, series_number: int):
    """One TID 1500 SR over the findings of one study (one observer)."""
    import highdicom as hd
    from highdicom.sr import CodedConcept
    from pydicom.sr.codedict import codes

    if origin.model:
        observer = hd.sr.ObserverContext(
            observer_type=codes.DCM.Device,
            observer_identifying_attributes=hd.sr.DeviceObserverIdentifyingAttributes(
                uid=hd.UID(), name=f"MedSSL {origin.who}"[:64], model_name=f"checkpoint {origin.checkpoint_id}"))
    else:
        observer = hd.sr.ObserverContext(
            observer_type=codes.DCM.Person,
            observer_identifying_attributes=hd.sr.PersonObserverIdentifyingAttributes(name=person_name(origin.who)))
    algorithm = hd.sr.AlgorithmIdentification(name=f"MedSSL {origin.who}"[:64], version=str(origin.checkpoint_id)) \
        if origin.model else None
    groups = []
    for k, finding in enumerate(findings):
        frames = [finding.frame_number] if finding.frame_number else None
        groups.append(hd.sr.MeasurementsAndQualitativeEvaluations(
            tracking_identifier=hd.sr.TrackingIdentifier(uid=hd.UID(), identifier=f"finding {k + 1}"),
            algorithm_id=algorithm,
            source_images=[hd.sr.SourceImageForMeasurementGroup.from_source_image(finding.source, frames)],
            qualitative_evaluations=[hd.sr.QualitativeEvaluation(name=_label_concept(), value=_class_code(i, classes[i]))
                                     for i in finding.class_indices]))
    content = hd.sr.MeasurementReport(
        observation_context=hd.sr.ObservationContext(
            observer_person_context=None if origin.model else observer,
            observer_device_context=observer if origin.model else None),
        procedure_reported=CodedConcept("18748-4", "LN", "Diagnostic imaging report"),
        imaging_measurements=groups)
    return hd.sr.Comprehensive3DSR(
        evidence=_unique([f.source for f in findings]), content=content[0], series_instance_uid=hd.UID(),
        series_number=series_number, sop_instance_uid=hd.UID(), instance_number=1, manufacturer=MANUFACTURER,
        is_complete=True, series_description=origin.description[:64])



def _unique(datasets: list) -> list:
    """Evidence lists each instance once (two frames of one multi-frame source are one instance)."""
    seen: dict[str, object] = {}
    for ds in datasets:
        seen.setdefault(str(ds.SOPInstanceUID), ds)
    return list(seen.values())

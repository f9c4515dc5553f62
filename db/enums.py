"""Status and provenance values, stored as plain text so any database (and any reader) understands them."""
from __future__ import annotations

from enum import Enum


class StrEnum(str, Enum):
    def __str__(self) -> str:
        return self.value


class Task(StrEnum):
    MULTICLASS = "multiclass"
    MULTILABEL = "multilabel"
    SEGMENTATION = "segmentation"


class Split(StrEnum):
    TRAIN = "train"
    VAL = "val"
    TEST = "test"


class LabelKind(StrEnum):
    CLASS = "class"          # a class, a set of classes, or a mask
    UNCERTAIN = "uncertain"  # reader unsure: stays in the unlabeled pool
    EXCLUDE = "exclude"      # poor quality / wrong body part: out of training and the queue
    RETRACT = "retract"      # undo: voids that annotator's newest earlier row for the image


class LabelSource(StrEnum):
    HUMAN = "human"
    IMPORT = "import"
    MODEL = "model"          # proposals; never a label, never trained on
    READ = "read"            # one reader's answer under double reading: decides nothing on its own
    CONSENSUS = "agreed"    # the readers agreed (or a majority, when the project asks for it)
    REVIEW = "review"        # a lead's adjudication of a disagreement (or an override)


class LabelStatus(StrEnum):
    """Derived per-image status (cached on Image so queue queries stay one indexed lookup)."""

    UNLABELED = "unlabeled"
    LABELED = "labeled"
    UNCERTAIN = "uncertain"
    EXCLUDED = "excluded"
    REVIEW = "review"        # double-read and the readers disagreed: waits for a lead, out of the queue


class Role(StrEnum):
    """What a user may do (db/roles.py holds the table); ordered from most to least rights."""

    ADMIN = "admin"
    LEAD = "lead"
    ANNOTATOR = "annotator"
    VIEWER = "viewer"


class JobKind(StrEnum):
    TRAIN = "train"
    ANALYZE = "analyze"
    EXPORT = "export"


class JobStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"

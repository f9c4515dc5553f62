"""Paper configs and the official CSV layouts (tiny fixture files under tests/fixtures/)."""
from pathlib import Path

import numpy as np
import pytest

from engine.configs import chestxray14, isic2018
from engine.configs.papers import PAPER_CONFIGS
from engine.core.config import TrainConfig
from engine.methods import METHODS

FIXTURES = Path(__file__).parent / "fixtures"


def test_isic_columns_selected_by_name_keep_vasc() -> None:
    ids, labels = isic2018.load_isic2018_groundtruth(FIXTURES / "ISIC2018_Task3_Training_GroundTruth.csv")
    assert ids[:2] == ["ISIC_0024306", "ISIC_0024307"]
    assert labels.tolist() == [1, 0, 6, 2, 3, 4, 5, 6, 1, 1]  # VASC (index 6) survives: pitfall P6
    assert isic2018.ISIC_CLASSES[6] == "VASC"


def test_isic_reordered_columns_and_bad_rows(tmp_path: Path) -> None:
    shuffled = tmp_path / "gt.csv"
    shuffled.write_text("VASC,image,NV,MEL,BCC,AKIEC,BKL,DF\n1.0,a,0,0,0,0,0,0\n0,b,1.0,0,0,0,0,0\n")
    assert isic2018.load_isic2018_groundtruth(shuffled)[1].tolist() == [6, 1]
    bad = tmp_path / "bad.csv"
    bad.write_text("image,MEL,NV,BCC,AKIEC,BKL,DF,VASC\nx,1,1,0,0,0,0,0\n")
    with pytest.raises(ValueError, match="not one-hot"):
        isic2018.load_isic2018_groundtruth(bad)


def test_isic_srcmt_protocol_split_and_first_rows() -> None:
    split = isic2018.srcmt_split(10015, seed=0)
    assert [len(split[s]) for s in ("train", "val", "test")] == [7000, 1000, 2015]
    assert len(np.unique(np.concatenate(list(split.values())))) == 10015
    assert isic2018.srcmt_labeled_mask(7000).sum() == 1400 and isic2018.srcmt_labeled_mask(7000)[:1400].all()


def test_chestxray14_entries_pipes_and_no_finding() -> None:
    entry = chestxray14.load_data_entry(FIXTURES / "Data_Entry_2017.csv")
    idx = {c: i for i, c in enumerate(chestxray14.CLASSES)}
    assert entry.labels.shape == (8, 15)
    assert entry.labels[1, [idx["Cardiomegaly"], idx["Emphysema"]]].tolist() == [1.0, 1.0]
    assert entry.labels[1].sum() == 2 and entry.labels[6].sum() == 3
    assert entry.labels[2, idx["No Finding"]] == 1.0 and entry.labels[2, :14].sum() == 0
    assert entry.patient_ids[1] == "1"


def test_chestxray14_official_lists() -> None:
    entry = chestxray14.load_data_entry(FIXTURES / "Data_Entry_2017.csv")
    split = chestxray14.official_split(entry, FIXTURES / "train_val_list.txt", FIXTURES / "test_list.txt")
    assert split["train_val"].tolist() == [0, 1, 2, 4, 5, 6] and split["test"].tolist() == [3, 7]


def test_per_class_ratio_sampling_is_union_of_per_class_draws() -> None:
    rng = np.random.default_rng(0)
    labels = (rng.random((400, 15)) < 0.1).astype(np.float32)
    chosen = chestxray14.per_class_ratio_sample(labels, 0.2, seed=1)
    for c in range(15):  # at least floor(r * n_c) carriers of every label were drawn
        assert labels[chosen, c].sum() >= np.floor(0.2 * labels[:, c].sum())
    assert np.array_equal(chosen, chestxray14.per_class_ratio_sample(labels, 0.2, seed=1))
    assert len(np.unique(chosen)) == len(chosen)


@pytest.mark.parametrize("name", sorted(PAPER_CONFIGS))
def test_paper_configs_are_valid_and_round_trip(name: str) -> None:
    paper = PAPER_CONFIGS[name]()
    assert TrainConfig.from_dict(paper.train.to_dict()) == paper.train
    METHODS[paper.train.method].params_cls(**paper.train.method_params)
    assert paper.train.data.epoch_definition == "labeled"  # the papers' own epoch (CONTRACTS §6)
    if paper.train.auc_classes:
        assert "No Finding" not in paper.train.auc_classes and len(paper.train.auc_classes) == 14


@pytest.mark.parametrize("bounds", [{"epochs": None}, {"epochs": None, "budget_minutes": 0.0},
                                    {"epochs": 0}, {"epochs": None, "max_steps": 0},
                                    {"epochs": None, "budget_minutes": -1.0}])
def test_a_run_without_a_positive_bound_is_refused(bounds: dict) -> None:
    """A zero budget once meant "no budget" and a 10**9-epoch plan (a 15 GiB schedule array)."""
    with pytest.raises(ValueError, match="must be > 0|needs epochs"):
        TrainConfig(**bounds)


def test_each_single_bound_is_enough() -> None:
    for bounds in ({"epochs": 3}, {"epochs": None, "max_steps": 5}, {"epochs": None, "budget_minutes": 0.01}):
        TrainConfig(**bounds)

"""Every app page under streamlit's AppTest on a temporary store: empty state and a populated project."""
from __future__ import annotations

from streamlit.testing.v1 import AppTest

from engine.cli import main
from tests.conftest import REPO_ROOT, shared_file


def _app() -> AppTest:
    return AppTest.from_file(str(REPO_ROOT / "app" / "main.py"), default_timeout=30)


def _page_app(page_module: str) -> AppTest:
    def page(module_name: str) -> None:
        import importlib

        from app import state
        from app.resources import get_store
        from db.projects import list_projects

        with get_store().sessions.begin() as session:
            projects = list_projects(session)
        state.put(state.PROJECT, projects[0].id if projects else None)
        state.put(state.ANNOTATOR, "dr_r")
        importlib.import_module(module_name).render()

    return AppTest.from_function(page, args=(page_module,), default_timeout=30)


def test_projects_page_empty_state_explains_how_to_start() -> None:
    at = _app().run()
    assert not at.exception
    assert any("No project yet" in info.value for info in at.info)
    assert any("not for clinical diagnosis" in c.value for c in at.sidebar.caption)


def test_create_project_bad_input_is_refused_and_changes_nothing() -> None:
    from sqlalchemy import select

    from db.config import StoreConfig
    from db.models import Project
    from db.store import open_store

    at = _app().run()
    form_inputs = {t.label: t for t in at.text_input}
    form_inputs["name"].input("knees")
    form_inputs["classes (comma-separated; mask classes for segmentation)"].input(" , ")
    next(b for b in at.button if b.label == "Create project").click().run()
    assert any("Not created" in e.value and "class names" in e.value for e in at.error)
    form_inputs = {t.label: t for t in at.text_input}
    form_inputs["classes (comma-separated; mask classes for segmentation)"].input("effusion, fracture")
    next(b for b in at.button if b.label == "Create project").click().run()
    assert not at.exception and any(m.label == "images" for m in at.metric)    # the new project is listed
    next(t for t in at.text_input if t.label == "name").input("knees")
    next(t for t in at.text_input if t.label.startswith("classes")).input("effusion, fracture")
    next(b for b in at.button if b.label == "Create project").click().run()      # same name again
    assert any("already exists" in e.value for e in at.error)
    store = open_store(StoreConfig.from_env())
    with store.sessions.begin() as s:
        assert s.scalars(select(Project.name)).all() == ["knees"]
    store.dispose()


def test_folder_import_from_the_app_reports_rejected_files(tmp_path, monkeypatch) -> None:
    import cv2
    import numpy as np

    folder = tmp_path / "imgs"
    folder.mkdir()
    cv2.imwrite(str(folder / "good.png"), np.full((16, 16), 9, np.uint8))
    (folder / "fake.png").write_text("not an image")
    monkeypatch.setenv("MEDSSL_IMPORT_ROOTS", str(tmp_path))
    assert main(["import", "--project", "p", "--task", "multiclass", "--classes", "a,b", "--source",
                 str(tmp_path / "nothing-here")]) == 1                   # creates nothing
    at = _app().run()
    assert any("No project yet" in i.value for i in at.info)
    next(t for t in at.text_input if t.label == "name").input("p")
    next(t for t in at.text_input if t.label.startswith("classes")).input("a, b")
    next(b for b in at.button if b.label == "Create project").click().run()
    next(t for t in at.text_input if t.label == "folder or file on this machine").input(str(folder))
    next(b for b in at.button if b.label == "Import folder").click().run()
    assert not at.exception
    # unlabeled images in a classification project: a warning banner, not a green one (issue 13 item 5)
    assert any("imported 1 images" in s.value for s in at.warning) and not at.success
    assert any("no labels found" in i.value for i in at.info)
    table = at.dataframe[0].value
    assert table["file"].tolist() == ["fake.png"] and "not an image" in table["reason"].iloc[0]


def test_projects_page_shows_counts_of_an_imported_project() -> None:
    assert main(["import", "--project", "chest", "--task", "multiclass", "--source",
                 str(shared_file("chest_xray_pneumonia_64/val.npz"))]) == 0
    at = _app().run()
    assert not at.exception
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["images"] == "550" and metrics["labeled"] == "550" and metrics["unlabeled"] == "0"


def test_label_page_without_project_says_what_to_do() -> None:
    at = _page_app("app.views.label").run()
    assert not at.exception and any("Create or import a project" in i.value for i in at.info)


def test_label_page_saves_with_annotator_moves_on_and_undoes(tmp_path) -> None:
    import cv2
    import numpy as np
    from sqlalchemy import select

    from db.config import StoreConfig
    from db.models import Annotator, Label
    from db.store import open_store

    folder = tmp_path / "imgs"
    folder.mkdir()
    for i in range(3):
        cv2.imwrite(str(folder / f"{i}.png"), np.full((32, 32), 60 * i, np.uint8))
    assert main(["import", "--project", "cx", "--task", "multiclass", "--classes", "normal,pneumonia",
                 "--source", str(folder)]) == 0
    at = _page_app("app.views.label").run()
    assert not at.exception
    first_caption = at.get("image")[0].captions[0]
    assert at.button(key="class1").label == "2 · pneumonia"
    at.button(key="class1").click().run()
    assert not at.exception
    assert at.get("image")[0].captions[0] != first_caption     # the next case is shown
    store = open_store(StoreConfig.from_env())
    with store.sessions.begin() as s:
        rows = s.execute(select(Label.value, Label.kind, Annotator.name).join(Annotator)).all()
        assert rows == [(1, "class", "dr_r")]
    next(b for b in at.button if b.label == "Undo").click().run()
    assert at.get("image")[0].captions[0] == first_caption     # back to the undone case
    with store.sessions.begin() as s:
        assert [r.kind for r in s.scalars(select(Label).order_by(Label.id))] == ["class", "retract"]
    store.dispose()


def test_train_page_enqueues_a_job_and_lists_it(tmp_path) -> None:
    import cv2
    import numpy as np
    from sqlalchemy import select

    from db.config import StoreConfig
    from db.models import Job
    from db.store import open_store

    assert not _page_app("app.views.train").run().exception      # empty state
    folder = tmp_path / "imgs"
    for i, name in enumerate("aabb"):  # two labeled images per class: the least training accepts
        (folder / name).mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(folder / name / f"{i}.png"), np.full((16, 16), 5 + 20 * i, np.uint8))
    assert main(["import", "--project", "cx", "--task", "multiclass", "--classes", "a,b", "--source",
                 str(folder)]) == 0
    at = _page_app("app.views.train").run()
    assert not at.exception
    at.selectbox[0].select("Mean Teacher")
    at.button[0].click().run()          # the form's submit button
    assert not at.exception
    store = open_store(StoreConfig.from_env())
    with store.sessions.begin() as s:
        job = s.scalars(select(Job)).one()
        assert (job.kind, job.status, job.params["method"]) == ("train", "queued", "mean_teacher")
    store.dispose()
    assert any("#1 train · queued" in p.proto.text for p in at.get("progress"))


def test_label_page_accepts_a_mask_proposal_as_a_new_human_label(tmp_path) -> None:
    import numpy as np
    from sqlalchemy import select

    from db.config import StoreConfig
    from db.models import Image, Label
    from db.store import open_store
    from engine.data.io import load_mask, save_mask

    images = np.random.default_rng(0).integers(0, 255, (2, 32, 32, 3), dtype=np.uint8)
    np.savez(tmp_path / "train.npz", images=images, labels=np.zeros(2, np.uint8))
    assert main(["import", "--project", "seg", "--task", "segmentation", "--source", str(tmp_path / "train.npz")]) == 0
    store = open_store(StoreConfig.from_env())
    proposal = np.zeros((32, 32), np.uint8)
    proposal[8:20, 10:24] = 1
    with store.sessions.begin() as s:
        image_id = s.scalars(select(Image.id).order_by(Image.id)).first()
        path = save_mask(proposal, store.config.masks_dir / "p1" / f"{image_id}-model1")
        s.add(Label(image_id=image_id, kind="class", source="model", checkpoint_id=None,
                    mask_path=path.relative_to(store.config.home).as_posix()))
    at = _page_app("app.views.label").run()
    assert not at.exception
    assert any("model proposal" in c.value for c in at.caption)
    next(b for b in at.button if b.label.startswith("Accept proposal")).click().run()
    assert not at.exception
    with store.sessions.begin() as s:
        human = s.scalars(select(Label).where(Label.source == "human")).one()
        assert human.image_id == image_id and human.mask_path != path.relative_to(store.config.home).as_posix()
        assert np.array_equal(load_mask(store.config.home / human.mask_path), proposal)
        assert s.get(Image, image_id).label_status == "labeled"
    store.dispose()


def test_label_caption_does_not_give_the_answer_away(tmp_path) -> None:
    """Issue 13 item 11: the caption showed `…/NORMAL/…` before the case was answered."""
    import cv2
    import numpy as np

    for name in ("NORMAL", "PNEUMONIA"):
        (tmp_path / "src" / name).mkdir(parents=True)
        cv2.imwrite(str(tmp_path / "src" / name / f"{name.lower()}_case.png"), np.full((20, 24), 9, np.uint8))
    assert main(["import", "--project", "cx", "--task", "multiclass", "--source", str(tmp_path / "src"),
                 "--unlabeled"]) == 0
    at = _page_app("app.views.label").run()
    caption = at.get("image")[0].captions[0]
    assert caption.startswith("image ") and "24×20" in caption
    assert "NORMAL" not in caption.upper().replace("ABNORMAL", "") and "case" not in caption


def test_segmentation_classes_make_background_implicit_and_stay_editable_until_labeled(tmp_path) -> None:
    """Issue 13 item 2: classes "lesion" rejected every mask ("mask has class value 1 ... 1 mask classes")."""
    import numpy as np
    from sqlalchemy import select

    from db.config import StoreConfig
    from db.models import Project
    from db.store import open_store

    at = _app().run()
    next(t for t in at.text_input if t.label == "name").input("skin")
    next(s for s in at.selectbox if s.label == "task").set_value("segmentation")
    next(t for t in at.text_input if t.label.startswith("classes")).input("lesion")
    next(b for b in at.button if b.label == "Create project").click().run()
    assert not at.exception
    editor = next(t for t in at.text_input if t.label == "classes")
    assert editor.value == "background, lesion"
    editor.input("background, lesion, hair")
    next(b for b in at.button if b.label == "Save classes").click().run()
    assert not at.exception
    masks = np.zeros((2, 16, 16), np.uint8)
    masks[:, 4:8, 4:8] = 1
    images = np.full((2, 16, 16), 90, np.uint8)
    np.savez(tmp_path / "train.npz", images=images + np.arange(2)[:, None, None], masks=masks)
    assert main(["import", "--project", "skin", "--source", str(tmp_path / "train.npz")]) == 0
    store = open_store(StoreConfig.from_env())
    with store.sessions.begin() as s:
        assert s.scalars(select(Project.classes)).one() == ["background", "lesion", "hair"]
    store.dispose()
    at = _app().run()  # labeled now: the class list is no longer offered for editing
    assert not [t for t in at.text_input if t.label == "classes"]


def test_training_is_refused_while_a_class_has_fewer_than_two_labels(tmp_path, capsys) -> None:
    """Issue 13 item 6: a one-class project trained into a useless model (val AUC 0.398) without a word."""
    import cv2
    import numpy as np
    from sqlalchemy import select

    from db.config import StoreConfig
    from db.models import Job
    from db.store import open_store

    for i in range(3):
        (tmp_path / "src" / "normal").mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(tmp_path / "src" / "normal" / f"{i}.png"), np.full((16, 16), 9 + 30 * i, np.uint8))
    assert main(["import", "--project", "cx", "--task", "multiclass", "--classes", "normal,pneumonia",
                 "--source", str(tmp_path / "src")]) == 0
    capsys.readouterr()
    assert main(["train", "--project", "cx"]) == 2
    assert "'pneumonia' (0)" in capsys.readouterr().err
    at = _page_app("app.views.train").run()
    at.button[0].click().run()
    assert not at.exception and any("Not started" in e.value and "pneumonia" in e.value for e in at.error)
    store = open_store(StoreConfig.from_env())
    with store.sessions.begin() as s:
        assert s.scalars(select(Job)).all() == []
    store.dispose()


def test_the_url_carries_project_and_case_and_a_fresh_visit_reopens_the_annotators_project(tmp_path) -> None:
    """Issue 13 item 9: a reload switched to the most recently created project."""
    import cv2
    import numpy as np

    for project in ("first", "second"):
        folder = tmp_path / project
        folder.mkdir()
        for i in range(3):
            cv2.imwrite(str(folder / f"{i}.png"), np.full((16, 16), 10 * i + len(project), np.uint8))
        assert main(["import", "--project", project, "--task", "multiclass", "--classes", "a,b",
                     "--source", str(folder)]) == 0
    at = _app()
    at.query_params["project"] = "1"
    at.run()
    assert not at.exception and at.sidebar.selectbox[0].value == 1 and at.query_params["project"] in ("1", ["1"])
    fresh = _app().run()  # no URL: this annotator's last project, not the newest one
    assert fresh.sidebar.selectbox[0].value == 1
    label = _page_app("app.views.label")  # opens the most recently used project: "second", images 4-6
    label.query_params["image"] = "5"
    label.run()
    assert label.get("image")[0].captions[0].startswith("image 5 ") and label.query_params["image"] in ("5", ["5"])

"""S²MTS² stage 1 (issue 16 §1): uniform pool batches, own-image queue masking, Shuffle-BN keys, key encoder."""
import numpy as np
import pytest
import torch

from engine.core.config import AugConfig
from engine.loaders.samplers import TwoStreamSampler
from engine.loaders.transforms import ViewMaker
from engine.methods import METHODS, Batch, Plan
from engine.methods import s2mts2 as s2mts2_module
from engine.models import create_model

torch.set_num_threads(1)


def make(**params) -> s2mts2_module.S2MTS2:
    torch.manual_seed(0)
    params = {"warmup_fraction": 0.0, "queue_size": 16, "pretrain_fraction": 0.5, **params}
    method = METHODS["s2mts2"](create_model("compact_cnn", 3, 1), "multiclass", 3, ViewMaker(AugConfig(), 0.5, 0.25),
                               params)
    method.set_plan(Plan(total_steps=20, steps_per_epoch=2))
    return method


def pool_batch(step: int, ids: list[int]) -> Batch:
    gen = torch.Generator().manual_seed(step)
    images = torch.randint(0, 256, (len(ids), 1, 16, 16), dtype=torch.uint8, generator=gen)
    empty = torch.zeros(0, dtype=torch.long)
    return Batch(images[:0], empty, images, step, gen, empty, torch.tensor(ids))


def test_stage1_draws_uniform_pool_batches_one_pass_per_epoch() -> None:
    method = make()
    assert method.pool_batch(0) and not method.pool_batch(method.pretrain_steps)
    labeled, unlabeled = np.arange(5), np.arange(5, 100)  # 5 % labels: streams would show labeled 10x as often
    sampler = TwoStreamSampler(labeled, unlabeled, 4, 6, seed=0)
    epoch = sampler.steps_per_epoch("pool")
    seen = np.concatenate([sampler.pool_batch(step) for step in range(epoch)])[:100]
    assert sorted(seen.tolist()) == list(range(100))  # every image exactly once in the first pool pass


def test_queue_entries_of_the_querys_own_image_are_masked(monkeypatch) -> None:
    method = make()
    seen: list[torch.Tensor] = []
    real = s2mts2_module.jcl_loss

    def spy(query, keys, negatives, tau, strength, exclude):
        seen.append(exclude.clone())
        return real(query, keys, negatives, tau, strength, exclude)

    monkeypatch.setattr(s2mts2_module, "jcl_loss", spy)
    method.pretrain_step(pool_batch(0, [10, 11, 12, 13]))
    assert method.queue_ids[:4].tolist() == [10, 11, 12, 13] and int(method.queue_ptr) == 4
    method.pretrain_step(pool_batch(1, [12, 20, 10, 21]))
    queue_part = seen[-1][:, 4:]  # after the 4 in-batch columns
    assert queue_part[0, 2] and queue_part[2, 0]  # image 12's and image 10's older key means
    assert int(queue_part.sum()) == 2
    assert seen[-1][:, :4].equal(torch.eye(4, dtype=torch.bool))


def test_keys_come_from_the_momentum_encoder_with_shuffled_bn_batches() -> None:
    method = make(shuffle_bn_groups=2)
    method.teacher.head_drop.p = 0.0  # deterministic keys for the comparison
    sizes: list[int] = []
    method.teacher.register_forward_pre_hook(lambda module, args: sizes.append(args[0].shape[0]))
    pool = torch.randint(0, 256, (8, 1, 16, 16), dtype=torch.uint8)
    with torch.no_grad():
        keys = method._keys(pool, torch.Generator().manual_seed(3))
        assert sizes == [4, 4] and keys.shape == (8, method.params.proj_dim)
        for p in method.student.parameters():
            p.add_(1.0)  # the student does not make the keys...
        assert torch.allclose(method._keys(pool, torch.Generator().manual_seed(3)), keys)
        for p in method.teacher.parameters():
            p.mul_(0.5)  # ...the momentum encoder does
        assert not torch.allclose(method._keys(pool, torch.Generator().manual_seed(3)), keys)


def test_one_bn_group_keys_match_the_unshuffled_forward_in_batch_order() -> None:
    """The permutation is undone: with one BN batch, shuffling changes nothing but the order it puts back."""
    method = make(shuffle_bn_groups=1)
    method.teacher.head_drop.p = 0.0
    pool = torch.randint(0, 256, (8, 1, 16, 16), dtype=torch.uint8)
    gen = torch.Generator().manual_seed(5)
    with torch.no_grad():
        keys = method._keys(pool, gen)
        view = method.views.strong(pool, torch.Generator().manual_seed(5))
        method.teacher.train()
        direct = torch.nn.functional.normalize(method.key_head(method.teacher(view)["feat"]), dim=1)
    assert torch.allclose(keys, direct, atol=1e-5)


def test_pretrain_step_updates_key_encoder_by_momentum_and_enqueues_key_means() -> None:
    method = make(key_momentum=0.9)
    with torch.no_grad():
        for p in method.teacher.parameters():
            p.fill_(0.0)
        for p in method.key_head.parameters():
            p.fill_(0.0)
        for p in [*method.student.parameters(), *method.query_head.parameters()]:
            p.fill_(1.0)
    before = method.queue.clone()
    method.pretrain_step(pool_batch(0, [1, 2, 3]))
    for p in [*method.teacher.parameters(), *method.key_head.parameters()]:
        assert torch.allclose(p, torch.full_like(p, 0.1))  # 0.9 * 0 + 0.1 * 1, before the key forward
    assert not torch.equal(method.queue[:3], before[:3]) and torch.equal(method.queue[3:], before[3:])


@pytest.mark.parametrize("groups", [1, 2])
def test_stage1_trains_inside_the_loop(groups: int) -> None:
    from engine.core.config import TrainConfig
    from engine.loaders.datasets import ArrayData
    from engine.training.loop import run_training

    rng = np.random.default_rng(0)
    images = rng.integers(0, 255, (40, 16, 16), dtype=np.uint8)
    labels = np.where(np.arange(40) < 10, np.arange(40) % 2, -1)
    data = ArrayData(images, labels, ("a", "b"), val_images=images[:8], val_labels=np.arange(8) % 2)
    cfg = TrainConfig(method="s2mts2", epochs=2, patience=None, num_threads=1, eval_batch_size=64,
                      method_params={"shuffle_bn_groups": groups, "queue_size": 16})
    result = run_training(cfg, data)
    assert result.steps_run == result.planned_steps > 0


def test_jcl_strength_ramps_linearly_over_stage1() -> None:
    method = make()  # 20 planned steps, half of them stage 1
    assert method.pretrain_steps == 10
    for step in (0, 4, 9):
        out = method.pretrain_step(pool_batch(step, [1, 2, 3, 4]))
        assert out.logs["jcl_strength"] == pytest.approx(method.params.jcl_strength * (step + 1) / 10)
        assert set(out.logs) == {"loss_jcl", "jcl_strength"}



def test_phase_fractions_name_each_costed_phase() -> None:
    assert make().phase_fractions() == [("pretrain", 0.0), ("consistency", 0.5)]
    warm = make(warmup_fraction=0.2).phase_fractions()
    assert warm == [("pretrain", 0.0), ("warm_start", 0.5), ("consistency", pytest.approx(0.6))]
    assert make(pretrain_fraction=0.0, warmup_fraction=0.5).phase_fractions() == [
        ("warm_start", 0.0), ("consistency", 0.5)]


def test_stage1_is_saved_once_after_its_last_step_with_every_module_and_the_queue(tmp_path) -> None:
    path = tmp_path / "deep" / "stage1.pt"
    method = make(stage1_save=str(path))
    assert method.pretrain_steps == 10
    method.after_step(8)
    assert not path.exists()  # not the last stage-1 step
    with torch.no_grad():
        method.query_head[0].bias.add_(1.0)
        method.queue.mul_(-1.0)
    method.queue_ids[:3] = torch.tensor([4, 5, 6])
    method.after_step(9)
    assert path.exists() and not path.with_suffix(".tmp").exists()
    saved = torch.load(path, weights_only=True)
    assert set(saved) == {"student", "teacher", "query_head", "key_head", "queue", "queue_ids"}
    for name in ("student", "teacher", "query_head", "key_head"):
        module = getattr(method, name)
        assert set(saved[name]) == set(module.state_dict())
        assert all(torch.equal(v, saved[name][k]) for k, v in module.state_dict().items())
    assert torch.equal(saved["queue"], method.queue) and saved["queue_ids"][:3].tolist() == [4, 5, 6]
    loaded = make(stage1_load=str(path))
    assert loaded.stage1_reused and loaded.pretrain_steps == 0
    assert torch.equal(loaded.query_head[0].bias, method.query_head[0].bias)
    assert torch.equal(loaded.queue, method.queue) and torch.equal(loaded.queue_ids, method.queue_ids)
    path.unlink()
    method.after_step(10)  # stage 2: no second save
    assert not path.exists()
    with pytest.raises(FileNotFoundError, match="stage-1 cache"):
        make(stage1_load=str(path))


def test_no_save_without_a_path_and_only_on_the_main_rank(tmp_path, monkeypatch) -> None:
    method = make()
    method.after_step(9)  # stage1_save unset: nothing to write, no error
    assert list(tmp_path.iterdir()) == []
    assert s2mts2_module._is_main()
    path = tmp_path / "rank1.pt"
    other = make(stage1_save=str(path))
    monkeypatch.setattr(torch.distributed, "is_initialized", lambda: True)
    monkeypatch.setattr(torch.distributed, "get_rank", lambda: 1)
    assert not s2mts2_module._is_main()
    other.after_step(9)
    assert not path.exists()
    monkeypatch.setattr(torch.distributed, "get_rank", lambda: 0)
    assert s2mts2_module._is_main()


def test_fresh_method_state_before_any_plan() -> None:
    torch.manual_seed(0)
    method = METHODS["s2mts2"](create_model("compact_cnn", 3, 1), "multiclass", 3,
                               views=ViewMaker(AugConfig(), 0.5, 0.25), params={"queue_size": 6, "proj_dim": 16})
    assert method.params.queue_size == 6  # keyword arguments reach the base class
    assert method.pretrain_steps == 0 and method.stage1_reused is False and method.plan is None
    head = method.query_head
    assert [type(m) for m in head] == [torch.nn.Linear, torch.nn.ReLU, torch.nn.Linear]
    dim = method.student.num_features
    assert (head[0].in_features, head[0].out_features, head[2].out_features) == (dim, dim, 16)
    assert not any(p.requires_grad for p in method.key_head.parameters())
    assert all(p.requires_grad for p in method.query_head.parameters())
    assert torch.allclose(method.queue.norm(dim=1), torch.ones(6)) and method.queue.shape == (6, 16)
    assert method.queue_ids.dtype == torch.long and method.queue_ids.tolist() == [-1] * 6
    plan = Plan(total_steps=8, steps_per_epoch=2)
    method.set_plan(plan)
    assert method.plan == plan and method.planned_steps() == 8 and method.pretrain_steps == 2


def test_needs_unlabeled_from_the_first_consistency_step() -> None:
    method = make(warmup_fraction=0.2)
    assert method.ssl_start == 12
    assert not method.needs_unlabeled(11) and method.needs_unlabeled(12)


def test_stage1_momentum_updates_skip_bn_buffers_and_draw_views_from_the_batch(monkeypatch) -> None:
    method = make()
    calls: list[dict] = []
    real = s2mts2_module.ema_update
    monkeypatch.setattr(s2mts2_module, "ema_update", lambda *a, **k: calls.append(k) or real(*a, **k))
    gens: list[object] = []
    strong = method.views.strong
    method.views.strong = lambda images, gen: gens.append(gen) or strong(images, gen)
    queries: list[torch.Tensor] = []
    jcl = s2mts2_module.jcl_loss
    monkeypatch.setattr(s2mts2_module, "jcl_loss", lambda q, *a: queries.append(q) or jcl(q, *a))
    batch = pool_batch(0, [1, 2, 3, 4])
    method.pretrain_step(batch)
    assert calls == [{"buffers": False}, {"buffers": False}]
    assert len(gens) == method.params.key_views + 1 and all(g is batch.gen for g in gens)
    assert torch.allclose(queries[0].norm(dim=1), torch.ones(4), atol=1e-5)


def test_jcl_strength_of_a_one_step_stage1_is_the_full_strength() -> None:
    method = make(pretrain_fraction=0.05)
    assert method.pretrain_steps == 1
    out = method.pretrain_step(pool_batch(0, [1, 2, 3]))
    assert out.logs["jcl_strength"] == pytest.approx(method.params.jcl_strength)


def test_query_chunks_one_under_ddp_else_the_bn_groups_capped_by_the_batch() -> None:
    view = torch.zeros(6, 1, 4, 4)
    assert len(make(shuffle_bn_groups=1)._query_chunks(view)) == 1
    assert len(make(shuffle_bn_groups=3)._query_chunks(view)) == 3
    assert len(make(shuffle_bn_groups=3)._query_chunks(view[:2])) == 2
    wrapped = make(shuffle_bn_groups=3)
    wrapped.use_student_wrapper(torch.nn.Identity())
    assert len(wrapped._query_chunks(view)) == 1


def test_teacher_ema_starts_on_the_first_stage2_step() -> None:
    method = make()
    step = method.pretrain_steps
    method.train_step(Batch(*_labeled(step)))  # the copy at the stage-2 boundary
    with torch.no_grad():
        for p in method.student.parameters():
            p.add_(1.0)
    before = [p.clone() for p in method.teacher.parameters()]
    method.after_step(step)
    assert any(not torch.equal(a, b) for a, b in zip(before, method.teacher.parameters(), strict=True))


def _labeled(step: int) -> tuple:
    gen = torch.Generator().manual_seed(step)
    images = torch.randint(0, 256, (6, 1, 16, 16), dtype=torch.uint8, generator=gen)
    return images[:3], torch.tensor([0, 1, 2]), images[3:], step, gen


def test_row_ids_without_indices_never_match_a_queue_id() -> None:
    gen = torch.Generator()
    batch = Batch(torch.zeros(2, 1, 4, 4), torch.zeros(2), torch.zeros(3, 1, 4, 4), 0, gen)
    ids = s2mts2_module._row_ids(batch, 5, torch.device("cpu"))
    assert ids.tolist() == [-2, -3, -4, -5, -6]
    indexed = Batch(batch.labeled, batch.targets, batch.unlabeled, 0, gen, torch.tensor([7, 8]), torch.tensor([1]))
    assert s2mts2_module._row_ids(indexed, 3, torch.device("cpu")).tolist() == [7, 8, 1]

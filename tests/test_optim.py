"""tokkit.optim: the schedule against its closed form, optimizer state round trips (and resumes bitwise),
the step loop's budget stop, its estimate line and its stop on a non-finite loss (on a fake clock)."""

from __future__ import annotations

import math

import pytest
import torch

from tokkit.optim import (DivergedError, StepLoop, default_warmup, format_duration, load_optimizer_state,
                          optimizer_tensors, warmup_cosine)


def _closed_form(step, steps, peak, warm, floor):
    if step < warm:
        return peak * (step + 1) / warm
    t = min(1.0, (step - warm) / max(1, steps - warm))
    return floor * peak + (peak - floor * peak) * (1 + math.cos(math.pi * t)) / 2


@pytest.mark.parametrize("steps,warm,floor", [(200, None, 0.1), (30, 5, 0.05), (7, 0, 0.0), (1, None, 0.1)])
def test_warmup_cosine_is_the_closed_form(steps, warm, floor):
    w = default_warmup(steps) if warm is None else warm
    for s in range(steps + 3):
        assert warmup_cosine(s, steps=steps, peak=2e-3, warmup=warm, floor=floor) == pytest.approx(
            _closed_form(s, steps, 2e-3, w, floor), rel=1e-12)
    assert default_warmup(200) == 20 and default_warmup(5000) == 100 and default_warmup(3) == 1


def test_the_hypernet_and_heal_schedules_are_unchanged():
    """The expression the loops used before the move (bit for bit: resumed runs must match old checkpoints)."""
    for steps in (6, 90, 700):
        warm = max(1, min(100, steps // 10))
        for s in range(steps):
            t = (s - warm) / max(1, steps - warm)
            old = 1e-3 * (s + 1) / warm if s < warm else 1e-3 * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, t))))
            assert warmup_cosine(s, steps=steps, peak=1e-3) == old


def _run(model, opt, steps, start=0):
    g = torch.Generator().manual_seed(0)
    xs = [torch.randn(4, 3, generator=g) for _ in range(steps)]
    for s in range(start, steps):
        opt.zero_grad()
        model(xs[s]).pow(2).sum().backward()
        opt.step()


def _model():
    torch.manual_seed(0)
    m = torch.nn.Sequential(torch.nn.Linear(3, 5), torch.nn.Linear(5, 2))
    opt = torch.optim.AdamW([{"params": m[0].parameters()}, {"params": m[1].parameters(), "lr": 1e-2}], lr=1e-3)
    return m, opt


@pytest.mark.parametrize("layout", ["current", "image-v1"])
def test_optimizer_state_round_trip_resumes_bitwise(layout):
    full, opt_full = _model()
    _run(full, opt_full, 6)
    half, opt_half = _model()
    _run(half, opt_half, 3)
    saved = optimizer_tensors(opt_half)
    assert set(saved) == {f"{k}.{i}" for i in range(4) for k in ("exp_avg", "exp_avg_sq", "step")}
    if layout == "image-v1":  # what image checkpoints wrote before: "<index>.<key>"
        saved = {f"{n.rsplit('.', 1)[1]}.{n.rsplit('.', 1)[0]}": v for n, v in saved.items()}
    params = {k: v.clone() for k, v in half.state_dict().items()}
    resumed, opt_resumed = _model()
    resumed.load_state_dict(params)
    load_optimizer_state(opt_resumed, saved)
    _run(resumed, opt_resumed, 6, start=3)
    for a, b in zip(full.parameters(), resumed.parameters()):
        assert torch.equal(a, b)


class _Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


@pytest.fixture
def clock(monkeypatch):
    import tokkit.optim.loop as loop_mod

    c = _Clock()
    monkeypatch.setattr(loop_mod.time, "perf_counter", c)
    return c


def test_budget_stops_at_a_checkpoint_when_the_next_step_would_not_fit(clock):
    loop = StepLoop("t", start=0, steps=100, checkpoint_every=50, max_minutes=0.5, clock_start=clock.now - 5,
                    progress=False)
    due = []
    for step in loop:
        clock.now += 10.0  # each step takes 10 s; 5 s of loading came first
        if loop.checkpoint_due(step):
            due.append(step + 1)
    # after 2 steps 25 s are spent and a third (+10 s) would end at 35 s > 30 s
    assert loop.stopped and loop.end == 2 and due == [2] and loop.last_checkpoint == 2
    assert loop.estimate is not None and loop.estimate.endswith("--max-minutes 0.5 stops near step 2 (resume with --resume)")


def test_no_budget_checkpoints_every_n_and_at_the_end(clock):
    loop = StepLoop("t", start=4, steps=11, checkpoint_every=3, progress=False)
    due = [s + 1 for s in loop if loop.checkpoint_due(s)]
    assert due == [6, 9, 11] and not loop.stopped and loop.end == 11


def test_estimate_line_after_the_first_steps(clock):
    loop = StepLoop("heal", start=0, steps=200, checkpoint_every=25, max_minutes=10, clock_start=clock.now,
                    progress=False)
    for step in loop:
        clock.now += 30.0 if step == 0 else 23.0  # the first step carries one-off costs
        loop.checkpoint_due(step)
        if step == 2:
            break
    assert loop.estimate == ("heal: 200 steps x ~23 s/step ≈ 1 h 17 min on this machine "
                             f"({torch.get_num_threads()} thread{'s' if torch.get_num_threads() > 1 else ''}); "
                             "--max-minutes 10 stops near step 25 (resume with --resume)")  # 3 + (600 - 76) // 23


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_a_non_finite_loss_stops_with_one_error(clock, bad):
    loop = StepLoop("heal", start=0, steps=10, checkpoint_every=2, fix="lower --lr", progress=False)
    seen = []
    with pytest.raises(DivergedError) as e:
        for step in loop:
            loop.check(torch.tensor(bad if step == 3 else 1.5), lr=2e-3)
            seen.append(step)
            loop.checkpoint_due(step)
    assert seen == [0, 1, 2]
    msg = str(e.value)
    assert f"became {bad}" in msg and "step 4" in msg and "(step 2) is kept" in msg and msg.endswith("lower --lr")
    assert loop.check(2.5) == 2.5


def test_format_duration():
    assert [format_duration(s) for s in (42, 720, 4620, 3 * 86400)] == ["42 s", "12 min", "1 h 17 min", "3 d 0 h"]


def test_a_budget_must_be_positive():
    with pytest.raises(Exception, match="max-minutes"):
        StepLoop("t", start=0, steps=3, checkpoint_every=1, max_minutes=0, progress=False)


def test_a_budget_spent_by_loading_stops_after_one_step_and_still_says_what_the_run_costs(clock):
    loop = StepLoop("heal", start=0, steps=1000, checkpoint_every=50, max_minutes=1, clock_start=clock.now - 55,
                    progress=False)
    due = []
    for step in loop:
        clock.now += 7.0
        if loop.checkpoint_due(step):
            due.append(step + 1)
    assert loop.stopped and due == [1] and loop.end == 1
    n = torch.get_num_threads()
    assert loop.estimate == (f"heal: 1000 steps x ~7 s/step ≈ 1 h 57 min on this machine ({n} thread{'s' if n > 1 else ''}); "
                             "--max-minutes 1 stops it at step 1 (resume with --resume)")


ICONS = __import__("pathlib").Path(__file__).resolve().parents[1] / "data" / "image" / "icons"


def test_image_train_and_prior_train_stop_at_a_budget_and_resume_to_the_same_weights(tmp_path):
    """A budget spent before the first step ends stops each loop after it, checkpointed; resuming gives the
    weights of one uninterrupted run (the loops share tokkit.optim.StepLoop)."""
    pytest.importorskip("PIL")
    from safetensors.torch import load_file

    from tokkit.image import load_recipe, train
    from tokkit.image.prior import load_prior_recipe
    from tokkit.image.prior_train import train_prior

    cfg = load_recipe("tiny", {"steps": 4, "checkpoint_every": 2, "log_every": 2})
    full = train(cfg, data=ICONS, out=tmp_path / "full", device="cpu", progress=False)
    cut = train(cfg, data=ICONS, out=tmp_path / "cut", device="cpu", progress=False, max_minutes=1e-7)
    assert cut.stopped and cut.steps == 1 and not full.stopped
    again = train(cfg, data=ICONS, out=tmp_path / "cut", device="cpu", progress=False, resume=True)
    assert again.steps == 4 and not again.stopped
    a, b = load_file(tmp_path / "full" / "model.safetensors"), load_file(tmp_path / "cut" / "model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)

    pcfg = load_prior_recipe("tiny", {"width": 16, "depth": 1, "heads": 2, "steps": 4, "batch_size": 8, "warmup": 1,
                                      "augment_passes": 1, "val_every": 4, "log_every": 2, "checkpoint_every": 2})
    pf = train_prior(pcfg, tokenizer=tmp_path / "full", data=ICONS, out=tmp_path / "pfull", device="cpu", progress=False)
    pc = train_prior(pcfg, tokenizer=tmp_path / "full", data=ICONS, out=tmp_path / "pcut", device="cpu", progress=False,
                     max_minutes=1e-7)
    assert pc.stopped and pc.steps == 1 and not pf.stopped
    train_prior(pcfg, tokenizer=tmp_path / "full", data=ICONS, out=tmp_path / "pcut", device="cpu", progress=False,
                resume=True)
    a, b = load_file(tmp_path / "pfull" / "prior.safetensors"), load_file(tmp_path / "pcut" / "prior.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_tampered_optimizer_state_is_refused_before_anything_loads():
    """A moment of the wrong shape, a non-float moment, an index past the parameters or a step that is not one
    number: one FormatError naming it, and the optimizer untouched (AdamW failed later with a shape error)."""
    import torch

    from tokkit.errors import FormatError
    from tokkit.optim.state import load_optimizer_state, optimizer_tensors

    w = torch.nn.Parameter(torch.randn(4, 3))
    opt = torch.optim.AdamW([w], lr=0.1)
    w.sum().backward()
    opt.step()
    good = optimizer_tensors(opt)
    fresh = torch.optim.AdamW([torch.nn.Parameter(torch.randn(4, 3))], lr=0.1)
    for change in ({"exp_avg.0": torch.zeros(5)}, {"exp_avg_sq.0": torch.zeros(4, 3, dtype=torch.int32)},
                   {"exp_avg.7": torch.zeros(4, 3)}, {"step.0": torch.zeros(2)}):
        with pytest.raises(FormatError, match="damaged or was changed"):
            load_optimizer_state(fresh, {**good, **change})
        assert not fresh.state
    load_optimizer_state(fresh, good)
    assert torch.equal(fresh.state[fresh.param_groups[0]["params"][0]]["exp_avg"], good["exp_avg.0"])

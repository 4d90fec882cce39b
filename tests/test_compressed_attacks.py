"""compressed_robustness and attack_agreement at smoke settings: the numbers fit together, a
weakened attack raises the flag, a missing library is skipped with one line naming the extra."""

from dataclasses import replace

import pytest
import torch

from quirkbench.methods import attacks as A
from quirkbench.tasks import Context, get


def run_task(name, dataset="digits", **overrides):
    task = get(name)
    cfg = task.make_config("smoke", overrides)
    return task.run(cfg, Context(dataset, 0, torch.device("cpu")))


def values(out, name, **tags):
    return [m for m in out.metrics if m.name == name
            and all(m.tags.get(k) == v for k, v in tags.items())]


def test_both_tasks_are_in_the_suites():
    for name in ("compressed_robustness", "attack_agreement"):
        assert {"smoke", "pr", "quick", "nightly"} <= set(get(name).suites)


def test_attack_agreement_fgsm_is_identical_to_torchattacks():
    pytest.importorskip("torchattacks", reason="needs the attacks extra (torchattacks)")
    out = run_task("attack_agreement")
    (gap,) = values(out, "success_gap", attack="fgsm", reference="torchattacks")
    (dis,) = values(out, "disagreement", attack="fgsm", reference="torchattacks")
    assert gap.value == 0.0 and dis.value == 0.0  # one signed gradient step: same inputs flip
    ours = values(out, "success_rate", attack="pgd-linf", impl="ours")[0].value
    assert ours > 50  # the attack does something on this model
    assert out.info["flag"] is None or "trails a reference" in out.info["flag"]


def test_a_weakened_attack_raises_the_flag(monkeypatch):
    pytest.importorskip("torchattacks", reason="needs the attacks extra (torchattacks)")
    # a planted bug: our attacks spend a third of the budget
    for cls in (A.FGSM, A.PGD):
        real = cls.configure
        monkeypatch.setattr(cls, "configure", classmethod(
            lambda c, eps, norm, s, real=real: real(eps / 3, norm, replace(
                s, step_size=s.step_size / 3))))
    out = run_task("attack_agreement")
    (worst,) = values(out, "worst_gap")
    assert worst.value < -2 and worst.holds is False
    assert "trails a reference" in out.info["flag"]
    assert any(m.holds is False for m in values(out, "success_gap"))


def test_missing_library_is_skipped_naming_the_extra(monkeypatch):
    pytest.importorskip("torchattacks", reason="needs the attacks extra (torchattacks)")
    from quirkbench import peers

    monkeypatch.setattr(peers, "_loaded", {})
    monkeypatch.setitem(peers.PEERS, "foolbox", ("quirkbench_no_such_module", "attacks"))
    out = run_task("attack_agreement", libraries=["torchattacks", "foolbox"])
    assert out.info["skipped"]["foolbox"] == "not installed: pip install 'quirkbench[attacks]'"
    assert out.info["peers_unavailable"] == {"foolbox": out.info["skipped"]["foolbox"]}
    assert not values(out, "success_gap", reference="foolbox")
    assert values(out, "success_gap", reference="torchattacks")


def test_foolbox_reference_runs_when_installed():
    pytest.importorskip("foolbox", reason="needs the attacks extra (foolbox)")
    out = run_task("attack_agreement", libraries=["foolbox"])
    (dis,) = values(out, "disagreement", attack="fgsm", reference="foolbox")
    assert dis.value == 0.0 and not out.info["skipped"]


def test_compressed_robustness_costs_are_differences_from_dense():
    out = run_task("compressed_robustness", "mnist5k")
    for model in ("pruned", "int8", "distilled"):
        for m in values(out, "robustness_cost", model=model):
            t = {"norm": m.tags["norm"], "eps": m.tags["eps"]}
            (mine,) = values(out, "success_rate", model=model, **t)
            (dense,) = values(out, "success_rate", model="dense", **t)
            assert m.value == pytest.approx(mine.value - dense.value)
    (ratio,) = values(out, "pruned_ratio")
    assert ratio.value >= 2  # the smoke schedule (2×, 4×) keeps accuracy at 2× at least
    (kept,) = values(out, "remaining_params", model="pruned")
    (total,) = values(out, "remaining_params", model="dense")
    assert total.value / kept.value == pytest.approx(ratio.value, rel=0.01)  # attacked = pruned
    assert out.info["int8_levels"] <= 255  # the int8 model's weights are on an int8 grid
    (acc_int8,) = values(out, "clean_acc", model="int8")
    (acc_dense,) = values(out, "clean_acc", model="dense")
    assert abs(acc_int8.value - acc_dense.value) <= 1.0  # int8 rounding barely moves accuracy
    anchors = {m.anchor.paper for m in out.metrics if m.anchor}
    assert anchors == {"Guo et al. 2018", "Ye et al. 2019"}
    # whether a model's accuracy matched dense's is a metric, not a tag of its costs (a tag
    # that depends on the outcome would rename the headline metric from seed to seed)
    assert not any("matched" in m.tags for m in out.metrics)
    for model in ("pruned", "int8", "distilled"):
        (matched,) = values(out, "clean_acc_matched", model=model)
        (acc,) = values(out, "clean_acc", model=model)
        assert matched.value == float(abs(acc.value - acc_dense.value) <= 1.0)


def test_compressed_robustness_distortion_ratio_tracks_the_attack(monkeypatch):
    out = run_task("compressed_robustness", "mnist5k")
    (d,) = values(out, "median_min_l2", model="dense")
    (q,) = values(out, "distortion_ratio", model="int8")
    assert d.value > 0 and 0.5 < q.value < 2  # int8 of dense: about as robust as dense
    # a planted bug: PGD that never moves makes every success 0
    def still(self, model, x, y):
        self.nothing = torch.zeros(len(x), dtype=torch.bool)
        return x.clone()

    monkeypatch.setattr(A.PGD, "forward", still)
    monkeypatch.setattr(A.PGD, "found", property(lambda self: self.nothing))
    out = run_task("compressed_robustness", "mnist5k")
    assert all(m.value == 0 for m in values(out, "success_rate"))


def test_paired_ratio_is_the_median_of_per_input_ratios():
    from quirkbench.tasks.compressed_robustness import paired_ratio

    inf = float("inf")
    d_ref = torch.tensor([1.0, 2.0, 3.0, inf, 5.0, 0.0])
    d = torch.tensor([3.0, 2.0, 6.0, 1.0, inf, 1.0])
    # ratios 3, 1, 2 on the inputs both found (d_ref > 0): median 2; the ratio of the two
    # medians over each side's found inputs would be 2.5 / 2.5 = 1
    assert paired_ratio(d, d_ref) == 2.0
    assert torch.isnan(torch.tensor(paired_ratio(d[3:5], d_ref[3:5])))


def test_distortion_ratio_pairs_each_input_with_itself_on_dense(monkeypatch):
    from quirkbench.tasks import compressed_robustness as T

    seen = []

    def spy(d, d_ref):
        seen.append((d.clone(), d_ref.clone()))
        return 7.0

    monkeypatch.setattr(T, "paired_ratio", spy)
    out = run_task("compressed_robustness")
    assert [m.value for m in values(out, "distortion_ratio")] == [7.0] * 3
    attacked = out.info["attacked"]
    assert all(len(d) == len(ref) == attacked for d, ref in seen)
    assert all(torch.equal(ref, seen[0][1]) for _, ref in seen)  # dense's, every time


def test_repeats_average_draws_each_trained_from_its_own_seed():
    from quirkbench.tasks import compressed_robustness as T

    task = get("compressed_robustness")
    cfg = task.make_config("smoke", {"repeats": 2})
    ctx = Context("digits", 0, torch.device("cpu"))
    both = task.run(cfg, ctx)
    ds = ctx.load_data(n_train=cfg.n_train)  # the unit's data: the draws share it
    draws = [T._attack_four(cfg, ds, ctx, s) for s in (0, T.REPEAT_SEED)]
    for model in T.MODELS:
        a = [d["rows"][model]["clean_acc"] for d in draws]
        assert a[0] != a[1] or model == "int8"  # two draws, two models
        (acc,) = values(both, "clean_acc", model=model)
        assert acc.value == pytest.approx((a[0] + a[1]) / 2)
        for m in values(both, "robustness_cost", model=model):
            key = (m.tags["norm"], float(m.tags["eps"]))
            c = [d["rows"][model][key] - d["rows"]["dense"][key] for d in draws]
            assert m.value == pytest.approx((c[0] + c[1]) / 2)
        if model == "dense":
            continue
        r = [d["ratios"][model] for d in draws]
        (ratio,) = values(both, "distortion_ratio", model=model)
        assert ratio.value == pytest.approx((r[0] * r[1]) ** 0.5)  # geometric mean
        (matched,) = values(both, "clean_acc_matched", model=model)
        assert matched.value == sum(abs(d["rows"][model]["clean_acc"] -
                                        d["rows"]["dense"]["clean_acc"]) <= cfg.delta_pp
                                    for d in draws) / 2
    assert both.info["repeats"] == 2


def test_repeats_below_one_is_refused():
    from quirkbench.config import ConfigError

    with pytest.raises(ConfigError, match="repeats"):
        get("compressed_robustness").make_config("smoke", {"repeats": 0})

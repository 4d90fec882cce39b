"""Throughput task: timing helpers, FLOP counting, the peak table, the task end to end on a
tiny grid, and bad settings refused. No timing thresholds: only units, shapes and formulas."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from quirkbench.cli import main
from quirkbench.engine import timing as tp
from quirkbench.engine.models import make_model
from quirkbench.errors import UserError
from quirkbench.methods import attacks as A
from quirkbench.tasks import Context, get

CPU = torch.device("cpu")
THREADS = torch.get_num_threads()
TINY = dict(models=("mlp-32",), batches=(16,), steps=2, repeats=1, warmup_steps=1,
            many_k=(2,), many_model="mlp-32", many_batch=16, matmul_n=64, pgd_model="mlp-32",
            pgd_n=16, pgd_steps=2, pgd_train_steps=5, profile=True, profile_model="mlp-32",
            profile_batch=16, one_thread=True)


@pytest.fixture(scope="module")
def output():
    task = get("throughput")
    cfg = task.make_config(None, TINY)
    return task.run(cfg, Context("mnist5k", 0, CPU))


def test_step_flops_match_the_formula():
    # softmax regression: forward addmm 2·B·784·10, backward only the weight grad (x needs
    # no grad), another 2·B·784·10
    model = make_model("mlp", (1, 28, 28), 10)
    x, y = torch.rand(8, 1, 28, 28), torch.randint(0, 10, (8,))
    assert tp.step_flops(model, x, y) == 4 * 8 * 784 * 10
    assert all(p.grad is None for p in model.parameters())


def test_fused_update_trains_like_the_default():
    from quirkbench.engine.train import TrainConfig, evaluate, train

    x, y = torch.rand(64, 1, 28, 28), torch.randint(0, 10, (64,))
    out = []
    for fused in (False, True):
        m = make_model("mlp-32", (1, 28, 28), 10, seed=0)
        start = evaluate(m, x, y)[1]
        r = train(m, x, y, TrainConfig(lr=0.1, batch_size=16, max_steps=40,
                                       target_train_acc=None, fused=fused), seed=0)
        out.append((r.train_loss, torch.cat([p.flatten() for p in m.parameters()])))
    (loss0, w0), (loss1, w1) = out
    # the option reaches the optimizer (else the two runs would be the same run)
    from quirkbench.engine.train import make_optimizer
    params = list(make_model("mlp-32", (1, 28, 28), 10).parameters())
    assert make_optimizer(params, TrainConfig(fused=True)).defaults["fused"] is True
    assert not make_optimizer(params, TrainConfig()).defaults.get("fused")
    assert make_optimizer(params, TrainConfig(optimizer="adam", fused=True)).defaults["fused"]
    assert loss1 < start - 0.05  # it learns
    assert torch.allclose(w0, w1, atol=1e-4)  # the same update up to rounding


def test_matmul_rate_and_timer_are_positive():
    assert tp.matmul_gflops(64, CPU, repeats=1) > 0
    assert tp.timed(lambda: torch.ones(10).sum(), CPU) >= 0


def test_peak_table(monkeypatch):
    assert tp.peak_tflops(CPU) is None
    fake = torch.device("cuda")
    for name, want in [("NVIDIA H100 PCIe", (756.0, 51.0)),
                       ("NVIDIA H100 80GB HBM3", (989.0, 67.0)),
                       ("NVIDIA A100-SXM4-40GB", (312.0, 19.5)),
                       ("NVIDIA L4", (121.0, 30.3)), ("Quadro P400", None)]:
        monkeypatch.setattr(torch.cuda, "get_device_name", lambda d=None, n=name: n)
        assert tp.peak_tflops(fake) == want


def test_interleaved_takes_the_median_per_runner():
    seq = iter([9.0, 1.0, 2.0, 3.0, 5.0, 4.0, 100.0])
    out = tp.interleaved({"a": lambda n: next(seq), "b": lambda n: next(seq)}, steps=1,
                         repeats=3, warmup=0)
    assert out == {"a": 5.0, "b": 3.0}  # alternating: a gets 9, 2, 5; b gets 1, 3, 4


def test_ratios_are_taken_repeat_by_repeat():
    # the machine's speed drifts (×1, ×3, ×2) while b stays about 2× a: the per-repeat
    # ratios are 2.0, 2.2, 1.8 (median 2.0); the ratio of the medians pairs a's repeat 3 with
    # b's repeat 3 only by chance and reads 3.6 / 2.0 = 1.8
    seq = iter([1.0, 2.0, 3.0, 6.6, 2.0, 3.6])
    t = tp.interleaved_samples({"a": lambda n: next(seq), "b": lambda n: next(seq)},
                               steps=1, repeats=3, warmup=0)
    assert t == {"a": [1.0, 3.0, 2.0], "b": [2.0, 6.6, 3.6]}
    assert tp.paired_ratio(t["b"], t["a"]) == pytest.approx(2.0)
    with pytest.raises(ValueError):
        tp.paired_ratio([1.0], [1.0, 2.0])


def test_median_log_se_of_repeats():
    # ln of the per-repeat ratios 2.0, 2.2, 1.8: sd 0.1004; the median's error 1.2533·sd/√3
    assert tp.paired_spread([2.0, 6.6, 3.6], [1.0, 3.0, 2.0]) == pytest.approx(
        1.2533 * 0.100377 / 3 ** 0.5, rel=1e-4)
    assert tp.median_log_se([1.0]) is None and tp.median_log_se([1.0, -1.0]) is None
    assert tp.median_log_se([2.0, 2.0, 2.0]) == 0.0


def test_every_ratio_carries_the_spread_of_its_own_repeats():
    """matmul_share, the speed-ups over naive, engine and peers: each records the standard
    error its interleaved repeats put on it (compare does not judge a change it explains);
    so does each rate, the median of its own repeats (beside two CPU-burning processes the
    run's control stayed steady while the bare step's rate moved ×0.61 between two runs of
    one commit)."""
    from quirkbench.engine import train_speed as ts
    from quirkbench.tasks import throughput as T

    step = [1.0, 1.1, 0.95, 1.3, 1.0]
    rows = [{"model": "mlp-32", "batch": 128, "variant": v, "samples_per_s": 128 / k,
             "step_s": k, "repeats_s": [k * x for x in step[:4]] + [k * (1 + i)],
             "flops": None, "matmul_gflops": None, "matmul_s": None,
             "step_matmuls_s": [0.5, 0.6, 0.5, 0.5, 0.55]}
            for i, (v, k) in enumerate((("engine", 1.0), ("naive", 2.0), ("bare", 0.8)))]
    got = {(m.name, m.tags["variant"]): m for m in ts.training_metrics(T.ThroughputConfig(),
                                                                        rows, None)}
    eng, naive, bare = rows
    assert got["matmul_share", "engine"].spread == tp.paired_spread(eng["step_matmuls_s"],
                                                                     eng["repeats_s"])
    assert got["speedup_vs_naive", "engine"].spread == tp.paired_spread(naive["repeats_s"],
                                                                         eng["repeats_s"])
    assert got["speedup_vs_engine", "bare"].spread == tp.paired_spread(eng["repeats_s"],
                                                                        bare["repeats_s"])
    for v, r in (("engine", eng), ("naive", naive), ("bare", bare)):
        assert got["samples_per_s", v].spread == got["steps_per_s", v].spread == \
            tp.median_log_se(r["repeats_s"]) > 0
    times = {"gemm": [1.0, 1.1, 0.9], "ours-full": [2.0, 2.4, 1.9], "floor": [1.5, 1.6, 1.4],
             "ours": [1.8, 2.0, 1.7], "torchattacks": [3.0, 3.3, 3.5]}
    base = {"model": "mlp-32", "batch": 16, "attack": "pgd-linf"}
    cfg = T.ThroughputConfig()
    shares = {m.name: m for m in T._share_metrics(
        cfg, {"times": times, "flops": 1e6, "gemm_s": 0.1}, base)}
    assert shares["matmul_share"].spread == tp.paired_spread(times["gemm"], times["ours-full"])
    assert shares["floor_share"].spread == tp.paired_spread(times["gemm"], times["floor"])
    peer = {(m.name, m.tags["variant"]): m for m in T._peer_metrics(
        cfg, times, {"ours": 20, "ours-full": 32, "torchattacks": 32}, ["torchattacks"], base,
        {}, "pgd-linf")}
    assert peer["speedup_vs_fastest_peer", "ours"].spread == tp.paired_spread(
        times["torchattacks"], times["ours"]) > 0


def test_task_metrics_units_and_tags(output):
    by = {}
    for m in output.metrics:
        by.setdefault(m.name, []).append(m)
    for name in ("samples_per_s", "steps_per_s", "speedup_vs_naive", "matmul_share",
                 "matmul_gflops", "achieved_gflops", "speedup_vs_sequential",
                 "input_iterations_per_s", "success_rate", "speedup_vs_peer",
                 "speedup_vs_fastest_peer", "profiled_step_time", "idle_fraction",
                 "op_self_time"):
        assert name in by, name
    units = {"samples_per_s": "samples/s", "steps_per_s": "steps/s", "speedup_vs_naive": "×",
             "matmul_share": "%", "speedup_vs_sequential": "×", "speedup_vs_peer": "×",
             "input_iterations_per_s": "input-iterations/s"}
    for name, unit in units.items():
        assert all(m.unit == unit and m.value > 0 for m in by[name]), name
    # every timing-derived metric is declared a timing; ratios name their denominator
    timing = {"samples_per_s", "steps_per_s", "speedup_vs_naive", "speedup_vs_engine",
              "matmul_share", "speedup_ceiling_vs_naive", "busy_time_per_step",
              "host_time_per_step",
              "matmul_gflops", "achieved_gflops", "speedup_vs_sequential", "gemm_share",
              "input_iterations_per_s", "speedup_vs_peer", "speedup_vs_fastest_peer", "floor_share",
              "profiled_step_time",
              "idle_fraction", "op_self_time", "sequential_samples_per_s"}
    for m in output.metrics:
        assert m.kind == ("timing" if m.name in timing or m.unit in ("ms", "s") else "exact"), m
    keys = {m.key for m in output.metrics}
    for name in ("speedup_vs_naive", "speedup_vs_peer", "speedup_vs_fastest_peer",
                 "speedup_vs_sequential"):
        assert all(m.baseline in keys for m in by[name]), name
    variants = {m.tags["variant"] for m in by["samples_per_s"]}
    extra = {"1-thread"} if torch.get_num_threads() > 1 else set()
    assert variants == {"engine", "naive", "bare", "fused-update"} | extra
    shares = {m.tags["variant"] for m in by["matmul_share"] if "attack" not in m.tags}
    assert shares == {"engine", "bare"}  # against the step's own matmuls
    # the profiled step is the same model and batch as a naive row: the ceiling is reported
    (ceil,) = by["speedup_ceiling_vs_naive"]
    assert ceil.unit == "×" and ceil.value > 0 and ceil.tags["model"] == "mlp-32"
    assert torch.get_num_threads() == THREADS  # the 1-thread variant restores the pool
    assert all({"model", "batch", "variant"} <= set(m.tags) for m in output.metrics
               if m.name != "matmul_gflops")
    assert all(0 <= m.value <= 100 for m in by["success_rate"])
    assert 2 <= sum(m.headline for m in output.metrics) <= 5
    # one repeat (TINY): no spread to record
    assert all(m.spread is None for m in output.metrics)
    sp = by["speedup_vs_naive"][0]
    eng = {m.tags["variant"]: m.value for m in by["steps_per_s"]}
    assert sp.value == pytest.approx(eng["engine"] / eng["naive"])


def test_series_records(output):
    recs = output.series["throughput"]
    train = [r for r in recs if "attack" not in r]
    attack = [r for r in recs if "attack" in r]
    assert train and all(set(r) == {"model", "batch", "variant", "samples_per_s"} for r in train)
    assert {"engine", "naive", "vmap-2"} <= {r["variant"] for r in train}
    # attack speed in its own unit (input-iterations/s), never as samples/s
    assert all(set(r) == {"model", "batch", "attack", "variant", "input_iterations_per_s"}
               for r in attack)
    assert {("pgd-linf", "ours"), ("pgd-l2", "foolbox"), ("pgd-l2", "torchattacks")} \
        <= {(r["attack"], r["variant"]) for r in attack}
    assert output.info["profile"]["steps"] >= 1


def test_attack_speed_is_against_every_peer_and_the_fastest(output):
    got = [m for m in output.metrics if m.tags.get("attack", "").startswith("pgd-")]
    for attack in ("pgd-linf", "pgd-l2"):
        mine = [m for m in got if m.tags["attack"] == attack]
        rate = {m.tags["variant"]: m.value for m in mine if m.name == "input_iterations_per_s"}
        success = {m.tags["variant"] for m in mine if m.name == "success_rate"}
        assert {"ours", "ours-full", "torchattacks", "foolbox"} <= set(rate) == success
        peers = [v for v in rate if v not in ("ours", "ours-full")]
        fastest = max(peers, key=rate.get)
        vs = {m.tags["peer"]: m for m in mine
              if m.name == "speedup_vs_peer" and m.tags["variant"] == "ours"}
        assert set(vs) == set(peers)  # one key per installed peer, whichever is fastest
        assert not any(m.headline for m in vs.values())
        for p in peers:  # one repeat (TINY): the ratio of the two rates
            assert vs[p].value == pytest.approx(rate["ours"] / rate[p])
        (sp,) = [m for m in mine
                 if m.name == "speedup_vs_fastest_peer" and m.tags["variant"] == "ours"]
        assert "peer" not in sp.tags and sp.headline and sp.goal is None
        assert sp.value == pytest.approx(rate["ours"] / rate[fastest])
        assert output.info[f"{attack}-ours-fastest-peer"] == fastest
        (full,) = [m for m in mine
                   if m.name == "speedup_vs_fastest_peer" and m.tags["variant"] == "ours-full"]
        assert full.goal.target == 1.0 and not full.headline
        assert all(m.unit == "input-iterations/s" for m in mine
                   if m.name == "input_iterations_per_s")
        (share,) = [m for m in mine if m.name == "matmul_share"]
        assert share.unit == "%" and share.value > 0 and share.goal.target == 85
        (floor,) = [m for m in mine if m.name == "floor_share"]
        assert floor.value > 0 and floor.tags["variant"] == "floor"


def test_attack_speed_is_per_iteration_done(monkeypatch):
    """A PGD cut short never reads faster: 'ours' is planted to stop after one of its ten
    steps, and every call is timed at 1 s. Credited with the input-iterations it did (at most
    a tenth of the full one's), the cut attack reads that much slower than the full one and
    than the peer at equal work; the nominal inputs × steps read them all alike."""
    from quirkbench.tasks import throughput

    real = A.PGD.configure

    def one_step(cls, eps, norm, settings):
        if settings.early_stop:  # the variant the tasks run: planted to do one step
            settings = replace(settings, steps=1)
        return real(eps, norm, settings)

    monkeypatch.setattr(A.PGD, "configure", classmethod(one_step))
    monkeypatch.setattr(throughput, "timed", lambda f, device: (f(), 1.0)[1])
    cfg = get("throughput").make_config(None, TINY | {"pgd_norms": ("linf",), "pgd_steps": 10,
                                                     "pgd_n": 64, "pgd_peers": ("foolbox",)})
    res = throughput.measure_attacks(cfg, Context("mnist5k", 0, CPU), log=lambda m: None)["linf"]
    done = res["work"]["ours"]  # one step for the inputs not already flipped at the start
    assert 0 < done <= 64 and res["work"] == {"ours": done, "ours-full": 640, "foolbox": 640}
    assert res["rate"] == {"ours": done, "ours-full": 640.0, "foolbox": 640.0}
    base = {"attack": "pgd-linf"}
    out = throughput._peer_metrics(cfg, res["times"], res["work"], ["foolbox"], base, {},
                                   "pgd-linf")
    sp = {m.tags["variant"]: m.value for m in out if m.name == "speedup_vs_fastest_peer"}
    assert sp == {"ours": pytest.approx(done / 640), "ours-full": pytest.approx(1.0)}


def test_attack_peers_missing_are_skipped_naming_the_extra(monkeypatch):
    from quirkbench.tasks import throughput

    monkeypatch.setattr(throughput, "peer_run", lambda *a, **k: None)
    lines = []
    task = get("throughput")
    cfg = task.make_config(None, TINY | {"pgd_norms": ("linf",)})
    res = throughput.measure_attacks(cfg, Context("mnist5k", 0, CPU), log=lines.append)
    assert set(res["linf"]["rate"]) == {"ours", "ours-full"}
    assert set(res["linf"]["skipped"]) == {"torchattacks", "foolbox", "art"}
    assert "quirkbench[attacks]" in lines[-1] and "no peer installed" in lines[-1]


@pytest.mark.parametrize("bad", [{"steps": 0}, {"batches": ()}, {"batches": (0,)},
                                 {"many_k": (1,)}, {"pgd_eps": 0.0}, {"warmup_steps": -1},
                                 {"pgd_peers": ("cleverhans",)}, {"pgd_norms": ("l1",)}])
def test_bad_config_is_a_user_error(bad):
    with pytest.raises(UserError):
        get("throughput").make_config(None, bad)


def test_bad_setting_from_cli_exit_2(tmp_path, capsys):
    rc = main(["run", "--suite", "smoke", "--tasks", "throughput", "--set", "throughput.steps=0",
               "--out", str(tmp_path / "r.json"), "--no-report", "-q"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and "throughput.steps" in err and "\n" not in err


def test_unknown_model_exit_2(tmp_path, capsys):
    rc = main(["run", "--suite", "smoke", "--tasks", "throughput", "--set",
               "throughput.models=['mlp-x']", "--out", str(tmp_path / "r.json"), "--no-report",
               "-q"])
    assert rc == 2 and "mlp" in capsys.readouterr().err


def test_unbounded_dataset_refused_exit_2(tmp_path, capsys):
    rc = main(["run", "--suite", "smoke", "--tasks", "throughput", "--dataset", "mnist1d",
               "--out", str(tmp_path / "r.json"), "--no-report", "-q"])
    assert rc == 2 and "mnist1d" in capsys.readouterr().err


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_variants_and_peak_share():
    task = get("throughput")
    cfg = task.make_config(None, TINY | {"pgd": False, "profile": False, "many_k": ()})
    out = task.run(cfg, Context("mnist5k", 0, torch.device("cuda")))
    variants = {m.tags.get("variant") for m in out.metrics if m.name == "samples_per_s"}
    assert {"engine", "naive", "bf16", "cudagraphs"} <= variants


def test_the_step_matmuls_runner_does_exactly_the_steps_matmuls():
    """The matmul-bound limit's yardstick: the FLOPs it runs are the step's (forward, weight
    gradients, input gradients past the first layer); nothing for a convolutional model."""
    from torch.utils.flop_counter import FlopCounterMode

    model = make_model("mlp-512", (1, 28, 28), 10, seed=0)
    x, y = torch.rand(16, 1, 28, 28), torch.randint(0, 10, (16,))
    run = tp.step_matmuls_runner(model, 16, CPU)
    with FlopCounterMode(display=False) as fc:
        assert run(2) > 0
    assert fc.get_total_flops() == 2 * tp.step_flops(model, x, y)
    assert tp.step_matmuls_runner(make_model("lenet5", (1, 28, 28), 10), 16, CPU) is None


def test_goals_this_machine_cannot_meet_say_why_instead_of_missed():
    """≥ 80% of the matmul-bound limit is judged only where the bare step reaches it; ≥ 1.5×
    the naive loop only where the naive step takes ≥ 1.5× the bare one."""
    from quirkbench.engine.train_speed import naive_goal, share_goal

    mm = [1.0, 1.0, 1.0]

    def row(step_s):
        return {"batch": 128, "step_s": step_s, "repeats_s": [step_s] * 3,
                "step_matmuls_s": mm}

    low = share_goal(row(1.5), row(1.4))  # bare at 71%
    assert low.target == 80 and "bare step" in low.not_judged and "71%" in low.not_judged
    assert share_goal(row(1.5), row(1.2)).not_judged == ""  # bare at 83%: judged
    slow = naive_goal(row(1.3), row(1.0))
    assert slow.target == 1.5 and "only 1.30× the bare step" in slow.not_judged
    assert naive_goal(row(2.0), row(1.0)).not_judged == ""

"""Multi-process DeepSpeed launches on CPU (what a notebook cannot test: several real processes over gloo).

A 6-step tiny SFT (global batch 8) runs as one process, as 2 processes under ZeRO-2, and as two simulated nodes
(two rendezvous calls on localhost, one process each) under ZeRO-3 with whole-layer gathers (`zero3_leaf`). The
two-process loss curves must equal the one-process curve within a relative 1e-4 (measured: equal to ~1e-7), and
every rank must hold the share of the training state that ZeRO's partitioning predicts. Cost on 2 idle cores:
~35 s per launch, plus a one-time ~2 min build of DeepSpeed's shm_comm op (cached in $TORCH_EXTENSIONS_DIR; the CI
script sets it).
"""
import os, threading, socket
import pytest
from llm_methods.distributed import launch, read_run, loss_curve, state_vs_prediction

SMALL = dict(steps=6, logging_steps=1, n_train=256, eval_n_per_task=1, record=False, progress=False)
REL = 1e-4  # loss-curve tolerance, relative

def _log(d): return (d / "launch.log").read_text(errors="replace")[-4000:] if (d / "launch.log").exists() else "(no log)"

def _same_curve(run, ref):
    got, want = loss_curve(run), loss_curve(ref)
    assert len(got) == len(want) == SMALL["steps"], (got, want)
    assert got == pytest.approx(want, rel=REL), (got, want)
    # (that these 6 steps lower the loss is no longer checked: the base now knows the chat format, and with batch 8
    # the per-step losses are noise around 1; 02_sft asserts that the same loop trains, over 500 steps)

def _partitioned_as_predicted(run, world):
    rows = state_vs_prediction(run)
    assert len(rows) == world, rows
    for r in rows:
        for k in ("weights", "master", "optimizer"):
            assert r[f"{k}_MB"] == pytest.approx(r[f"pred_{k}_MB"], rel=0.05, abs=1e-3), (k, r)

@pytest.fixture(scope="module")
def single(tmp_path_factory):
    d = tmp_path_factory.mktemp("single")
    rc = launch("sft", None, gpus=1, device="cpu", overrides={**SMALL, "batch_size": 8}, run_dir=str(d), stream=False)
    assert rc == 0, _log(d)
    return read_run(d)

def test_zero2_two_processes_match_one_process(single, tmp_path):
    out = tmp_path / "model"  # both ranks are given output_dir: the main process claims it, saves, and writes the manifest
    rc = launch("sft", "zero2", gpus=2, device="cpu", overrides={**SMALL, "batch_size": 4, "output_dir": str(out)}, run_dir=str(tmp_path), stream=False)
    assert rc == 0, _log(tmp_path)
    import json
    man = json.loads((out / "llm_methods_run.json").read_text())
    assert man["status"] == "done" and (out / "model.safetensors").exists() and not (out / ".llm_methods.lock").exists(), man
    run = read_run(tmp_path)
    assert run["spec"]["world_size"] == 2 and {r["optimizer_class"] for r in run["ranks"]} == {"DeepSpeedZeroOptimizer"}
    _same_curve(run, single)
    _partitioned_as_predicted(run, 2)
    assert run["result"]["score"] == pytest.approx(single["result"]["score"], abs=1e-9)  # same model -> same held-out answers

def test_zero3_two_simulated_nodes_match_one_process(single, tmp_path):
    hosts = tmp_path / "hostfile"; hosts.write_text("node0 slots=1\nnode1 slots=1\n")
    with socket.socket() as s: s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]
    rcs, dirs = {}, {r: tmp_path / f"node{r}" for r in (0, 1)}
    def node(r):
        rcs[r] = launch("sft", "zero3", gpus=1, hostfile=str(hosts), device="cpu", node_rank=r, master_addr="127.0.0.1",
                        master_port=port, overrides={**SMALL, "batch_size": 4, "zero3_leaf": True}, run_dir=str(dirs[r]), stream=False)
    threads = [threading.Thread(target=node, args=(r,)) for r in (0, 1)]
    for t in threads: t.start()
    for t in threads: t.join(timeout=900)
    assert rcs == {0: 0, 1: 0}, (rcs, _log(dirs[0]), _log(dirs[1]))
    n0, n1 = read_run(dirs[0]), read_run(dirs[1])
    assert n0["result"] is not None and n1["result"] is None  # global rank 0 lives on node 0 and alone writes the result
    assert [r["rank"] for r in n0["ranks"]] == [0] and [r["rank"] for r in n1["ranks"]] == [1]
    run = dict(n0, ranks=n0["ranks"] + n1["ranks"])
    assert {r["world_size"] for r in run["ranks"]} == {2} and {r["optimizer_class"] for r in run["ranks"]} == {"DeepSpeedZeroOptimizer_Stage3"}
    _same_curve(run, single)
    _partitioned_as_predicted(run, 2)

TINY = dict(shape="tiny", steps=6, batch_size=2, max_length=64, lr=3e-3, logging_steps=1, progress=False)

def test_zero3_leaf_layers_same_curve(tmp_path):
    "Gathering whole decoder layers (`zero3_leaf=True`, the 2-GPU speed setting) must not change what ZeRO-3 computes."
    runs = {}
    for leaf in (False, True):
        d = tmp_path / f"leaf{int(leaf)}"
        rc = launch("random-sft", "zero3", gpus=2, device="cpu", overrides={**TINY, "zero3_leaf": leaf}, run_dir=str(d), stream=False)
        assert rc == 0, _log(d)
        runs[leaf] = read_run(d)
    assert [runs[leaf]["result"]["extra"]["zero3_leaf_modules"] for leaf in (False, True)] == [0, 2]  # both decoder layers marked
    got, want = loss_curve(runs[True]), loss_curve(runs[False])
    assert len(got) == TINY["steps"] and got == pytest.approx(want, rel=REL), (got, want)
    assert got[-1] < got[0], got

def test_zero3_leaf_needs_zero3():
    from llm_methods.random_sft import RandomSFTConfig, run_random_sft
    with pytest.raises(ValueError, match="needs a ZeRO-3"):
        run_random_sft(RandomSFTConfig(**{**TINY, "steps": 2}, zero3_leaf=True, device="cpu"))

def test_warm_caches_builds_ppo_start_points(monkeypatch):
    "The launcher must still build the SFT and reward models before the ranks start (else both ranks build them inside one process group and deadlock)."
    import llm_methods.distributed as D, llm_methods.sft as sft
    built = []
    monkeypatch.setattr(sft, "sft_path", lambda *a, **k: built.append("sft"))  # warm_sft lives beside it, in sft
    import llm_methods.rlhf.ppo as ppo
    monkeypatch.setattr(ppo, "tiny_reward", lambda *a, **k: built.append("reward"))
    D._warm_caches({"stage": "ppo", "config": {"steps": 2}})
    assert built == ["sft", "reward"], built
    built.clear(); D._warm_caches({"stage": "ppo", "config": {"model": "some/checkpoint", "reward_model": "some/rm"}})
    assert built == [], built  # the user's own models: nothing to build

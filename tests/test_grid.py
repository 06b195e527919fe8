"""The experiment design (repro.design): protocol arms, caption counts, seeds."""

import json

import pytest

from conftest import call_main, few_perturbations
from repro.config import MINI_STEPS, make_config
from repro.core.errors import ReproError
from repro.data import emoji
from repro import design


def test_caption_counts_match_the_asset():
    e = emoji.load_emoji()
    for option, n in design.CAPTION_COUNTS.items():
        assert len(e.english_captions("train", option)[0]) == n, option
    assert design.CHOSEN_CAPTIONS == make_config("mini").train_captions
    assert design.CHOSEN_CAPTIONS not in design.NOISE_CAPTIONS
    # every caption option trains for about the same number of optimizer steps
    for option, n in design.CAPTION_COUNTS.items():
        steps = design.caption_epochs(option) * (n // 128)
        assert abs(steps - MINI_STEPS) <= n // 128, option


def test_protocol_arms_reach_v1_by_config_keys_only():
    base = make_config("mini")
    v1 = make_config("mini", design.protocol_arm("M3", "v1").overrides(base.epochs))
    assert (v1.train_captions, v1.mask_same_text, v1.emoji_split) == (
        "names+keywords", False, "random")
    assert v1.lambda_tt == 1 and v1.lr == 1e-3 and v1.head_hidden == 512
    assert v1.epochs == round(base.epochs * design.caption_epochs("names+keywords")
                              / design.caption_epochs(design.CHOSEN_CAPTIONS))
    wide = make_config("mini", design.protocol_arm("PATR", "v2, head 1024").overrides(base.epochs))
    assert wide.head_hidden == 1024 and wide.lambda_tt == 0 and wide.mask_same_text
    # a shorter default length scales the protocol runs with it (tests, smoke runs)
    other = design.NOISE_CAPTIONS[0]
    short = make_config("mini", design.protocol_arm("PATR", f"v2, {other}").overrides(2))
    assert short.epochs == max(1, round(2 * design.caption_epochs(other)
                                        / design.caption_epochs(design.CHOSEN_CAPTIONS)))
    # the v2 row of Table 2d is the main grid's own PATR and M3 (not trained twice)
    assert design.protocol_arm("PATR", "v2") == design.matched_pair(design.PROTOCOL_LR)[0]
    # every protocol row is a matched pair: PATR and M3 differ in lambda only
    for p in design.PROTOCOLS:
        a, b = (json.loads(make_config("mini", design.protocol_arm(x, p).overrides(30)).to_json())
                for x in ("PATR", "M3"))
        assert {k for k in a if a[k] != b[k]} == {"lambda_tt"}, p
    assert {a.protocol for a in design.grid_arms() if a.kind == "protocol"} == set(design.PROTOCOLS) - {"v2"}


def test_every_arm_is_one_typed_record_with_a_unique_label():
    """Every grid arm is an Arm whose label names it once; its kind follows its fields, and a
    derived arm's config is its base's plus its own overrides."""
    arms = design.grid_arms()
    assert all(isinstance(a, design.Arm) for a in arms)
    assert len({a.name for a in arms}) == len(arms)
    kinds = [a.kind for a in arms]
    assert kinds.count("curve") == len(design.MATCHED_LRS) * len(design.CURVE_LAMBDAS)
    assert kinds.count("long") == 2 * len(design.MATCHED_LRS) and kinds.count("raw") == 2
    for arm in arms:
        cfg = make_config("mini", arm.overrides(30))
        if arm.base is not None:
            base = make_config("mini", arm.base.overrides(30))
            changed = {k for k, v in vars(cfg).items() if v != getattr(base, k)}
            own = {o.split("=")[0] for o in arm.defines} | ({"epochs"} if arm.epochs(30) else set())
            assert changed <= own, arm.name
    with pytest.raises(ReproError, match="unknown arm 'Triplet'"):
        design.arm_named("Triplet")


def test_a_tower_plan_picks_its_arms_and_settings():
    e5 = {a.name: make_config("mini", design.run_overrides("e5", a, 30)) for a in design.tower_arms("e5")}
    assert list(e5) == ["PATR", "M3", "PATR raw features", "M3 raw features"]
    assert e5["M3"].text_preprocess == "center_en" and e5["M3 raw features"].text_preprocess == "none"
    assert e5["M3 raw features"].lr == e5["M3"].lr  # the arm's settings otherwise
    muse = design.tower_arms("muse")
    assert not any(a.raw_features for a in muse) and len(muse) == len(design.grid_arms()) - 2


def test_each_arms_chosen_learning_rate_has_its_matched_pair():
    for arm in ("PATR", "M3"):
        assert make_config("mini", design.ARMS[arm].overrides()).lr in design.MATCHED_LRS, arm


def test_the_ablation_changes_one_thing():
    """PATR and M3 of a matched pair differ in lambda only; every point of a lambda curve is
    the paper's M3 (mu_t 0.5) at that lambda and learning rate."""
    for lr in design.MATCHED_LRS:
        patr, m3 = (json.loads(make_config("mini", a.overrides(30)).to_json())
                    for a in design.matched_pair(lr))
        assert {k for k in patr if patr[k] != m3[k]} == {"lambda_tt"}
        assert (patr["lambda_tt"], m3["lambda_tt"], m3["lr"]) == (0, 1, lr)
    curve = [a for a in design.grid_arms() if a.kind == "curve"]
    assert len(curve) == len(design.MATCHED_LRS) * len(design.CURVE_LAMBDAS)
    for arm in curve:
        cfg = make_config("mini", arm.overrides(30))
        assert (cfg.lambda_tt, cfg.lr, cfg.margin_tt) == (arm.lam, arm.lr, 0.5), arm.name
        every = arm.lam in (0, 1) or (arm.lam, arm.lr) in design.NOISE_M3_SETTINGS
        assert arm.seeds_of(design.SEEDS) == (design.SEEDS if every else design.FIRST_SEEDS)
    # the endpoints' arms run on all 20 seeds, the other main arms on the first five
    assert len(design.SEEDS) == 20 and design.BASE_SEEDS == design.SEEDS[:5]
    assert [a.name for a in design.ARMS.values() if a.seeds is None] == ["PATR", "M3"]
    longs = [a for a in design.grid_arms() if a.kind == "long"]
    assert {a.continues for a in longs} == {a for lr in design.MATCHED_LRS for a in design.matched_pair(lr)}
    assert all(make_config("mini", a.overrides(30)).epochs == 60 for a in longs)


@pytest.mark.parametrize("argv, words", [
    (["train", "--seed", "-1", "--out", "x"], "seed=-1"),
    (["reproduce", "--seeds", "-1", "--out", "x", "--runs", "y"], "seed=-1"),
])
def test_negative_seeds_are_one_line_errors(tmp_path, monkeypatch, capsys, argv, words):
    from repro import cli

    monkeypatch.chdir(tmp_path)
    out = call_main(cli.main, argv, capsys)
    lines = [l for l in out.stderr.strip().splitlines() if not l.startswith("train: ")]
    assert out.returncode == 2 and len(lines) == 1 and words in lines[0], out.stderr
    assert not any(tmp_path.iterdir())  # nothing written


def test_seed_check_in_config():
    with pytest.raises(ReproError, match="between 0 and 2\\*\\*32 - 1"):
        make_config("mini", seed=2**32)


#: A reduced grid: two short arms of one seed on the mUSE tower, and the matched PATR at the
#: learning rate of the PATR arm (the same config: trained once).
SAME_AS_PATR = design.curve_arm(0.0, make_config("mini", design.ARMS["PATR"].overrides()).lr)
REDUCED = dict(seeds=(0,), arms=("PATR", "M3", SAME_AS_PATR), towers=("muse",),
               sets=("epochs=1", "batch_size=256"), log=lambda *_: None)


@pytest.fixture(scope="module")
def reduced_grids(tmp_path_factory, mini_features):
    """The reduced grid trained in this process (--jobs 1), in two single-threaded worker
    processes (--jobs 2) and on a Dask LocalCluster of two single-threaded workers, with the
    tables of each (Table 5 with 3 of its 9 perturbations)."""
    from repro.experiments.reproduce import run_grid
    from repro.report.outputs import write_all

    root = tmp_path_factory.mktemp("reduced")
    grids = {f"jobs{j}": run_grid("mini", root / f"jobs{j}", jobs=j, **REDUCED) for j in (1, 2)}
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster:
        address = cluster.scheduler_address.removeprefix("tcp://")
        grids["dask"] = run_grid("mini", root / "dask", executor=f"dask://{address}", **REDUCED)
    with pytest.MonkeyPatch.context() as mp:
        few_perturbations(mp)
        files = {how: write_all(g, root / f"tables-{how}") for how, g in grids.items()}
    return root, grids, files


@pytest.mark.parametrize("how", ["jobs2", "dask"])
def test_runs_are_the_bits_of_jobs_1(reduced_grids, how):
    """metrics.json and the best model of every run byte for byte, and every table and
    figure written from them."""
    root, grids, files = reduced_grids
    assert grids[how].plan["workers"] == {"jobs2": "processes", "dask": "dask"}[how]
    assert grids["jobs1"].plan["workers"] == "inline"
    for arm in ("PATR", "M3"):
        a, b = (grids[h].run_dir("muse", arm, 0) for h in ("jobs1", how))
        assert a != b
        assert (a / "metrics.json").read_bytes() == (b / "metrics.json").read_bytes(), arm
        assert (a / "best_model.pt").read_bytes() == (b / "best_model.pt").read_bytes(), arm
    assert files["jobs1"] == files[how] and "table2_ablation.md" in files["jobs1"]
    for name in files["jobs1"]:
        assert ((root / "tables-jobs1" / name).read_bytes()
                == (root / f"tables-{how}" / name).read_bytes()), name


def test_a_config_that_two_arms_share_trains_once(reduced_grids):
    _, grids, _ = reduced_grids
    g = grids["jobs1"]
    assert g.same_as == {g.key("muse", SAME_AS_PATR, 0): g.key("muse", "PATR", 0)}
    assert g.run_dir("muse", SAME_AS_PATR, 0) == g.run_dir("muse", "PATR", 0)
    assert not any(SAME_AS_PATR.name in s["step"] for s in g.steps)


def test_runs_compute_on_one_thread(reduced_grids):
    _, grids, _ = reduced_grids
    for how, g in grids.items():
        assert {m.numerics["torch_threads"] for m in g.results.values()} == {1}, how


def test_reduced_grid_tables_have_their_content(reduced_grids):
    root, _, files = reduced_grids
    assert "table5_towers_muse.csv" in files["jobs1"] and "figure5_towers.png" in files["jobs1"]
    md = (root / "tables-jobs1" / "table5_towers_muse.md").read_text()
    assert "| mUSE (real) | real | no |" in md and "| perturbed mUSE | rotation α=1 | yes |" in md
    assert "Table 5" in (root / "tables-jobs1" / "findings.md").read_text()


def test_the_results_index_holds_the_findings_every_table_and_figure(reduced_grids, tmp_path):
    from repro.report import outputs

    root, grids, files = reduced_grids
    out = root / "tables-jobs1"
    index = (out / "README.md").read_text()
    assert "README.md" in files["jobs1"]
    assert (out / "findings.md").read_text().strip() in index
    for name in files["jobs1"]:
        if name.endswith(".csv"):  # every table, by its own title line
            assert (out / name).with_suffix(".md").read_text().splitlines()[0] in index, name
        if name.endswith(".png"):
            assert f"![{name}]({name})" in index, name
    # the top-level README gets the answers and the figures registered for it (when drawn),
    # between its markers, with paths relative to it; the rest stays
    answers = (out / "findings.md").read_text().split("\n\n")[0]
    shown = [o for o in outputs.OUTPUTS if o.readme]
    assert [o.name for o in shown] == ["Figure 6"]
    tables = tmp_path / "paper_tables"
    tables.mkdir()
    (tables / "findings.md").write_text((out / "findings.md").read_text())
    readme = tmp_path / "README.md"
    for drawn in (False, True):
        if drawn:
            (tables / shown[0].readme).write_bytes(b"png")
        readme.write_text("intro\n<!-- answers:start -->\nold\n<!-- answers:end -->\noutro\n")
        assert outputs.update_readme(tables, readme)
        figure = f"\n\n![{shown[0].title}](paper_tables/{shown[0].readme})" if drawn else ""
        assert readme.read_text() == (f"intro\n<!-- answers:start -->\n{answers}{figure}\n"
                                      "<!-- answers:end -->\noutro\n")


def test_bad_jobs_and_executor_are_one_line_errors(tmp_path):
    from repro.experiments.reproduce import run_grid

    with pytest.raises(ReproError, match="--jobs 0"):
        run_grid("mini", tmp_path / "x", seeds=(0,), arms=("PATR",), jobs=0)
    with pytest.raises(ReproError, match="--executor ray://h:1"):
        run_grid("mini", tmp_path / "x", seeds=(0,), arms=("PATR",), executor="ray://h:1")


def test_a_dask_worker_running_two_tasks_at_once_is_refused(tmp_path):
    """Thread counts and deterministic mode are per process: a worker with --nthreads 2 would
    run two training runs in one process. The job says so in one line."""
    distributed = pytest.importorskip("distributed")
    from repro.training.runjob import train_job

    cfg = make_config("mini", ["epochs=1"])
    with distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=True,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        future = client.submit(train_job, cfg, tmp_path / "run", None, {})
        with pytest.raises(ReproError, match="runs 2 tasks at once in one process; start the "
                                             "workers with --nthreads 1"):
            future.result()
    assert not (tmp_path / "run").exists()

import contextlib
import io
import json
import os
import shutil
from pathlib import Path

import pytest



SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"


#: The order pytest-xdist hands test modules out in (``--dist loadscope
#: --no-loadscope-reorder``: a module's tests on one worker, its module fixtures built once;
#: about 10-100 s each on one core): first the longest module that needs the shared mini
#: features (its worker computes them when the store lacks them), then the modules that need
#: none (the other workers run them meanwhile, so none waits), then the other long ones,
#: longest first; the rest after.
MODULE_ORDER = ("test_grid", "test_feature_workers", "test_paper_fixture", "test_metrics",
                "test_compare", "test_parallel", "test_numerics", "test_controlled",
                "test_backbones", "test_data", "test_layers", "test_trainer", "test_device",
                "test_towerstudy", "test_checkpoints", "test_sweep", "test_cache_keys")


def pytest_configure(config):
    """Each test process computes on one thread, and so do the processes its tests start:
    pytest-xdist runs one test process per core."""
    from repro.core import parallel

    os.environ.update(parallel.SINGLE_THREAD_ENV)


def pytest_collection_modifyitems(items):
    rank = {name: i for i, name in enumerate(MODULE_ORDER)}
    items.sort(key=lambda item: rank.get(item.module.__name__.rpartition(".")[2],
                                         len(MODULE_ORDER)))


def shared_or_skip(name: str) -> Path:
    """A folder of ../shared/data; in CI (CI=true) its absence is a failure, not a skip."""
    path = SHARED / name
    if not path.is_dir():
        if os.environ.get("CI"):
            pytest.fail(f"{path} is missing in CI")
        pytest.skip(f"{path} not present")
    return path


@pytest.fixture
def xtd10_dir() -> Path:
    return shared_or_skip("xtd10")


@pytest.fixture
def cldr_dir() -> Path:
    return shared_or_skip("cldr41")


@pytest.fixture(scope="session")
def session_cache(tmp_path_factory) -> Path:
    """This test process's own feature cache (one per pytest-xdist worker)."""
    return tmp_path_factory.mktemp("xlir-cache")


def _test_run_root(config) -> Path:
    """The folder all processes of this test run share: pytest-xdist gives each worker a
    base folder of its own inside it."""
    base = config._tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


def _feature_store(config) -> Path:
    """Where the default mini task's features persist between test runs on this machine:
    ``$XLIR_TEST_STORE``, else ``$XDG_CACHE_HOME/xlir-repro-tests`` (``~/.cache/...``); never
    the user's own cache. ``XLIR_TEST_STORE=run``: a folder of this test run (cold each time)."""
    chosen = os.environ.get("XLIR_TEST_STORE", "")
    if chosen == "run":
        return _test_run_root(config) / "xlir-shared-cache"
    if chosen:
        return Path(chosen)
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "xlir-repro-tests"


def build_shared_features(store: Path) -> None:
    """The default mini task's features in ``store``, in this process (one thread): each set
    read when its cache key matches (the feature cache's own check), computed when not. A
    file lock makes the first caller build and the others wait; one process, not a pool,
    since the other test processes run the modules that need no features meanwhile."""
    from filelock import FileLock

    from repro.config import make_config
    from repro.training.tasks import build_task

    store.mkdir(parents=True, exist_ok=True)
    with FileLock(str(store) + ".lock"):
        with pytest.MonkeyPatch.context() as mp, contextlib.redirect_stdout(io.StringIO()):
            mp.setenv("XLIR_CACHE", str(store))
            build_task(make_config("mini"), with_xtd10=False)


def _link_or_copy(src: Path, dst: Path) -> None:
    try:
        os.link(src, dst)  # read only: every cache write is a new file renamed into place
    except OSError:  # another file system
        shutil.copyfile(src, dst)


@pytest.fixture(scope="session")
def mini_features(session_cache, request) -> Path:
    """The default mini task's features (EfficientNet-Lite0 over every emoji image, every
    mUSE text set but XTD10's) from the store of :func:`_feature_store`, computed there by
    the first test process that finds them missing while the others wait (the module order
    of :data:`MODULE_ORDER` gives them other work first; about 125 s on one core, once per
    machine), then linked into each test process's own cache (whose later writes stay its
    own)."""
    store = _feature_store(request.config)
    build_shared_features(store)
    mine = session_cache / "features"
    mine.mkdir(exist_ok=True)
    for src in (store / "features").iterdir():
        dst = mine / src.name
        if src.name.startswith(("image-", "text-")) and not dst.exists():
            _link_or_copy(src, dst)
    return session_cache


@pytest.fixture(scope="session", autouse=True)
def _session_cache_env(session_cache):
    """Module- and session-scoped fixtures (built before any function-scoped one) use the
    test cache too, never the user's, and read no XTD10 folder of the user's environment (a
    test that needs XTD10 asks for :func:`xtd10_dir`)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("XLIR_CACHE", str(session_cache))
        mp.delenv("XLIR_XTD10_DIR", raising=False)
        yield


@pytest.fixture(autouse=True)
def _isolated_cache(session_cache, monkeypatch):
    """No test reads or writes the user's cache (tests share one, so tower features are
    computed once per session); no test reads the user's XTD10 setting."""
    monkeypatch.setenv("XLIR_CACHE", str(session_cache))
    monkeypatch.delenv("XLIR_XTD10_DIR", raising=False)


def call_main(main, argv: list[str], capsys):
    """A CLI's ``main(argv)`` in this test process (its imports already loaded), as
    (exit code, stdout, stderr) in a CompletedProcess; argparse's exits are exit codes, and
    the process computes on one thread again after (a command may set its own count)."""
    import subprocess

    from repro.core import parallel

    capsys.readouterr()
    try:
        code = main(argv)
    except SystemExit as exc:
        code = exc.code
    finally:
        parallel.limit_threads(1)
    out = capsys.readouterr()
    return subprocess.CompletedProcess(argv, code, out.out, out.err)


#: A process that holds a folder's writer lock (the package's own) until it is killed: it
#: prints "held" once it has it.
_HOLDER = ("import sys, time; from repro.core.locks import folder_writer\n"
           "with folder_writer(sys.argv[1]):\n"
           "    print('held', flush=True); time.sleep(600)")


def hold_folder_lock(folder: Path):
    """A real second process (``subprocess.Popen``) holding ``folder``'s writer lock; returned
    once it holds it. The caller kills it (``proc.kill()``, as a crash would end it)."""
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[1]
    env = dict(os.environ, PYTHONPATH=str(root))
    proc = subprocess.Popen([sys.executable, "-c", _HOLDER, str(folder)], cwd=root, env=env,
                            stdout=subprocess.PIPE, text=True)
    if proc.stdout.readline().strip() != "held":
        proc.kill()
        pytest.fail(f"the lock holder did not take {folder}")
    return proc


def few_perturbations(mp: pytest.MonkeyPatch) -> None:
    """Table 5 with 3 of its 9 perturbations (offsets 0.5 and 4, rotation 1): the same code
    at a third of the evaluation."""
    from repro.report import analysis

    mp.setattr(analysis, "BETAS", (0.5, 4.0))
    mp.setattr(analysis, "ALPHAS", (1.0,))


@pytest.fixture(scope="session")
def tiny_bert(tmp_path_factory):
    """A random 2-layer BertModel and a WordPiece tokenizer trained here, saved as a folder."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers
    from transformers import BertConfig, BertModel, BertTokenizerFast

    d = tmp_path_factory.mktemp("tiny-bert")
    corpus = ["a red apple", "a green tree", "eine rote katze", "un chien noir",
              "grinning face", "smiling cat", "rote rose", "chat noir"] * 20
    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.train_from_iterator(corpus, trainers.WordPieceTrainer(
        vocab_size=200, special_tokens=["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]))
    fast = BertTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]",
                             cls_token="[CLS]", sep_token="[SEP]", mask_token="[MASK]")
    fast.save_pretrained(d)
    import torch

    torch.manual_seed(0)
    BertModel(BertConfig(vocab_size=fast.vocab_size, hidden_size=32, num_hidden_layers=2,
                         num_attention_heads=2, intermediate_size=37)).save_pretrained(d)
    return d


def make_coco(root: Path, image_ids_by_split: dict, captions_per_image: int = 2) -> None:
    """A tiny COCO-2014-format folder: JPEGs and captions JSON files."""
    from PIL import Image

    (root / "annotations").mkdir(parents=True)
    ann_id = 0
    for split, ids in image_ids_by_split.items():
        (root / split).mkdir()
        images, anns = [], []
        for i in ids:
            name = f"COCO_{split}_{i:012d}.jpg"
            Image.new("RGB", (8, 8), (i % 255, 10, 20)).save(root / split / name)
            images.append({"id": i, "file_name": name})
            for k in range(captions_per_image):
                anns.append({"id": ann_id, "image_id": i, "caption": f" image {i}  caption {k} "})
                ann_id += 1
        (root / "annotations" / f"captions_{split}.json").write_text(
            json.dumps({"images": images, "annotations": anns}))


@pytest.fixture(scope="module")
def mini_task(mini_features):
    """The default mini task (muse tower, no XTD10), from the shared features."""
    from repro.config import make_config
    from repro.training.tasks import build_task

    return build_task(make_config("mini"), with_xtd10=False)


@pytest.fixture(scope="module")
def keyword_task(mini_features):
    """The mini task on the names+keywords captions (texts that repeat across emoji; the
    trainer digest's task), no XTD10."""
    from repro.config import make_config
    from repro.experiments.sweep import DIGEST_TASK
    from repro.training.tasks import build_task

    return build_task(make_config("mini", DIGEST_TASK), with_xtd10=False)


@pytest.fixture(scope="session")
def app_run(mini_features, tmp_path_factory) -> Path:
    """A finished 2-epoch run of the default config (M3 at its defaults) for the app's tests
    (search, tag, the API, the page): trained once per test process from the shared features."""
    from repro.config import make_config
    from repro.training.tasks import build_task
    from repro.training.trainer import train_and_evaluate

    cfg = make_config("mini", ["epochs=2", "batch_size=256"], seed=0)
    out = tmp_path_factory.mktemp("app-run") / "run"
    with contextlib.redirect_stdout(io.StringIO()):
        train_and_evaluate(cfg, out, task=build_task(make_config("mini"), with_xtd10=False))
    return out

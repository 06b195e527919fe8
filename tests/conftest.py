import json
import os
from pathlib import Path

import pytest



SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"


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
    return tmp_path_factory.mktemp("xlir-cache")


@pytest.fixture(scope="session", autouse=True)
def _session_cache_env(session_cache):
    """Module- and session-scoped fixtures (built before any function-scoped one) use the
    test cache too, never the user's."""
    old = os.environ.get("XLIR_CACHE")
    os.environ["XLIR_CACHE"] = str(session_cache)
    yield
    if old is None:
        os.environ.pop("XLIR_CACHE", None)
    else:
        os.environ["XLIR_CACHE"] = old


@pytest.fixture(autouse=True)
def _isolated_cache(session_cache, monkeypatch):
    """No test reads or writes the user's cache (tests share one, so tower features are
    computed once per session); no test reads the user's XTD10 setting."""
    monkeypatch.setenv("XLIR_CACHE", str(session_cache))
    monkeypatch.delenv("XLIR_XTD10_DIR", raising=False)


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

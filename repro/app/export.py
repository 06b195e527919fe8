"""A trained model a user can pick up: a finished run folder, or the folder
``python -m repro export`` writes from one (the two heads as safetensors plus ``model.json``:
the arm (M3, PATR, ...), config, the heads' sha256, tower and backbone ids with their weight hashes, the
training-data checksum, the metrics summary; then, last, ``digests.json``: the sha256 of both
files). Every file is read only as the bytes its folder's ``digests.json`` records, and
loading an export checks that the installed tower and backbone are the ones it was trained on.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch

from repro.config import Config, config_from_json
from repro.core.errors import ReproError, reason
from repro.core.fileio import (DIGESTS_FILE, atomic_write_bytes, existing_folder, forget_digests,
                               sha256_bytes, verified_bytes, write_digests)
from repro.core.locks import LOCK_FILE, folder_writer
from repro.model.encoder import DualEncoder
from repro.towers.backbones import weights_id
from repro.training.results import RunResult
from repro.training.tasks import build_task, english_mean, tower_meta
from repro.training.trainer import load_best_model

HEADS = "heads.safetensors"
META = "model.json"
#: What ``model.json`` says it is (a loader refuses anything else). 2: ``heads_sha256`` and
#: ``digests.json``.
FORMAT = "xlir-repro model 2"
#: The keys of tower_meta that identify a tower's weights.
TOWER_ID_KEYS = ("weights", "weights_sha256", "source", "revision", "pooling", "prefix")


@dataclass(frozen=True)
class Loaded:
    """A model ready to embed: ``cfg`` (its training config), ``model`` (eval, CPU),
    ``text_mean`` ((1, text_dim) float32: the vector ``text_preprocess=center_en`` subtracts
    from every tower feature, else None), ``source`` (the folder it came from) and ``meta``
    (what ``model.json`` holds, or the same facts read from a run)."""

    cfg: Config
    model: DualEncoder
    text_mean: torch.Tensor | None
    source: Path
    meta: dict


def tower_id(cfg: Config) -> dict:
    """The installed text tower's identity: its name and weight hashes (no cache detail)."""
    meta = tower_meta(cfg)
    return {"tower": cfg.text_tower, **{k: meta[k] for k in TOWER_ID_KEYS if k in meta}}


def backbone_id(cfg: Config) -> dict:
    """The image backbone's identity: its name and its weights' id (file hash or URL)."""
    return {"backbone": cfg.image_backbone, "weights": weights_id(cfg.image_backbone,
                                                                  cfg.image_weights)}


def load_run(run: Path) -> Loaded:
    """The best-validation model of a finished run folder (``config.json``, ``best_model.pt``
    and ``metrics.json``: written only when the run ended), each read only as the bytes its
    ``digests.json`` records."""
    run = existing_folder(run, "--run")
    missing = [n for n in ("config.json", "best_model.pt", "metrics.json", DIGESTS_FILE)
               if not (run / n).is_file()]
    if missing:
        raise ReproError(f"--run {run}: not a finished run (no {missing[0]}); train it to the "
                         "end first (the command that made it finishes it)")
    config, result = verified_bytes(run, "config.json"), verified_bytes(run, "metrics.json")
    cfg = _read(run / "config.json", lambda p: config_from_json(config.decode("utf-8")))
    metrics = _read(run / "metrics.json", lambda p: RunResult.read_bytes(result, p))
    state = load_best_model(run)
    model = _model(cfg, state, f"--run {run}")
    meta = {"arm": cfg.arm,  # "M3" or "PATR": the config's loss key is "patr" for both
            "config": json.loads(cfg.to_json()), "text_tower": tower_id(cfg),
            "image_backbone": backbone_id(cfg), "data_sha256": metrics.data_sha256,
            "summary": metrics.summary}
    return Loaded(cfg, model, _text_mean(cfg), run, meta)


def _read(path: Path, read):
    """``read(path)``, or a one-line error naming the file and why it cannot be read (JSON,
    config and unpickling errors come in many types)."""
    try:
        return read(path)
    except ReproError as exc:  # a reader's own message, which may name the file already
        raise ReproError(f"{path}: {str(exc).removeprefix(f'{path}: ')}") from None
    except Exception as exc:
        raise ReproError(f"{path}: unreadable ({reason(exc)})") from None


def _model(cfg: Config, state: dict, where: str) -> DualEncoder:
    """A DualEncoder of ``cfg`` with ``state`` (dimensions read from the state), eval, CPU."""
    try:
        image_dim = state["image_head.0.weight"].shape[1]
        text_dim = (state["text_head.0.weight"].shape[1] if cfg.text_head != "none"
                    else state["image_head.2.weight"].shape[0])
        model = DualEncoder(cfg, text_dim, image_dim)
        model.load_state_dict(state)
    except (KeyError, RuntimeError, IndexError) as exc:
        raise ReproError(f"{where}: the saved heads do not fit the config ({exc})") from None
    return model.eval()


def _text_mean(cfg: Config) -> torch.Tensor | None:
    """center_en's vector: the mean tower feature of the English training captions (read
    through the feature cache; None when the config does not centre)."""
    if cfg.text_preprocess != "center_en":
        return None
    return english_mean(build_task(_uncentred(cfg), with_xtd10=False))


def _uncentred(cfg: Config) -> Config:
    return config_from_json(json.dumps({**json.loads(cfg.to_json()), "text_preprocess": "none"}))


#: The files of an export folder (and its lock while it is written).
EXPORT_FILES = (HEADS, META, DIGESTS_FILE, LOCK_FILE)


def export(loaded: Loaded, out: Path) -> Path:
    """Write ``loaded``'s heads (and center_en's vector) to ``out/heads.safetensors``, its
    facts and the heads' sha256 to ``out/model.json``, then the sha256 of both to
    ``out/digests.json``, holding ``out``'s lock; refuses an ``out`` that holds anything else."""
    from safetensors.torch import save

    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ReproError(f"--out {out}: exists and is not an export folder; choose a new one")
    tensors = {k: v.detach().cpu().contiguous() for k, v in loaded.model.state_dict().items()}
    if loaded.text_mean is not None:
        tensors["text_mean"] = loaded.text_mean.contiguous()
    with folder_writer(out, "--out"):
        if any(p.name not in EXPORT_FILES for p in out.iterdir()):
            raise ReproError(f"--out {out}: exists and is not an export folder; choose a new one")
        forget_digests(out)
        heads = save(tensors)
        atomic_write_bytes(out / HEADS, heads)
        meta = {**loaded.meta, "format": FORMAT, "heads_sha256": sha256_bytes(heads)}
        atomic_write_bytes(out / META, (json.dumps(meta, indent=1, sort_keys=True,
                                                   ensure_ascii=False) + "\n").encode())
        write_digests(out, (HEADS, META))
    return out


def load_export(folder: Path) -> Loaded:
    """The model of an export folder, its files read only as the bytes its ``digests.json``
    records; a one-line error naming the file that changed, or when the installed tower or
    backbone weights are not the ones it was trained on."""
    from safetensors.torch import load

    folder = existing_folder(folder, "--model")
    if not (folder / META).is_file() or not (folder / HEADS).is_file():
        raise ReproError(f"--model {folder}: not an exported model (needs {META} and {HEADS})")
    if not (folder / DIGESTS_FILE).is_file():
        raise ReproError(f"--model {folder}: no {DIGESTS_FILE} (exported by an older version, "
                         "or the export did not end); export the run again")
    meta_bytes, heads = verified_bytes(folder, META), verified_bytes(folder, HEADS)
    meta = _read(folder / META, lambda p: json.loads(meta_bytes.decode("utf-8")))
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ReproError(f"--model {folder}: {META} is not a {FORMAT!r} file")
    cfg = _read(folder / META, lambda p: config_from_json(json.dumps(meta.get("config"))))
    tensors = _read(folder / HEADS, lambda p: load(heads))
    if meta.get("heads_sha256") != sha256_bytes(heads):
        raise ReproError(f"{folder / META}: describes other heads (its heads_sha256 is not the "
                         f"sha256 of {HEADS})")
    for key, now in (("text_tower", tower_id(cfg)), ("image_backbone", backbone_id(cfg))):
        if meta.get(key) != now:
            raise ReproError(f"--model {folder}: the installed {key.replace('_', ' ')} differs "
                             f"from the one it was trained on ({meta.get(key)} vs {now})")
    text_mean = tensors.pop("text_mean", None)
    return Loaded(cfg, _model(cfg, tensors, f"--model {folder}"), text_mean, folder, meta)

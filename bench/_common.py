"""Helpers shared by the benchmark scripts (not part of the `bot` package)."""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
OUT_DIR = BENCH_DIR / "out"
SHARED = REPO.parent / "shared" / "bench"

if str(REPO) not in sys.path:  # run as `python bench/x.py` from a checkout
    sys.path.insert(0, str(REPO))

# Files ONNXMiniLM_L6_V2._download_model_if_not_exists() checks before it would download.
_STOCK_FILES = (
    "config.json",
    "model.onnx",
    "special_tokens_map.json",
    "tokenizer_config.json",
    "tokenizer.json",
    "vocab.txt",
)


def stock_chroma_onnx(folder: Path) -> Any:
    """Chroma's stock `ONNXMiniLM_L6_V2` wired to the bundled int8 model, fully offline.

    The stock function downloads its own (fp32) model into DOWNLOAD_PATH/onnx unless all of
    `_STOCK_FILES` exist there. We put the bundled int8 `model.onnx` and `tokenizer.json` in that
    folder (symlinks) plus the small side files (vocab.txt written from tokenizer.json; the JSON
    configs are descriptive only: the stock code never reads them), and point the instance's
    DOWNLOAD_PATH at it. The stock code path (tokenise, pad every text to 256, mean-pool, normalise,
    batches of 32 in input order) then runs unchanged on the same weights as ours.
    """
    from chromadb.utils.embedding_functions.onnx_mini_lm_l6_v2 import ONNXMiniLM_L6_V2

    from bot.index.embeddings import local_model_files

    model, tokenizer = local_model_files()
    onnx_dir = folder / ONNXMiniLM_L6_V2.EXTRACTED_FOLDER_NAME
    onnx_dir.mkdir(parents=True, exist_ok=True)
    for src, name in ((model, "model.onnx"), (tokenizer, "tokenizer.json")):
        target = onnx_dir / name
        if not target.exists():
            try:
                target.symlink_to(src)
            except OSError:
                shutil.copyfile(src, target)
    tok = json.loads(tokenizer.read_text(encoding="utf-8"))
    vocab = tok["model"]["vocab"]
    side = {
        "vocab.txt": "\n".join(sorted(vocab, key=vocab.__getitem__)) + "\n",
        "config.json": json.dumps(
            {
                "model_type": "bert",
                "hidden_size": 384,
                "num_hidden_layers": 6,
                "max_position_embeddings": 512,
                "note": "placeholder for offline benchmark",
            }
        ),
        "special_tokens_map.json": json.dumps(
            {
                "cls_token": "[CLS]",
                "sep_token": "[SEP]",
                "pad_token": "[PAD]",
                "unk_token": "[UNK]",
                "mask_token": "[MASK]",
            }
        ),
        "tokenizer_config.json": json.dumps({"do_lower_case": True, "model_max_length": 512}),
    }
    for name, text in side.items():
        path = onnx_dir / name
        if not path.exists():
            path.write_text(text, encoding="utf-8")
    missing = [f for f in _STOCK_FILES if not (onnx_dir / f).exists()]
    assert not missing, missing
    ef = ONNXMiniLM_L6_V2(preferred_providers=["CPUExecutionProvider"])
    ef.DOWNLOAD_PATH = folder  # instance attribute shadows the class default (~/.cache/chroma)
    return ef


def peak_rss_mb() -> float:
    """High-water mark of this process's resident set, in MB (Linux reports KiB)."""
    kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return kib / 1024 if sys.platform != "darwin" else kib / 1024 / 1024


def du_bytes(path: Path) -> int:
    """Disk usage of a folder like `du -sb`, falling back to summing file sizes."""
    try:
        out = subprocess.run(["du", "-sb", str(path)], capture_output=True, text=True, check=True)
        return int(out.stdout.split()[0])
    except (OSError, subprocess.CalledProcessError, ValueError):
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


@contextmanager
def timer() -> Iterator[dict[str, float]]:
    box: dict[str, float] = {}
    start = time.perf_counter()
    try:
        yield box
    finally:
        box["seconds"] = time.perf_counter() - start


def cpu_info() -> dict[str, Any]:
    info: dict[str, Any] = {"cpus": os.cpu_count(), "python": sys.version.split()[0]}
    try:
        import onnxruntime

        info["onnxruntime"] = onnxruntime.__version__
    except ImportError:
        pass
    try:
        import chromadb

        info["chromadb"] = chromadb.__version__
    except ImportError:
        pass
    return info


def load_results(out_file: Path) -> dict[str, Any]:
    """The JSON a previous run wrote to `out_file` (parts not rerun are kept), with this machine."""
    results: dict[str, Any] = {}
    if out_file.exists():
        try:
            results = json.loads(out_file.read_text(encoding="utf-8"))
        except json.JSONDecodeError:
            results = {}
    results["machine"] = cpu_info()
    return results

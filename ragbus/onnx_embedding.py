"""ONNX Runtime encoder of the embedding model, exported locally (no download), at full precision or int8.

Full precision (RAGBUS_EMBED_BACKEND=onnx) gives torch's vectors (to about 1e-6), at less cost per call for short
texts: the query API's one-question encode. int8 (onnx-int8) quantizes the weights dynamically, per channel: other
vectors, so an index must be built and searched with it alone.

The export runs once per model and precision and is kept in RAGBUS_EMBED_ONNX_CACHE_DIR; writes are atomic
(temporary file, then rename), so an API and an embedder starting together never read a half-written file. Pooling and
normalization are the sentence-transformers ones of all-MiniLM-L6-v2: mean over the attention mask, then L2.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from ragbus.errors import ConfigError

INPUTS = ("input_ids", "attention_mask", "token_type_ids")


# The sentence-transformers modules the encoder below reproduces: the transformer, then mean pooling, then L2.
_REPRODUCED = ("Transformer", "Pooling", "Normalize")


def reproduces(model_path: Path) -> bool:
    """Whether this encoder computes `model_path`'s embeddings: a transformer, mean pooling, at most normalization.

    Models with CLS or max pooling, or a dense layer after pooling, get other vectors from it.
    """
    try:
        modules = json.loads((model_path / "modules.json").read_text())
        kinds = [str(module["type"]).rsplit(".", 1)[-1] for module in modules]
        pooling_path = next(m["path"] for m in modules if str(m["type"]).endswith("Pooling"))
        pooling = json.loads((model_path / pooling_path / "config.json").read_text())
        transformer = _json_or_empty(model_path / "sentence_bert_config.json")
        prompts = _json_or_empty(model_path / "config_sentence_transformers.json")
        in_root = modules[0].get("path", "") == ""  # the transformer's own files beside modules.json
    except (OSError, ValueError, KeyError, TypeError, IndexError, StopIteration, AttributeError):
        return False
    modes = {key for key, on in pooling.items() if key.startswith("pooling_mode") and on}
    return (
        kinds[:2] == ["Transformer", "Pooling"]
        and set(kinds) <= set(_REPRODUCED)
        and modes == {"pooling_mode_mean_tokens"}
        and in_root
        and not transformer.get("do_lower_case")  # sentence-transformers would lowercase before the tokenizer
        and not prompts.get("default_prompt_name")  # or prepend a prompt
    )


def _json_or_empty(path: Path) -> dict[str, Any]:
    return dict(json.loads(path.read_text())) if path.exists() else {}


def _export(model_path: Path, target: Path, *, int8: bool) -> None:
    import torch
    from transformers import AutoModel

    model = AutoModel.from_pretrained(str(model_path), local_files_only=True).eval()

    class LastHiddenState(torch.nn.Module):
        # The model as a submodule (its weights are parameters of the trace) called with keyword arguments.
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            out = self.model(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids)
            return out.last_hidden_state

    sample = torch.ones(2, 16, dtype=torch.long)
    axes = {name: {0: "batch", 1: "tokens"} for name in (*INPUTS, "last_hidden_state")}
    with tempfile.TemporaryDirectory(dir=target.parent) as work:
        fp32, quantized = Path(work) / "fp32.onnx", Path(work) / "int8.onnx"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice
            torch.onnx.export(
                LastHiddenState().eval(),
                (sample, sample, torch.zeros_like(sample)),
                str(fp32),
                input_names=list(INPUTS),
                output_names=["last_hidden_state"],
                dynamic_axes=axes,
                opset_version=17,
                dynamo=False,
            )
        if int8:
            from onnxruntime.quantization import QuantType, quantize_dynamic

            quantize_dynamic(str(fp32), str(quantized), weight_type=QuantType.QInt8, per_channel=True)
        os.replace(quantized if int8 else fp32, target)


def exported_model(model_path: Path, cache_dir: Path, *, int8: bool) -> Path:
    """Path of the ONNX export of `model_path` (int8 or full precision), exporting it first if needed."""
    weights = next(
        (p for p in (model_path / "model.safetensors", model_path / "pytorch_model.bin") if p.exists()), None
    )
    if weights is None:
        raise ConfigError(f"no weights under {model_path} to export to ONNX (RAGBUS_EMBED_BACKEND)")
    # Named by the weights' content: file times change when an image layer is pushed and pulled.
    with weights.open("rb") as stream:
        key = hashlib.file_digest(stream, "sha256").hexdigest()[:16]
    target = cache_dir / f"{model_path.name}-{key}-{'int8-per-channel' if int8 else 'fp32'}.onnx"
    if not target.exists():
        try:
            cache_dir.mkdir(parents=True, exist_ok=True)
            _export(model_path, target, int8=int8)
        except Exception as exc:  # the export runs torch's exporter over any model: say which step failed
            raise ConfigError(
                f"exporting {model_path.name} to ONNX in {cache_dir} (RAGBUS_EMBED_ONNX_CACHE_DIR) failed: {exc}"
            ) from exc
    return target


class OnnxEncoder:
    """Normalized embeddings from an ONNX export of the model (`int8` or not), with the model's own tokenizer."""

    def __init__(self, model_path: Path, max_seq_length: int, cache_dir: Path, *, int8: bool, threads: int = 0) -> None:
        if not reproduces(model_path):
            raise ConfigError(
                f"the ONNX backends compute mean-pooled embeddings, and {model_path.name} pools otherwise or adds "
                "layers after pooling: use RAGBUS_EMBED_BACKEND=torch"
            )
        try:
            import onnxruntime as ort
        except ImportError as exc:
            raise ConfigError(f"the ONNX backends need onnxruntime ({exc}): pip install onnxruntime onnx") from exc
        from tokenizers import Tokenizer

        try:
            self.tokenizer = Tokenizer.from_file(str(model_path / "tokenizer.json"))
            path = exported_model(model_path, cache_dir, int8=int8)
            options = ort.SessionOptions()
            options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
            options.intra_op_num_threads = threads  # 0: ONNX Runtime's default, one per core
            self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except ConfigError:
            raise
        except Exception as exc:  # no tokenizer.json, an unreadable cache, a damaged export
            raise ConfigError(f"the ONNX encoder of {model_path.name} could not be loaded: {exc}") from exc
        self.tokenizer.enable_truncation(max_length=max_seq_length)
        self.tokenizer.enable_padding()
        self.dim = int(self.session.get_outputs()[0].shape[-1])

    def encode(self, texts: list[str], batch_size: int) -> np.ndarray:
        """Unit-length float32 vectors of `texts`, in order (batches of similar length, like sentence-transformers)."""
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for start in range(0, len(order), batch_size):
            picked = order[start : start + batch_size]
            encodings = self.tokenizer.encode_batch([texts[i] for i in picked])
            feed = {
                "input_ids": np.array([e.ids for e in encodings], dtype=np.int64),
                "attention_mask": np.array([e.attention_mask for e in encodings], dtype=np.int64),
                "token_type_ids": np.array([e.type_ids for e in encodings], dtype=np.int64),
            }
            hidden = self.session.run(None, feed)[0]
            mask = feed["attention_mask"][..., None].astype(np.float32)
            pooled = (hidden * mask).sum(axis=1) / np.clip(mask.sum(axis=1), 1e-9, None)
            out[picked] = pooled / np.clip(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12, None)
        return out

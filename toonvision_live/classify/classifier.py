"""Inference stage: one onnxruntime session classifying every Cog crop of a frame in one batch.

The session prefers CUDA, then CPU, among the providers this onnxruntime build offers, and
reports the one actually in use (``session.get_providers()``): onnxruntime-gpu lists CUDA even
on a machine without a GPU and silently falls back to CPU there.  The model and its card are
checked against the contract (DESIGN.md "Model contract") before the first frame; any mismatch
is a :class:`ModelError` with one sentence.  Each Cog belongs to one suit, so a crop is labelled
with the Cog (and its suit) that both heads together find most likely (:func:`joint_labels`), and a
disagreement of the heads' own top picks is reported in ``CogPrediction.agree``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from toonvision_live.errors import ConfigError, ModelError
from toonvision_live.model_card import (
    CROP_HEIGHT,
    CROP_WIDTH,
    ENTITY_OUTPUT,
    INPUT_NAME,
    SUIT_OUTPUT,
    ModelCard,
    load_card,
)
from toonvision_live.taxonomy import COG_KEYS, COG_SUIT_INDEX, SUIT_CODES

log = logging.getLogger(__name__)

CUDA, CPU = "CUDAExecutionProvider", "CPUExecutionProvider"
DEFAULT_PROVIDERS: tuple[str, ...] = (CUDA, CPU)
#: short names accepted for --provider
GPU_PROVIDERS = frozenset({CUDA, "TensorrtExecutionProvider"})
PROVIDER_ALIASES = {"cuda": CUDA, "gpu": CUDA, "cpu": CPU, "tensorrt": "TensorrtExecutionProvider"}


@dataclass(frozen=True, slots=True)
class CogPrediction:
    """One crop's labels: the Cog and its own suit (never a Cog under another suit's name).

    ``suit_conf`` is the suit head's probability of that suit, ``cog_conf`` the Cog head's
    probability of that Cog and ``confidence`` their product.  ``agree``: the two heads' own top
    picks agree (the suit head's best suit is the best Cog's suit); when they do not, the label is
    the best consistent pair and ``agree`` is False, so the disagreement is shown, not hidden.
    The probability vectors are kept for smoothing over frames.
    """

    suit: str
    suit_conf: float
    cog: str
    cog_conf: float
    agree: bool
    confidence: float | None = None
    suit_probs: tuple[float, ...] | None = field(default=None, repr=False, compare=False)
    entity_probs: tuple[float, ...] | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.confidence is None:
            object.__setattr__(self, "confidence", float(self.cog_conf * self.suit_conf))


_COG_SUIT = np.asarray(COG_SUIT_INDEX)


def joint_labels(suit_probs: np.ndarray, entity_probs: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(Cog index [N], confidence [N], agree [N]) of [N, 4] suit and [N, 32] Cog probabilities (pure).

    The Cog is the one maximising P(Cog) * P(its suit): the most likely consistent pair if the heads
    are read as independent witnesses.  When both heads' top picks agree this is the Cog head's top
    pick; when they disagree it weighs one head against the other instead of pairing a Cog with a
    suit it does not belong to (which would also write a name no Cog has into saved datasets)."""
    joint = entity_probs * suit_probs[:, _COG_SUIT]
    e = joint.argmax(axis=1)
    agree = suit_probs.argmax(axis=1) == _COG_SUIT[entity_probs.argmax(axis=1)]
    return e, joint[np.arange(len(e)), e], agree


def predictions_from_probs(suit_probs: np.ndarray, entity_probs: np.ndarray) -> list[CogPrediction]:
    """CogPredictions from the two heads' [N, 4] and [N, 32] probabilities (pure)."""
    suit_probs = np.asarray(suit_probs, np.float64)
    entity_probs = np.asarray(entity_probs, np.float64)
    if suit_probs.ndim != 2 or suit_probs.shape[1] != len(SUIT_CODES) or entity_probs.ndim != 2 \
            or entity_probs.shape[1] != len(COG_KEYS) or len(suit_probs) != len(entity_probs):
        raise ValueError(f"expected [N, {len(SUIT_CODES)}] and [N, {len(COG_KEYS)}] probabilities, "
                         f"got {suit_probs.shape} and {entity_probs.shape}")
    out = []
    cogs, confidences, agrees = joint_labels(suit_probs, entity_probs)
    for i, (e, confidence, agree) in enumerate(zip(cogs.tolist(), confidences.tolist(), agrees.tolist(), strict=True)):
        s = COG_SUIT_INDEX[e]
        out.append(CogPrediction(
            suit=SUIT_CODES[s], suit_conf=float(suit_probs[i, s]),
            cog=COG_KEYS[e], cog_conf=float(entity_probs[i, e]),
            agree=bool(agree), confidence=float(confidence),
            suit_probs=tuple(float(v) for v in suit_probs[i]),
            entity_probs=tuple(float(v) for v in entity_probs[i]),
        ))
    return out


def cuda_driver_present() -> bool:
    """Whether the NVIDIA driver library loads (onnxruntime-gpu lists CUDA even without one)."""
    import ctypes

    for name in ("libcuda.so.1", "libcuda.so", "nvcuda.dll"):
        try:
            ctypes.CDLL(name)
            return True
        except OSError:
            continue
    return False


def providers_for(setting: str) -> list[str] | None:
    """The providers a ``--provider`` value asks for: None for "auto" (CUDA when present, else CPU)."""
    return None if setting == "auto" else [setting]


def resolve_providers(requested: Sequence[str] | None, available: Sequence[str],
                      gpu_present: bool = True) -> list[str]:
    """The requested providers (aliases like 'cpu' allowed) that this build offers, in order (pure).

    GPU providers are left out when ``gpu_present`` is False, unless they were asked for
    explicitly (then onnxruntime tries them and the session reports what it really uses).
    """
    wanted = [PROVIDER_ALIASES.get(p.lower(), p) for p in (requested or DEFAULT_PROVIDERS)]
    if requested is None and not gpu_present:
        wanted = [p for p in wanted if p not in GPU_PROVIDERS]
    chosen = [p for p in dict.fromkeys(wanted) if p in available]
    if not chosen:
        raise ConfigError(
            f"None of the execution providers {', '.join(wanted)} is available in this onnxruntime "
            f"(it offers {', '.join(available)}); pick one of those."
        )
    return chosen


def _dynamic(dim: object) -> bool:
    """A symbolic, unknown or negative dim: the batch size is free."""
    return not isinstance(dim, int) or dim < 1


class CogClassifier:
    """Classifies batches of 600x200 Cog crops with one onnxruntime session.

    ``providers``: onnxruntime provider names (or 'cuda'/'cpu') in preference order; default CUDA
    then CPU.  ``threads``: intra-op threads (default 1: the pipeline classifies a few crops a frame
    beside its own threads; a second onnxruntime thread cost ~70 % more CPU per batch of 8 for no
    shorter wall time on the 2-core CPU, tools/bench).
    """

    def __init__(self, model_path: Path, providers: Sequence[str] | None = None, *,
                 threads: int | None = None, spin: bool = False) -> None:
        import onnxruntime as ort

        self.model_path = Path(model_path)
        if not self.model_path.is_file():
            raise ModelError(
                f"The model file {self.model_path} is missing: train and export one, or pass --model PATH."
            )
        self.card: ModelCard = load_card(self.model_path)
        self._check_card()
        available = ort.get_available_providers()
        chosen = resolve_providers(providers, available, gpu_present=cuda_driver_present())
        options = ort.SessionOptions()
        self.threads = threads or 1
        options.intra_op_num_threads = self.threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3
        # busy-waiting worker threads would steal the capture thread's core on a 2-core machine
        options.add_session_config_entry("session.intra_op.allow_spinning", "1" if spin else "0")
        try:
            self.session = ort.InferenceSession(str(self.model_path), sess_options=options, providers=chosen)
        except Exception as exc:  # onnxruntime raises its own pybind exception types
            reason = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
            raise ModelError(
                f"The model file {self.model_path} is not a loadable ONNX model ({reason}); re-export it."
            ) from None
        self.providers_in_use: tuple[str, ...] = tuple(self.session.get_providers())
        self.provider: str = self.providers_in_use[0]
        if chosen[0] != self.provider:
            log.warning("onnxruntime could not use %s; running on %s", chosen[0], self.provider)
        log.info("classifier %s on %s", self.model_path.name, self.provider)
        self._check_session()
        self._outputs = [SUIT_OUTPUT, ENTITY_OUTPUT]

    def _check_card(self) -> None:
        raw_input = self.card.raw.get("input", {})
        shape = list(raw_input.get("shape", []))
        if self.card.input_name != INPUT_NAME or shape[1:] != [CROP_HEIGHT, CROP_WIDTH, 3]:
            raise ModelError(
                f"The model card {self.card.path} describes input {self.card.input_name} {shape}, not "
                f"{INPUT_NAME} [N, {CROP_HEIGHT}, {CROP_WIDTH}, 3]; use a model exported for ToonVision Live."
            )

    def _check_session(self) -> None:
        inputs = self.session.get_inputs()
        outputs = {o.name: o for o in self.session.get_outputs()}
        where = f"The model {self.model_path}"
        if len(inputs) != 1 or inputs[0].name != INPUT_NAME:
            names = ", ".join(i.name for i in inputs)
            raise ModelError(f"{where} takes inputs ({names}) instead of one input '{INPUT_NAME}'; "
                             "re-export it to match its card.")
        inp = inputs[0]
        shape = list(inp.shape)
        if inp.type != "tensor(float)" or len(shape) != 4 or not _dynamic(shape[0]) \
                or shape[1:] != [CROP_HEIGHT, CROP_WIDTH, 3]:
            raise ModelError(f"{where} takes {inp.type} {shape}, not float32 "
                             f"[N, {CROP_HEIGHT}, {CROP_WIDTH}, 3] with a dynamic batch; "
                             "re-export it to match its card.")
        for name, size in ((SUIT_OUTPUT, len(SUIT_CODES)), (ENTITY_OUTPUT, len(COG_KEYS))):
            out = outputs.get(name)
            if out is None:
                raise ModelError(f"{where} has no output '{name}' (it has {', '.join(outputs)}); "
                                 "re-export it to match its card.")
            if len(out.shape) != 2 or out.shape[1] != size:
                raise ModelError(f"{where} gives '{name}' as {list(out.shape)}, not [N, {size}] as its card "
                                 "says; use the model its card was written for.")

    def run(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The raw (suit [N, 4], entity [N, 32]) probabilities of a float32 [N, 600, 200, 3] batch."""
        if batch.ndim != 4 or batch.shape[1:] != (CROP_HEIGHT, CROP_WIDTH, 3):
            raise ValueError(f"batch must be [N, {CROP_HEIGHT}, {CROP_WIDTH}, 3], got {batch.shape}")
        if len(batch) == 0:
            return np.zeros((0, len(SUIT_CODES)), np.float32), np.zeros((0, len(COG_KEYS)), np.float32)
        feed = np.ascontiguousarray(batch, dtype=np.float32)
        suit, entity = self.session.run(self._outputs, {INPUT_NAME: feed})
        return suit, entity

    def classify(self, batch: np.ndarray) -> list[CogPrediction]:
        """One CogPrediction per crop of the batch (an empty batch gives an empty list)."""
        suit, entity = self.run(batch)
        return predictions_from_probs(suit, entity)


def describe_provider(provider: str) -> str:
    """A short name for status lines: 'CUDA', 'CPU', ..."""
    return provider.removesuffix("ExecutionProvider") or provider

"""What this adapter knows about pytorch-metric-learning's classes, as plain data: imports nothing heavy.

lossforge imports this module (through `lossforge_pml.provider`) every time it lists component names,
so it holds only tables — no torch, no PML. The components themselves are generated from PML's classes
when first used (`lossforge_pml.adapters`).

Naming: `pml_` + the class name in `snake_case`, with PML's compound words kept whole
(`COMPOUND_WORDS`), so `ArcFaceLoss` is `pml_arcface_loss` and not `pml_arc_face_loss`:

```pycon
>>> registry_name("ArcFaceLoss"), registry_name("MultiSimilarityMiner"), registry_name("NTXentLoss")
('pml_arcface_loss', 'pml_multi_similarity_miner', 'pml_ntxent_loss')
>>> registry_name("SubCenterArcFaceLoss"), registry_name("ProxyNCALoss"), registry_name("HDCMiner")
('pml_sub_center_arcface_loss', 'pml_proxy_nca_loss', 'pml_hdc_miner')

```
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

MINIMUM_PML = "2.5"
"""The oldest pytorch-metric-learning this adapter supports (`pyproject.toml` asks for it)."""

COMPOUND_WORDS: dict[str, str] = {
    "SubCenterArcFace": "sub_center_arcface",
    "ArcFace": "arcface",
    "CosFace": "cosface",
    "SphereFace": "sphereface",
    "SupCon": "supcon",
    "NTXent": "ntxent",
    "ProxyNCA": "proxy_nca",
    "FastAP": "fast_ap",
    "SmoothAP": "smooth_ap",
    "VICReg": "vicreg",
    "P2SGrad": "p2s_grad",
}
"""PML's compound words, written as one word in registry names (PML's own file names agree:
`arcface_loss.py`, `ntxent_loss.py`, `supcon_loss.py`, `p2s_grad_loss.py`)."""

_WORD = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z0-9]+|[A-Z]+[0-9]*")


def registry_name(class_name: str) -> str:
    """`pml_` + `class_name` in snake_case, compound words (`COMPOUND_WORDS`) kept whole."""
    words, rest = [], class_name
    while rest:
        compound = next((word for word in COMPOUND_WORDS if rest.startswith(word)), None)
        if compound is not None:
            words.append(COMPOUND_WORDS[compound])
            rest = rest[len(compound) :]
            continue
        match = _WORD.match(rest)
        if match is None:
            raise ValueError(f"registry_name: cannot split {class_name!r} into words at {rest!r}")
        words.append(match.group(0).lower())
        rest = rest[match.end() :]
    return "pml_" + "_".join(words)


@dataclass(frozen=True)
class Spec:
    """One PML class this adapter turns into a lossforge component."""

    kind: str  # "loss" | "miner"
    since: str  # the first PML version that has the class
    # Miners: what they mine. Losses: what they compute over (for the docs: PML converts pairs to triplets and
    # back, so every generated loss takes either kind, `tuple_kind = None` to lossforge).
    tuple_kind: str | None = None
    search_space: dict[str, dict[str, Any]] = field(default_factory=dict)
    defaults: dict[str, Any] = field(default_factory=dict)  # for PML parameters without a default
    inherits: tuple[str, ...] = ()  # parameters PML passes up through **kwargs that are worth exposing


def _log(low: float, high: float) -> dict[str, Any]:
    return {"low": low, "high": high, "log": True}


def _uniform(low: float, high: float) -> dict[str, Any]:
    return {"low": low, "high": high}


_TEMPERATURE = {"temperature": _log(0.01, 1.0)}
_SCALE = _log(8.0, 128.0)

SPECS: dict[str, Spec] = {
    # -- losses on pairs ----------------------------------------------------------------------------
    "AngularLoss": Spec("loss", "2.0", "pair", {"alpha": _uniform(30.0, 55.0)}),
    "CircleLoss": Spec("loss", "2.0", "pair", {"m": _uniform(0.1, 0.5), "gamma": _log(16.0, 256.0)}),
    "ContrastiveLoss": Spec(
        "loss", "2.0", "pair", {"pos_margin": _uniform(0.0, 0.5), "neg_margin": _uniform(0.25, 2.0)}
    ),
    "GeneralizedLiftedStructureLoss": Spec("loss", "2.0", "pair", {"neg_margin": _uniform(0.25, 2.0)}),
    "IntraPairVarianceLoss": Spec("loss", "2.0", "pair"),
    "LiftedStructureLoss": Spec("loss", "2.0", "pair", {"neg_margin": _uniform(0.25, 2.0)}),
    "MultiSimilarityLoss": Spec(
        "loss",
        "2.0",
        "pair",
        {"alpha": _log(0.5, 10.0), "beta": _log(10.0, 100.0), "base": _uniform(0.0, 1.0)},
    ),
    "NTXentLoss": Spec("loss", "2.0", "pair", _TEMPERATURE),
    "SignalToNoiseRatioContrastiveLoss": Spec("loss", "2.0", "pair", inherits=("pos_margin", "neg_margin")),
    "SupConLoss": Spec("loss", "2.0", "pair", _TEMPERATURE),
    "ThresholdConsistentMarginLoss": Spec("loss", "2.7", "pair"),
    "TupletMarginLoss": Spec("loss", "2.0", "pair", {"margin": _uniform(1.0, 15.0), "scale": _SCALE}),
    # -- losses on triplets -------------------------------------------------------------------------
    "DynamicSoftMarginLoss": Spec("loss", "2.4", "triplet"),
    "HistogramLoss": Spec("loss", "2.3", "triplet"),
    "MarginLoss": Spec("loss", "2.0", "triplet", {"margin": _uniform(0.01, 0.5), "beta": _uniform(0.5, 2.0)}),
    "TripletMarginLoss": Spec("loss", "2.0", "triplet", {"margin": _log(0.01, 1.0)}),
    # -- losses over the whole batch (a miner's tuples weight samples, or are refused) ------------------
    "FastAPLoss": Spec("loss", "2.0"),
    "InstanceLoss": Spec("loss", "2.0", None, {"gamma": _log(8.0, 128.0)}),
    "NCALoss": Spec("loss", "2.0", None, {"softmax_scale": _log(0.1, 10.0)}),
    "NPairsLoss": Spec("loss", "2.0"),
    "PNPLoss": Spec("loss", "2.1"),
    # PML requires margin and Tn: the paper's m = 0.4, and T_n = 1 (PML warns that T_n > 5 may overflow)
    "RankedListLoss": Spec("loss", "2.4", None, defaults={"margin": 0.4, "Tn": 1.0}),
    "SmoothAPLoss": Spec("loss", "2.9", None, _TEMPERATURE),
    # -- learnable: class proxies / weight matrices, sized in prepare() -------------------------------
    "ArcFaceLoss": Spec("loss", "2.0", None, {"margin": _uniform(10.0, 60.0), "scale": _SCALE}),
    "CosFaceLoss": Spec("loss", "2.0", None, {"margin": _uniform(0.1, 0.5), "scale": _SCALE}),
    "LargeMarginSoftmaxLoss": Spec("loss", "2.0"),
    "NormalizedSoftmaxLoss": Spec("loss", "2.0", None, {"temperature": _log(0.01, 1.0)}),
    "P2SGradLoss": Spec("loss", "2.2"),
    "ProxyAnchorLoss": Spec("loss", "2.0", None, {"margin": _uniform(0.0, 0.5), "alpha": _log(8.0, 64.0)}),
    "ProxyNCALoss": Spec("loss", "2.0", None, {"softmax_scale": _log(0.1, 10.0)}, inherits=("softmax_scale",)),
    "SoftTripleLoss": Spec(
        "loss", "2.0", None, {"la": _log(5.0, 50.0), "gamma": _log(0.01, 1.0), "margin": _uniform(0.0, 0.05)}
    ),
    "SphereFaceLoss": Spec("loss", "2.0"),
    "SubCenterArcFaceLoss": Spec("loss", "2.0", None, {"margin": _uniform(10.0, 60.0), "scale": _SCALE}),
    # -- miners ---------------------------------------------------------------------------------------
    "AngularMiner": Spec("miner", "2.0", "triplet", {"angle": _uniform(10.0, 50.0)}),
    "BatchEasyHardMiner": Spec("miner", "2.0", "pair"),
    "BatchHardMiner": Spec("miner", "2.0", "triplet", inherits=("allowed_pos_range", "allowed_neg_range")),
    "DistanceWeightedMiner": Spec("miner", "2.0", "triplet"),
    "HDCMiner": Spec("miner", "2.0", "pair", {"filter_percentage": _uniform(0.1, 0.9)}),
    "MultiSimilarityMiner": Spec("miner", "2.0", "pair", {"epsilon": _uniform(0.01, 0.5)}),
    "PairMarginMiner": Spec(
        "miner", "2.0", "pair", {"pos_margin": _uniform(0.0, 0.5), "neg_margin": _uniform(0.5, 1.5)}
    ),
    "TripletMarginMiner": Spec("miner", "2.0", "triplet", {"margin": _uniform(0.01, 0.5)}),
    "UniformHistogramMiner": Spec("miner", "2.0", "pair"),
}
"""Every PML loss and miner adapted, by PML class name. Search spaces cover the well-known knobs (margins,
scales, temperatures) around PML's defaults; the other components are tuned over the learning rate only.
Pair losses compute over pairs, triplet losses over triplets (either takes a miner's tuples of the other
kind: PML converts them); `None`: proxy/classification-style losses that weight samples by a miner's
tuples, or that refuse a miner (InstanceLoss, PNPLoss, RankedListLoss: the error names the loss)."""

NOT_ADAPTED: dict[str, str] = {
    "BaseMetricLossFunction": "PML's abstract base class of every loss; computes nothing itself",
    "GenericPairLoss": "PML's abstract base class of the pair losses; computes nothing itself",
    "EmbeddingRegularizerMixin": "a mixin that adds an embedding regularizer to a loss; not a loss",
    "WeightRegularizerMixin": "a mixin that adds a weight regularizer to a loss; not a loss",
    "BaseLossWrapper": "PML's abstract base class of wrappers around another loss",
    "MultipleLosses": "a weighted sum of other loss objects: in lossforge, one config names one loss",
    "CrossBatchMemory": (
        "wraps another loss object and a memory queue of past embeddings (its `loss` and `miner` arguments are "
        "objects a config cannot name); use the wrapped loss directly"
    ),
    "SelfSupervisedLoss": (
        "wraps another loss and takes two augmented views `(embeddings, ref_emb)` without labels; lossforge's "
        "metric task hands a loss one batch of embeddings with class labels"
    ),
    "VICRegLoss": (
        "self-supervised: takes two augmented views `(embeddings, ref_emb)` and refuses labels; lossforge's "
        "metric task hands a loss one batch of embeddings with class labels"
    ),
    "ManifoldLoss": (
        "unsupervised: refuses labels (it clusters the batch itself); lossforge's metric task trains from class labels"
    ),
    "BaseMiner": "PML's abstract base class of every miner; mines nothing itself",
    "EmbeddingsAlreadyPackagedAsTriplets": (
        "assumes the batch is laid out as consecutive (anchor, positive, negative) rows; lossforge's batches "
        "are shuffled samples, so its 'triplets' would have the wrong labels"
    ),
}
"""PML classes exported next to the losses and miners that are not components: base classes, mixins,
wrappers around another loss, and self-supervised losses that take no labels. Each with the reason."""

UNFIT: dict[str, str] = {
    "pml_dynamic_soft_margin_loss": (
        "check_trains: PML's DynamicSoftMarginLoss raises `RuntimeError: index 10 is out of bounds for dimension 0 "
        "with size 10` on any triplet whose d_pos - d_neg falls in its histogram's last bin (>= 1.6 with the "
        "defaults min_val=-2, num_bins=10): its histogram update writes one bin past the end. A batch with one "
        "such hard triplet — common early in training — stops the run, so it is not offered"
    ),
    "pml_p2s_grad_loss": (
        "check_learnable: PML's P2SGradLoss renormalises its weight in place on every call (`renorm(2, 1, 1e-5)"
        ".mul(1e5)` shrinks each unit column by 1/(1 + 1e-7)), so the same loss gives a different value on each "
        "call and after a state_dict round trip (about 1e-7 relative: beyond the kit's float64 tolerance of 1e-9). "
        "Small for training, but it breaks the promise that a checkpoint restores the loss exactly"
    ),
}
"""Generated components that do not meet lossforge's contract, with the check that fails and why. They are
not registered (asking for one names the reason); `tests/test_pml_contract.py` runs the contract kit
over them too and asserts that exactly these fail."""

INTEGER_PARAMETERS = frozenset(
    {"num_bins", "centers_per_class", "sub_centers", "n_bins", "pos_per_bin", "neg_per_bin", "num_classes"}
)
"""Parameters that are integers although PML gives them no annotation (a default like `4` is otherwise
read as a float, so that `loss.scale=64.5` is allowed). By name, and by (class, name)."""
INTEGER_PARAMETERS_OF: dict[str, frozenset[str]] = {
    "LargeMarginSoftmaxLoss": frozenset({"margin"}),  # the multiplicative angular margin m of cos(m θ)
    "SphereFaceLoss": frozenset({"margin"}),
}

SIZE_PARAMETERS: dict[str, str] = {
    "num_classes": "classes",
    "embedding_size": "embedding",
    "descriptors_dim": "embedding",
}
"""PML constructor parameters lossforge fills from the data (`prepare`), never from the config: the number
of classes, and the embedding width under each of its PML names."""


def components() -> dict[str, tuple[str, Spec]]:
    """`{registry name: (PML class name, spec)}` of every adapted class."""
    return {registry_name(class_name): (class_name, spec) for class_name, spec in SPECS.items()}


def not_adapted() -> dict[str, tuple[str, str]]:
    """`{registry name: (PML class name, reason)}` of the classes left out, named as if they were in."""
    return {registry_name(class_name): (class_name, reason) for class_name, reason in NOT_ADAPTED.items()}


def version_tuple(version: str) -> tuple[int, ...]:
    """`"2.9.0"` → `(2, 9, 0)`; a suffix (`rc1`, `.dev0`) is ignored.

    ```pycon
    >>> version_tuple("2.9.0") >= version_tuple("2.9"), version_tuple("2.10.1rc1") > version_tuple("2.9")
    (True, True)

    ```
    """
    numbers = []
    for part in version.split("."):
        match = re.match(r"\d+", part)
        if match is None:
            break
        numbers.append(int(match.group(0)))
    while numbers and numbers[-1] == 0:
        numbers.pop()
    return tuple(numbers)

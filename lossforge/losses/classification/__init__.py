"""Classification losses: hinge, multiclass hinge, cross-entropy (plain and weighted), focal, LDAM and BCE.

Pure functions first, then the registered modules. Input conventions, shared by every loss here:

* binary: scores `(N,)` (logits, not probabilities) and targets `(N,)` in {0, 1} (`hinge` also
  takes ±1); targets may be bool, integer or floating.
* multiclass: logits `(N, C)` and class indices `(N,)` of an integer dtype; `cross_entropy` and
  `weighted_cross_entropy` also take one-hot or probability rows `(N, C)`.
* multilabel: logits and {0, 1} targets `(N, K)` (`bce`).

Every loss works from logits with `log_softmax` / `logsigmoid`, so large scores stay finite.

One module per sub-family — `hinge`, `cross_entropy` (plain and weighted), `focal`, `ldam`, `bce` — with
what they share in `inputs` (input checks) and `weights` (class weights from class counts). The names
below are importable from here.
"""

from lossforge.losses.classification.bce import BCELoss, bce_loss
from lossforge.losses.classification.cross_entropy import (
    CrossEntropyLoss,
    WeightedCrossEntropyLoss,
    cross_entropy,
    weighted_cross_entropy,
)
from lossforge.losses.classification.focal import FocalLoss, focal_loss
from lossforge.losses.classification.hinge import HingeLoss, MulticlassHingeLoss, hinge_loss, multiclass_hinge_loss
from lossforge.losses.classification.ldam import LDAMLoss, ldam_loss, ldam_margins
from lossforge.losses.classification.weights import (
    WEIGHT_SCHEMES,
    class_counts,
    effective_number_weights,
    inverse_frequency_weights,
    scheme_weights,
)

__all__ = [
    "WEIGHT_SCHEMES",
    "BCELoss",
    "CrossEntropyLoss",
    "FocalLoss",
    "HingeLoss",
    "LDAMLoss",
    "MulticlassHingeLoss",
    "WeightedCrossEntropyLoss",
    "bce_loss",
    "class_counts",
    "cross_entropy",
    "effective_number_weights",
    "focal_loss",
    "hinge_loss",
    "inverse_frequency_weights",
    "ldam_loss",
    "ldam_margins",
    "multiclass_hinge_loss",
    "scheme_weights",
    "weighted_cross_entropy",
]

"""Proxy and classifier-based metric losses: ArcFace, CosFace, normalised softmax, ProxyNCA, Proxy Anchor.

Each compares every embedding with **one learnable vector per class** — a class proxy, or the row of a
normalised classifier's weight matrix — instead of with the other embeddings of the batch. The vectors are
the loss's own parameters, `proxies` of shape `(C, D)`: the optimizer trains them (in a group of their
own at `lr * lr_multiplier`, no weight decay: [lossforge.training.optim][]), checkpoints hold them and
`resume=` restores them. They are sized from the data: lossforge's training calls
`prepare(targets=…, num_classes=C, embedding_dim=D)` (see [lossforge.contract.LossPlugin][]), which
draws them from the run's seeded generator; used on its own, a loss takes `num_classes` and
`embedding_dim` in its constructor instead.

Called `loss(embeddings (N, D), labels (N,), indices_tuple=None)` like the other metric losses. They
take no pairs or triplets: a miner's `indices_tuple` is refused with a `LossInputError` (so
`miner=...` with one of them fails at its first step, naming the loss). Every loss here compares
L2-*normalised* embeddings with L2-normalised proxies (cosine similarity), so `distance = "cosine"`
and retrieval is evaluated by cosine.

Against pytorch-metric-learning (PML) 2.9, the same losses with these conventions (the tests compare
them on the same weights):

* PML stores ArcFace's, CosFace's and normalised softmax's weights as `W` of shape `(D, C)`; here
  they are `proxies` `(C, D)` (`pml.W.data = proxies.T`). PML names `embedding_dim`
  `embedding_size`.
* ArcFace's `margin` is in **radians** here (the paper's m = 0.5); PML's is in degrees (default 28.6°,
  i.e. 0.499 rad).
* ProxyNCA: PML's softmax includes the true class's proxy in the denominator (as ProxyNCA++ does; the
  2017 paper left it out), over the squared Euclidean distance of normalised vectors; so does lossforge.
  PML drops a sample whose probability underflows to 0; lossforge computes the log-softmax directly, so
  it never underflows and every sample counts.
* Proxy Anchor's `"none"` here returns one value per proxy, scaled so that their mean is the loss
  (PML's divisor reducer has no per-element form).
* PML accepts a miner's tuples and turns them into per-sample weights; lossforge refuses them.

Defaults are PML's (= the papers'): ArcFace m = 0.5 rad, s = 64; CosFace m = 0.35, s = 64; normalised
softmax T = 0.05; ProxyNCA softmax scale 1; Proxy Anchor δ = 0.1, α = 32. Proxies start as PML's do:
standard normal, Proxy Anchor's Kaiming-normal (fan out).

One module per sub-family — [cosine_softmax][lossforge.losses.proxy.cosine_softmax] (ArcFace, CosFace,
normalised softmax) and [proxy_based][lossforge.losses.proxy.proxy_based] (ProxyNCA, Proxy Anchor) — with what
they share (input checks, the base class that owns the proxies) in [base][lossforge.losses.proxy.base]. The
names below are importable from here.
"""

from lossforge.losses.proxy.cosine_softmax import (
    ArcFaceLoss,
    CosFaceLoss,
    NormalizedSoftmaxLoss,
    arcface_loss,
    cosface_loss,
    normalized_softmax_loss,
)
from lossforge.losses.proxy.proxy_based import ProxyAnchorLoss, ProxyNCALoss, proxy_anchor_loss, proxy_nca_loss

__all__ = [
    "ArcFaceLoss",
    "CosFaceLoss",
    "NormalizedSoftmaxLoss",
    "ProxyAnchorLoss",
    "ProxyNCALoss",
    "arcface_loss",
    "cosface_loss",
    "normalized_softmax_loss",
    "proxy_anchor_loss",
    "proxy_nca_loss",
]

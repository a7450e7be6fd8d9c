"""lossforge-extras: losses and a miner that lossforge does not ship, packaged as a lossforge plugin.

Nothing here imports lossforge. The plugin contract is plain `torch.nn.Module` subclasses with a few
class attributes, announced through entry points in `pyproject.toml`; lossforge finds them there. This
`__init__` imports nothing, so reading the entry points or the config folder (`lossforge_extras.conf`)
never imports torch.

* `lossforge_extras.classification` — `poly1_cross_entropy` (Leng et al. 2022), `asymmetric`
  (Ridnik et al. 2021);
* `lossforge_extras.metric` — `multi_similarity` (Wang et al. 2019), `info_nce` (InfoNCE / NT-Xent);
* `lossforge_extras.miners` — the `multi_similarity` pair miner (Wang et al. 2019).
"""

__version__ = "0.1.0"

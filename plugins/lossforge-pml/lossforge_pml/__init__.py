"""lossforge-pml: every loss and miner of pytorch-metric-learning (PML) as a lossforge component.

One provider entry point (group `lossforge.providers`, `lossforge_pml.provider.provide`) declares
them all, named `pml_<snake_case class name>` (`pml_arcface_loss`, `pml_multi_similarity_miner`); the
component classes are generated from PML's classes when first used (`lossforge_pml.adapters`, served
by `lossforge_pml.generated`). Nothing here imports lossforge, and neither this `__init__` nor the
provider imports torch or PML: listing names stays cheap.
"""

__version__ = "0.1.0"

"""The standard image benchmarks, read from their official on-disk layouts; downloaded only when asked.

* [cifar10][lossforge.data.benchmarks.cifar.cifar10], [cifar100][lossforge.data.benchmarks.cifar.cifar100] — the python
  version's pickled batches, unpickled arrays-only.
* [fashion_mnist][lossforge.data.benchmarks.fashion.fashion_mnist] — IDX files, read by MNIST's reader.
* [cub200][lossforge.data.benchmarks.metric.cub200], [cars196][lossforge.data.benchmarks.metric.cars196],
  [stanford_online_products][lossforge.data.benchmarks.metric.stanford_online_products] — metric learning,
  class-disjoint.

Each follows the dataset contract (keyword-only parameters, the split seed `seed`, a mapping of
`uint8` $(N, C, H, W)$ splits); see [lossforge.data.images][].
"""

from __future__ import annotations

from lossforge.data.benchmarks.cifar import cifar10, cifar100
from lossforge.data.benchmarks.fashion import fashion_mnist
from lossforge.data.benchmarks.metric import cars196, cub200, stanford_online_products

BENCHMARKS = {
    "cifar10": cifar10,
    "cifar100": cifar100,
    "fashion_mnist": fashion_mnist,
    "cub200": cub200,
    "cars196": cars196,
    "sop": stanford_online_products,
}
"""Registry name → dataset function, for every benchmark in this package."""

__all__ = ["BENCHMARKS", "cars196", "cifar10", "cifar100", "cub200", "fashion_mnist", "stanford_online_products"]

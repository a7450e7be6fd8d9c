"""The provider entry point: every adapted PML class's registry name, as plain data, without importing torch.

lossforge calls `provide` whenever it indexes components (`pyproject.toml`: `[project.entry-points.
"lossforge.providers"] pml = "lossforge_pml.provider:provide"`). The names come from the static table
`lossforge_pml.table`; the installed PML version is read from package metadata, so a component whose
class the installed PML lacks is declared *unavailable* with the version that has it, as are the classes
this adapter leaves out and the components that do not fit lossforge's contract, each with its reason.

```pycon
>>> answer = provide()
>>> answer["lossforge.losses"]["pml_arcface_loss"], answer["lossforge.miners"]["pml_multi_similarity_miner"]
('lossforge_pml.generated:pml_arcface_loss', 'lossforge_pml.generated:pml_multi_similarity_miner')
>>> "not adapted" in answer["unavailable"]["pml_cross_batch_memory"]
True

```
"""

from __future__ import annotations

from importlib import metadata

from lossforge_pml.table import UNFIT, components, not_adapted, version_tuple

TARGETS = "lossforge_pml.generated"


def installed_pml() -> str | None:
    """The installed pytorch-metric-learning version, from metadata (no import), or `None`."""
    try:
        return metadata.version("pytorch-metric-learning")
    except metadata.PackageNotFoundError:
        return None


def provide() -> dict[str, dict[str, str]]:
    """`{"lossforge.losses": {name: target}, "lossforge.miners": {...}, "unavailable": {name: reason}}`."""
    installed = installed_pml()
    groups: dict[str, dict[str, str]] = {"lossforge.losses": {}, "lossforge.miners": {}, "unavailable": {}}
    unavailable = groups["unavailable"]
    for name, (class_name, spec) in components().items():
        if name in UNFIT:
            unavailable[name] = (
                f"PML's {class_name} does not fit lossforge's contract: {UNFIT[name]} (lossforge-pml's README lists "
                f"every such component)"
            )
        elif installed is not None and version_tuple(installed) < version_tuple(spec.since):
            unavailable[name] = (
                f"it adapts PML's {class_name}, which pytorch-metric-learning {installed} does not have (it arrived in "
                f"{spec.since}): `pip install -U 'pytorch-metric-learning>={spec.since}'`"
            )
        else:
            groups[f"lossforge.{'losses' if spec.kind == 'loss' else 'miners'}"][name] = f"{TARGETS}:{name}"
    for name, (class_name, reason) in not_adapted().items():
        unavailable[name] = f"PML's {class_name} is not adapted by lossforge-pml: {reason}"
    return groups

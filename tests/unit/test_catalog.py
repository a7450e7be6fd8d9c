"""``lossforge list``'s catalog: cached descriptions, rebuilt when anything they depend on changes."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from helpers import GOOD_LOSS, Site, install_good

from lossforge.catalog import all_summaries, cache_key, describe, summaries
from lossforge.registry import LOSSES


def test_a_warm_cache_gives_the_same_descriptions_without_loading_anything(tmp_path: Path) -> None:
    cold = all_summaries(cache_dir=tmp_path)
    focal = next(entry for entry in cold if entry.name == "focal")
    assert focal.served == "multiclass/binary" and "gamma=2.0" in focal.parameters and "gamma in [0, 5]" in focal.tune
    assert {"losses.json", "miners.json"} <= {path.name for path in tmp_path.iterdir()}
    LOSSES.refresh()  # a fresh index: nothing loaded, as in a new process
    assert all_summaries(cache_dir=tmp_path) == cold
    assert all(LOSSES.info(name).loaded is None for name in LOSSES.names())  # served from the cache


def test_a_corrupt_or_stale_cache_is_rebuilt_silently(tmp_path: Path) -> None:
    fresh = summaries(LOSSES, cache_dir=tmp_path)
    (tmp_path / "losses.json").write_text("{not json")
    assert summaries(LOSSES, cache_dir=tmp_path) == fresh
    (tmp_path / "losses.json").write_text('{"key": "someone else\'s", "components": []}')
    assert summaries(LOSSES, cache_dir=tmp_path) == fresh


def test_installing_or_editing_a_plugin_changes_the_key(site: Site, tmp_path: Path) -> None:
    before = cache_key(LOSSES)
    assert cache_key(LOSSES) == before  # stable while nothing changes
    install_good(site)
    LOSSES.refresh()
    installed = cache_key(LOSSES)
    assert installed != before
    assert "scaled_l1" in {entry.name for entry in summaries(LOSSES, cache_dir=tmp_path)}
    source = site.root / "lf_test_good" / "losses.py"
    later = time.time() + 5
    os.utime(source, (later, later))  # an edit to an editable install
    assert cache_key(LOSSES) != installed


def test_a_broken_plugin_is_described_as_failed(site: Site, tmp_path: Path) -> None:
    site.install(
        "lf-test-broken",
        package="lf_test_broken",
        files={"__init__.py": "raise ImportError('a dependency is missing')"},
        entry_points={"lossforge.losses": {"broken_loss": "lf_test_broken:Loss"}},
    )
    LOSSES.refresh()
    entry = describe(LOSSES, "broken_loss")
    assert (
        entry.error is not None
        and "a dependency is missing" in entry.error
        and entry.provider == "lf-test-broken==0.1.0"
    )


def test_an_unwritable_cache_still_lists(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocked = tmp_path / "file"
    blocked.write_text("a file where the cache folder would go")
    assert [entry.name for entry in summaries(LOSSES, cache_dir=blocked / "lossforge")] == LOSSES.names()


def test_a_providers_components_are_cached_and_its_dependencies_versions_are_in_the_key(
    site: Site, tmp_path: Path
) -> None:
    site.install("lf-test-dep", package="lf_test_dep", files={}, entry_points={}, version="1.0")
    site.install(
        "lf-test-provider",
        package="lf_test_provider",
        files={
            "provider.py": "def provide():\n    return {'lossforge.losses': {'made_l1': 'lf_test_provider.made:"
            "ScaledL1'}}",
            "made.py": GOOD_LOSS,
        },
        entry_points={"lossforge.providers": {"made": "lf_test_provider.provider:provide"}},
    )
    metadata_file = site.root / "lf_test_provider-0.1.0.dist-info" / "METADATA"
    metadata_file.write_text(
        metadata_file.read_text() + "Requires-Dist: lf-test-dep>=1\nRequires-Dist: pytest; extra == 'test'\n"
    )
    LOSSES.refresh()
    described = {entry.name: entry for entry in summaries(LOSSES, cache_dir=tmp_path)}
    assert described["made_l1"].provider == "lf-test-provider==0.1.0" and "scale=1.0" in described["made_l1"].parameters
    before = cache_key(LOSSES)
    dependency = site.root / "lf_test_dep-1.0.dist-info" / "METADATA"
    dependency.write_text(dependency.read_text().replace("Version: 1.0", "Version: 2.0"))  # the library upgraded
    LOSSES.refresh()
    assert cache_key(LOSSES) != before


def test_a_failed_provider_is_listed_as_failed(site: Site, tmp_path: Path) -> None:
    site.install(
        "lf-test-provider",
        package="lf_test_provider",
        files={"provider.py": "raise ImportError('the adapted library is missing')"},
        entry_points={"lossforge.providers": {"made": "lf_test_provider.provider:provide"}},
    )
    LOSSES.refresh()
    (failed,) = [entry for entry in all_summaries(cache_dir=tmp_path) if entry.name == "<provider made>"]
    assert failed.provider == "lf-test-provider==0.1.0" and failed.error is not None
    assert "the adapted library is missing" in failed.error and "lf_test_provider.provider:provide" in failed.error

"""The documentation site: its navigation, links and API reference are complete (fast checks on the sources),
and the strictly built site renders its formulas with the KaTeX it serves itself and lists the API (one build,
shared with CI: `.ci/run` builds it with `mkdocs build --strict` and passes it on in `LOSSFORGE_DOCS_SITE`)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
README_LIMIT = 250


class _IgnoreTags(yaml.SafeLoader):
    """mkdocs.yml names a Python function for the heading slugs (`!!python/object/apply`): read it as data."""


_IgnoreTags.add_multi_constructor("tag:yaml.org,2002:python/", lambda loader, suffix, node: None)


def _config() -> dict:
    return yaml.load((ROOT / "mkdocs.yml").read_text(), Loader=_IgnoreTags)  # a SafeLoader


def _nav_pages(nav: list) -> list[str]:
    pages = []
    for entry in nav:
        value = next(iter(entry.values())) if isinstance(entry, dict) else entry
        pages += _nav_pages(value) if isinstance(value, list) else [value]
    return pages


def _pages() -> list[Path]:
    excluded = ("hooks",)
    return sorted(p for p in DOCS.rglob("*.md") if p.relative_to(DOCS).parts[0] not in excluded)


# -- the sources ------------------------------------------------------------------------------------------


def test_the_readme_is_short_and_keeps_the_command_ci_runs() -> None:
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= README_LIMIT
    test_command = (
        'python3 -m venv .venv && .venv/bin/pip install -r requirements/cpu.txt -e ".[test]" '
        "-e plugins/lossforge-extras -e plugins/lossforge-pml && .venv/bin/python -m pytest"
    )
    assert test_command in readme  # .ci/run runs "the README's test command"


def test_every_page_is_in_the_nav_and_every_nav_entry_is_a_page() -> None:
    nav = _nav_pages(_config()["nav"])
    pages = {str(p.relative_to(DOCS)) for p in _pages()}
    assert sorted(set(nav) - pages) == [], "nav names pages that do not exist"
    assert sorted(pages - set(nav)) == [], "pages that the nav does not list (mkdocs.yml)"
    assert len(nav) == len(set(nav)), "a page is listed twice"


LINK = re.compile(r"\]\(([^)\s#]+)(#[^)]*)?\)")


@pytest.mark.parametrize("page", [*_pages(), ROOT / "README.md", ROOT / "plugins" / "README.md"], ids=str)
def test_relative_links_point_at_files_that_exist(page: Path) -> None:
    text = re.sub(r"```.*?```", "", page.read_text(), flags=re.S)  # links inside code are not links
    broken = [
        target
        for target, _ in LINK.findall(text)
        if "://" not in target and not target.startswith("mailto:") and not (page.parent / target).exists()
    ]
    assert broken == []


def test_the_api_reference_has_a_page_for_every_package_and_module() -> None:
    package = ROOT / "lossforge"
    public = {
        (p.stem if p.is_file() else p.name)
        for p in package.iterdir()
        if not p.name.startswith("_") and (p.suffix == ".py" or (p / "__init__.py").exists())
    }
    documented = set(re.findall(r"^::: lossforge\.(\w+)", "\n".join(p.read_text() for p in _pages()), re.M))
    assert sorted(public - documented) == [], "add docs/reference/<name>.md and its nav entry"


def test_the_loss_catalogue_shows_every_built_in_loss_with_a_formula_and_a_figure() -> None:
    catalogue = (DOCS / "losses.md").read_text()
    own = sorted(e.name for e in entry_points(group="lossforge.losses") if e.dist.name == "lossforge")
    rows = {
        m.group(1): m.group(2) for m in re.finditer(r"^\| \[`(\w+)`\]\[[\w.]+\] \| .* \| (\$.+\$) \|$", catalogue, re.M)
    }
    assert sorted(set(own) - set(rows)) == []
    figures = re.findall(r"!\[[^\]]*\]\((figures/[\w.-]+)\)", catalogue)
    assert len(figures) >= 8 and all((DOCS / figure).exists() for figure in figures)


# -- the built site ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def built_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The strict build: CI's (`LOSSFORGE_DOCS_SITE`), else one made here (about 20 s)."""
    given = os.environ.get("LOSSFORGE_DOCS_SITE")
    if given:
        return Path(given)
    site = tmp_path_factory.mktemp("docs") / "site"
    mkdocs = Path(sys.executable).parent / "mkdocs"
    result = subprocess.run(
        [str(mkdocs), "build", "--strict", "--site-dir", str(site)], cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return site


@pytest.mark.slow
def test_the_api_reference_lists_the_public_api_and_the_losses(built_site: Path) -> None:
    api = (built_site / "reference" / "api" / "index.html").read_text()
    for name in ("train", "benchmark", "compare", "TrainResult"):
        assert f'id="lossforge.api.{name}"' in api
    losses = (built_site / "reference" / "losses" / "index.html").read_text()
    assert 'id="lossforge.losses.classification.focal.focal_loss"' in losses
    assert losses.count('class="arithmatex"') > 50  # the docstrings' formulas reached the page as math


CHROMIUM = shutil.which("chromium")


@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason="no `chromium` on PATH (Debian: apt-get install chromium)")
def test_formulas_are_typeset_by_the_katex_the_site_serves(built_site: Path, tmp_path: Path) -> None:
    page = built_site / "losses" / "index.html"
    html = page.read_text()
    scripts = re.findall(r'<script src="([^"]+)"', html) + re.findall(r'<link[^>]+href="(https?:[^"]+)"', html)
    assert not [s for s in scripts if s.startswith(("http:", "https:", "//"))], "a script or style from outside"
    assert (built_site / "assets" / "katex" / "katex.min.js").exists()
    assert (built_site / "assets" / "katex" / "fonts" / "KaTeX_Main-Regular.woff2").exists()
    assert CHROMIUM is not None
    dom = subprocess.run(
        [
            CHROMIUM,
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            f"--user-data-dir={tmp_path / 'profile'}",
            "--virtual-time-budget=5000",
            "--dump-dom",
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    ).stdout
    typeset = dom.count('class="katex"') + dom.count('class="katex-display"')
    assert typeset >= html.count('class="arithmatex"') > 20, "formulas left untypeset"
    assert "katex-error" not in dom
    assert not re.search(r"<td>[^<]*\$", html), "a formula in a table cell that arithmatex did not take as math"

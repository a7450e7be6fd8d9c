"""mkdocs hook: serve KaTeX from the site itself, so formulas render without a CDN (CI has no internet).

KaTeX's distribution comes from the npm registry, pinned and checked: `npm pack katex@VERSION` once into a
cache folder (`$XDG_CACHE_HOME/lossforge-docs`, else `~/.cache/lossforge-docs`), its SHA-256 compared with
the one below, and after each build the files a page needs (the script, the stylesheet, the WOFF2 fonts
and the licence) are copied into `site/assets/katex/`. `docs/javascripts/katex.js` typesets the formulas
`pymdownx.arithmatex` marked. To move to another KaTeX: change VERSION and SHA256 (`sha256sum` of the
tarball `npm pack katex@<version>` writes).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tarfile
from pathlib import Path

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.exceptions import PluginError

VERSION = "0.16.47"
SHA256 = "ad2d1ab2f7fcc227019784320e8a2c5218ff6bb333b36df4136d10365ae29375"
FILES = ("dist/katex.min.js", "dist/katex.min.css", "LICENSE")


def _cache() -> Path:
    root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return root / "lossforge-docs"


def tarball() -> Path:
    """The pinned KaTeX tarball, fetched with npm on first use and checked against SHA256."""
    cache = _cache()
    path = cache / f"katex-{VERSION}.tgz"
    if not path.exists():
        cache.mkdir(parents=True, exist_ok=True)
        if shutil.which("npm") is None:
            raise PluginError(
                f"docs: KaTeX {VERSION} is fetched from the npm registry, and `npm` is not installed "
                f"(Debian: apt-get install npm), or put katex-{VERSION}.tgz into {cache} yourself"
            )
        try:
            subprocess.run(
                ["npm", "pack", f"katex@{VERSION}", "--pack-destination", str(cache)],
                check=True,
                capture_output=True,
                text=True,
                timeout=300,
            )
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as error:
            output = getattr(error, "stderr", "") or ""
            raise PluginError(f"docs: `npm pack katex@{VERSION}` failed: {output.strip()[-500:]}") from error
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != SHA256:
        path.unlink()
        raise PluginError(f"docs: {path.name} has SHA-256 {digest}, expected {SHA256}; removed it, build again")
    return path


def on_config(config: MkDocsConfig) -> MkDocsConfig:
    tarball()  # fail early, before the pages are rendered
    return config


def on_post_build(config: MkDocsConfig) -> None:
    target = Path(config["site_dir"]) / "assets" / "katex"
    (target / "fonts").mkdir(parents=True, exist_ok=True)
    with tarfile.open(tarball()) as archive:
        for member in archive.getmembers():
            name = member.name.removeprefix("package/")
            wanted = name in FILES or (name.startswith("dist/fonts/") and name.endswith(".woff2"))
            if not wanted or not member.isfile():
                continue
            source = archive.extractfile(member)
            assert source is not None
            (target / name.removeprefix("dist/")).write_bytes(source.read())

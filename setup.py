"""setuptools' package discovery; everything else about the build is in pyproject.toml.

Every package under ``lossforge/`` and ``hydra_plugins/`` (a namespace package: no ``__init__.py``) is
found, so a new sub-package ships without editing a list; ``lossforge.conf`` is the top-level ``conf/``
folder shipped inside the package (``[tool.setuptools.package-dir]``; its YAML files are package data).
"""

from setuptools import find_namespace_packages, setup

setup(packages=[*find_namespace_packages(include=["lossforge", "lossforge.*", "hydra_plugins.*"]), "lossforge.conf"])

"""The package's version, in a module of its own so that any layer may read it without importing the
public API (`lossforge/__init__.py`)."""

__version__ = "0.1.0"

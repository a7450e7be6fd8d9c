"""Shared fixtures. Loading this file also puts ``tests/`` on ``sys.path``, so test files in ``unit/`` and
``e2e/`` import the shared helpers with ``from helpers import …``."""

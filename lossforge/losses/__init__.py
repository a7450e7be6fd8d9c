"""Loss functions, one family per module: ``regression``, ``classification``, ``metric``.

Each module defines pure functions first (the math, with formulas and examples in the docstrings), then
the thin ``nn.Module`` wrappers that the registry exposes by name.
"""

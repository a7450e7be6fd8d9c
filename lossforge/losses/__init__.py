"""Loss functions, one family per module (`regression`, `metric`, `pairwise`, `proxy`) or, for the long
`classification` family, one package with a module per sub-family.

Each module defines pure functions first (the math, with formulas and examples in the docstrings), then
the thin `nn.Module` wrappers that the registry exposes by name.
"""

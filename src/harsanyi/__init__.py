"""harsanyi: exact AND-OR (Harsanyi) interactions of neural networks.

The public API, stable from version 0.1:

    harsanyi.and_transform(v), harsanyi.or_transform(v)        # (..., 2^n) → interactions
    harsanyi.and_inverse(i_and), harsanyi.or_inverse(i_or)     # interactions → (..., 2^n)
    harsanyi.sparsify(v, qthres=..., lr=..., iters=..., solver=...)   # AND-OR decomposition
    harsanyi.game_values(model, masker, x, y)                  # v on all 2^n masked inputs
"""

__version__ = "0.1.0"

# `sparsify` the function shadows `harsanyi.sparsify` the module as an attribute of the
# package; `from harsanyi.sparsifier import ...` still reaches the module.
from harsanyi.games import game_values  # noqa: E402
from harsanyi.sparsifier import SparsifyResult, sparsify  # noqa: E402
from harsanyi.transforms import and_inverse, and_transform, or_inverse, or_transform  # noqa: E402

__all__ = [
    "SparsifyResult",
    "__version__",
    "and_inverse",
    "and_transform",
    "game_values",
    "or_inverse",
    "or_transform",
    "sparsify",
]

"""harsanyi: exact AND-OR (Harsanyi) interactions of neural networks."""

from harsanyi.transforms import and_inverse, and_transform, or_inverse, or_transform

__version__ = "0.1.0"

__all__ = [
    "__version__",
    "and_inverse",
    "and_transform",
    "or_inverse",
    "or_transform",
]

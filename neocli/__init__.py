"""neocli: Sparse Predictive Hierarchies, a drop-in for pyaogmaneo 2.14.4.

``import neocli as neo`` and use it as pyaogmaneo: same classes, methods,
argument names, defaults and numbers.
"""
from ._errors import NeoError

try:  # the first import of the compiled kernels: missing in a source tree that was never built
    from ._threads import get_num_threads, set_num_threads
except ImportError as _e:  # pragma: no cover - depends on how neocli was installed
    if "_core" not in str(_e):
        raise
    import os as _os

    raise ImportError(
        f"neocli's compiled kernels are not built in {_os.path.dirname(__file__)!r}: this is an unbuilt "
        "source tree shadowing any installed neocli (Python looks in the current directory first). "
        "Run from another directory, or build here with 'pip install -e .'") from _e
from ._version import __version__
from .hierarchy import Hierarchy, get_global_state, set_global_state
from .params import (
    ActorParams, DecoderParams, EncoderParams, IODesc, IOParams, IOType, LayerDesc, LayerParams,
    MergeMode, Params, action, merge_average, merge_random, none, prediction,
)

#: The image pre-encoder's names: its module (and kernels) load on first use (PEP 562), as
#: neither the sequence models nor the command line need them.
_IMAGE_NAMES = {"ImageEncoder", "ImageEncoderParams", "ImageVisibleLayerDesc"}

__all__ = [
    "NeoError", "__version__", "Hierarchy", "IODesc", "LayerDesc", "IOType", "none", "prediction",
    "action", "MergeMode", "merge_average", "merge_random", "Params", "LayerParams", "IOParams",
    "EncoderParams", "DecoderParams", "ActorParams", "set_num_threads", "get_num_threads",
    "set_global_state", "get_global_state", "ImageEncoder", "ImageEncoderParams", "ImageVisibleLayerDesc",
]


def __getattr__(name: str):
    """The image pre-encoder's names (and ``neocli.image_encoder``), imported on first use."""
    if name not in _IMAGE_NAMES and name != "image_encoder":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    # A `from .x import` form: `from . import image_encoder` would look the name up here first.
    from .image_encoder import ImageEncoder, ImageEncoderParams, ImageVisibleLayerDesc

    globals().update(ImageEncoder=ImageEncoder, ImageEncoderParams=ImageEncoderParams,
                     ImageVisibleLayerDesc=ImageVisibleLayerDesc)
    return globals()[name]


def __dir__() -> list[str]:
    """The module's names, the image pre-encoder's included before their first use."""
    return sorted(set(globals()) | _IMAGE_NAMES | {"image_encoder"})

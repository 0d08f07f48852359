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
from .image_encoder import ImageEncoder, ImageEncoderParams, ImageVisibleLayerDesc
from .params import (
    ActorParams, DecoderParams, EncoderParams, IODesc, IOParams, IOType, LayerDesc, LayerParams,
    MergeMode, Params, action, merge_average, merge_random, none, prediction,
)

__all__ = [
    "NeoError", "__version__", "Hierarchy", "IODesc", "LayerDesc", "IOType", "none", "prediction",
    "action", "MergeMode", "merge_average", "merge_random", "Params", "LayerParams", "IOParams",
    "EncoderParams", "DecoderParams", "ActorParams", "set_num_threads", "get_num_threads",
    "set_global_state", "get_global_state", "ImageEncoder", "ImageEncoderParams", "ImageVisibleLayerDesc",
]

"""pytorch-fid's FID InceptionV3 with its weights: pool3 features (2048-d) of images, for FID.

The network is :class:`jaxwvae.evaluation.inception_net.FIDInceptionV3` (re-exported here);
this module fills it with the weights file ``pt_inception-2015-12-05-6726825d.pth``
(TensorFlow's 2015 Inception, ported to PyTorch) and runs it. Parameter names follow the
PyTorch state dict (``Mixed_5b/branch1x1/conv/kernel`` for ``Mixed_5b.branch1x1.conv.weight``),
so :func:`variables_from_torch_state_dict` is a rename plus a transpose.

Nothing here imports torch: :func:`load_weights` imports it lazily for ``.pth`` files, and a
``.npz`` holding the same names loads without it.

    variables = load_weights("pt_inception-2015-12-05-6726825d.pth")
    feats = inception_features(variables, images)   # images: [n, h, w, 1 or 3] in [0, 1]
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from jaxwvae.errors import UserError
from jaxwvae.evaluation.inception_net import FEATURE_DIM, INPUT_SIZE, FIDInceptionV3, resize_bilinear_torch

__all__ = [
    "FID_WEIGHTS_FILENAME",
    "FIDInceptionV3",
    "inception_features",
    "load_weights",
    "resize_bilinear_torch",
    "variables_from_torch_state_dict",
]

FID_WEIGHTS_FILENAME = "pt_inception-2015-12-05-6726825d.pth"

_WEIGHTS_FIX = (
    f"download {FID_WEIGHTS_FILENAME} from the pytorch-fid release page "
    "(github.com/mseitzer/pytorch-fid/releases, tag fid_weights) and pass --inception-weights PATH"
)


# --------------------------------------------------------------------------------------
# Weights.

# The last part of a PyTorch name -> (collection, Flax leaf name, needs OIHW -> HWIO).
_LEAF = {
    ("conv", "weight"): ("params", "kernel", True),
    ("bn", "weight"): ("params", "scale", False),
    ("bn", "bias"): ("params", "bias", False),
    ("bn", "running_mean"): ("batch_stats", "mean", False),
    ("bn", "running_var"): ("batch_stats", "var", False),
}


def _is_ignored(name: str) -> bool:
    # The 1008-way classifier is not part of the features; num_batches_tracked is a
    # training counter that newer torch versions save and older files lack.
    return name.startswith("fc.") or name.endswith(".num_batches_tracked")


def _to_numpy(value: Any) -> np.ndarray:
    if hasattr(value, "detach"):  # a torch tensor; no torch import needed to convert it
        value = value.detach().cpu().numpy()
    return np.asarray(value, dtype=np.float32)


@functools.cache
def _expected_shapes() -> dict[tuple[str, ...], tuple[int, ...]]:
    """Flax variable path -> shape, for the whole network (traced with abstract values only)."""
    shapes = jax.eval_shape(
        FIDInceptionV3().init, jax.random.key(0), jax.ShapeDtypeStruct((1, INPUT_SIZE, INPUT_SIZE, 3), jnp.float32)
    )
    flat = {}
    for path, leaf in jax.tree_util.tree_flatten_with_path(shapes)[0]:
        flat[tuple(p.key for p in path)] = tuple(leaf.shape)
    return flat


def _torch_name(path: tuple[str, ...]) -> str:
    collection, *modules, leaf = path
    for (mod, tname), (coll, fname, _) in _LEAF.items():
        if coll == collection and fname == leaf and modules[-1] == mod:
            return ".".join([*modules, tname])
    raise AssertionError(path)  # pragma: no cover - every leaf of the model is in _LEAF


def variables_from_torch_state_dict(state_dict: Mapping[str, Any]) -> dict:
    """Flax variables ``{'params', 'batch_stats'}`` of :class:`FIDInceptionV3` from a state dict.

    ``state_dict`` maps pytorch-fid's FID Inception names (torchvision's Inception3 naming, as
    in ``pt_inception-2015-12-05-6726825d.pth``) to torch tensors or numpy arrays. ``fc.*`` and
    ``*.num_batches_tracked`` are ignored; any other missing or unexpected name, or a shape
    that does not fit, raises ``ValueError`` naming it. Conv weights go OIHW -> HWIO.
    """
    if not isinstance(state_dict, Mapping):
        raise ValueError(f"expected a mapping of parameter names to arrays, got {type(state_dict).__name__}")
    expected = {_torch_name(path): path for path in _expected_shapes()}
    given = {k for k in state_dict if not _is_ignored(k)}
    missing = sorted(set(expected) - given)
    unexpected = sorted(given - set(expected))
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"missing keys ({len(missing)}): {_short_list(missing)}")
        if unexpected:
            parts.append(f"unexpected keys ({len(unexpected)}): {_short_list(unexpected)}")
        raise ValueError("state dict does not match pytorch-fid's FID InceptionV3: " + "; ".join(parts))

    variables: dict[str, dict] = {"params": {}, "batch_stats": {}}
    shapes = _expected_shapes()
    for name, path in expected.items():
        value = _to_numpy(state_dict[name])
        if _LEAF[tuple(name.split(".")[-2:])][2]:
            if value.ndim != 4:
                raise ValueError(f"{name}: expected a 4-d OIHW conv weight, got shape {value.shape}")
            value = value.transpose(2, 3, 1, 0)
        if value.shape != shapes[path]:
            raise ValueError(f"{name}: shape {value.shape} does not fit the network (wants {shapes[path]})")
        node = variables
        for key in path[:-1]:
            node = node.setdefault(key, {})
        node[path[-1]] = jnp.asarray(value)
    return variables


def _short_list(names: Sequence[str], limit: int = 8) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f", ... ({len(names) - limit} more)" if len(names) > limit else "")


def load_weights(path: str | os.PathLike) -> dict:
    """Flax variables from pytorch-fid's ``.pth`` (needs torch) or a ``.npz`` of the same names.

    Raises :class:`jaxwvae.errors.UserError` naming the path and the fix when the file is
    missing, unreadable, or not the FID Inception's weights. To convert once for machines
    without torch: ``np.savez(out, **{k: v.numpy() for k, v in torch.load(pth).items()})``.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise UserError(f"FID Inception weights not found at {path!r}: {_WEIGHTS_FIX}")
    try:
        if path.lower().endswith(".npz"):
            with np.load(path, allow_pickle=False) as data:
                state_dict = {k: data[k] for k in data.files}
        else:
            try:
                import torch
            except ImportError as e:
                raise UserError(
                    f"reading {path!r} needs torch (pip install torch), or convert it once to .npz "
                    f"with the same names where torch is installed ({e})"
                ) from None
            state_dict = torch.load(path, map_location="cpu", weights_only=True)
            if isinstance(state_dict, Mapping) and isinstance(state_dict.get("state_dict"), Mapping):
                state_dict = state_dict["state_dict"]
    except UserError:
        raise
    except Exception as e:  # zip/pickle/npz errors of every kind: the file is not what we want
        raise UserError(
            f"could not read FID Inception weights from {path!r} ({type(e).__name__}: {e}); {_WEIGHTS_FIX}"
        ) from None
    try:
        return variables_from_torch_state_dict(state_dict)
    except ValueError as e:
        raise UserError(f"{path!r} is not pytorch-fid's FID Inception weights: {e}; {_WEIGHTS_FIX}") from None


# --------------------------------------------------------------------------------------
# Convenience.


@functools.cache
def _compiled_apply(precision: Any) -> Callable:
    model = FIDInceptionV3(precision=precision)
    return jax.jit(model.apply)


def inception_features(
    variables: Mapping[str, Any],
    images: Any,
    batch_size: int = 200,
    precision: Any = lax.Precision.HIGHEST,
) -> np.ndarray:
    """pool3 features of ``images`` ([n, h, w, 1 or 3] in [0, 1]) as numpy float32 [n, 2048].

    Runs a jit-compiled :class:`FIDInceptionV3` over batches of ``batch_size``; the last,
    short batch is zero-padded to the same shape so that only one program is compiled.
    """
    images = np.asarray(images, dtype=np.float32)
    if images.ndim != 4 or images.shape[-1] not in (1, 3):
        raise ValueError(f"images must have shape [n, height, width, 1 or 3], got {images.shape}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    n = images.shape[0]
    if n == 0:
        return np.zeros((0, FEATURE_DIM), np.float32)
    apply = _compiled_apply(precision)
    bs = min(batch_size, n)
    out = np.empty((n, FEATURE_DIM), np.float32)
    for start in range(0, n, bs):
        chunk = images[start : start + bs]
        k = chunk.shape[0]
        if k < bs:
            chunk = np.concatenate([chunk, np.zeros((bs - k, *chunk.shape[1:]), np.float32)])
        out[start : start + k] = np.asarray(apply(variables, jnp.asarray(chunk)))[:k]
    return out

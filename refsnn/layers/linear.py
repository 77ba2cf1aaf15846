"""Fully connected layers: ``Linear`` and the pointwise ``Conv1d`` of the official models.

Both compute the same affine map ``y = W x + b`` on a different axis:

* :class:`Linear` acts on the last axis, ``y[..., o] = sum_i x[..., i] W[o, i] + b[o]``
  (``x @ W.T + b``, any leading dimensions), as ``torch.nn.Linear``;
* :class:`Conv1d` (kernel size 1) acts on the channel axis of ``(N, C, L)``,
  ``y[n, o, l] = sum_c W[o, c, 0] x[n, c, l] + b[o]``, as the official models'
  ``nn.Conv1d(C_in, C_out, kernel_size=1)`` on the merged ``(T*B, C, N_tokens)`` layout.

Each comes as a forward/backward pair of pure functions (``*_forward(x, weight, bias) ->
(y, cache)``, ``*_backward(dy, cache) -> (dx, grads)``) and a :class:`~refsnn.layers.base.Layer`
that holds the parameters under PyTorch's names ``'weight'`` and ``'bias'`` (same shapes too), so
an official ``state_dict`` loads by name.  The backward of ``y = x W^T + b`` is::

    dx = dy W          dW = dy^T x  (summed over leading dims)          db = sum dy

Conventions
-----------
* dtype: the computation runs in the dtype of ``x`` (float32 stays float32); the parameters are
  cast to it.  The layer returns gradients in the dtype of its parameters.
* Initialisation (only from a passed-in ``numpy.random.Generator``): PyTorch's default, i.e.
  ``kaiming_uniform_(a=sqrt(5))`` for the weight, which is ``U(-1/sqrt(fan_in), 1/sqrt(fan_in))``,
  and the same bound for the bias; ``fan_in = in_features`` (Linear) or ``C_in`` (Conv1d k=1).

The small helpers ``check_train``, ``check_rng`` and ``uniform_init`` are shared with the
sibling modules ``conv``, ``norm``, ``pool`` and ``quantized``.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .._checks import as_float_array, check_dtype, check_int, check_rng, check_shape, check_train
from .base import Layer, uniform_init

__all__ = ["Linear", "Conv1d", "linear_forward", "linear_backward", "conv1x1_forward",
           "conv1x1_backward"]


# --------------------------------------------------------------------------- shared helpers
def _check_bias(bias, n_out: int, x: np.ndarray) -> np.ndarray | None:
    if bias is None:
        return None
    bias = as_float_array(bias, "bias", ndim=1)
    check_shape(bias, (n_out,), "bias", "one value per output channel")
    return bias.astype(x.dtype, copy=False)


def _check_need_dx(need_dx) -> bool:
    if not isinstance(need_dx, (bool, np.bool_)):
        raise TypeError(f"need_dx must be a bool, got {need_dx!r}")
    return bool(need_dx)


def _check_dy(dy, shape: tuple, dtype) -> np.ndarray:
    dy = as_float_array(dy, "dy")
    check_shape(dy, shape, "dy", "the forward output's shape")
    return dy.astype(dtype, copy=False)


# --------------------------------------------------------------------------- Linear
class LinearCache(NamedTuple):
    x: np.ndarray          # (..., in)
    weight: np.ndarray     # (out, in), in x's dtype
    has_bias: bool


def linear_forward(x, weight, bias=None) -> tuple[np.ndarray, LinearCache]:
    """``y = x W^T + b`` over the last axis.

    Parameters
    ----------
    x : ndarray, shape (..., in_features), float32 or float64
    weight : ndarray, shape (out_features, in_features)
    bias : ndarray, shape (out_features,), optional

    Returns
    -------
    y : ndarray, shape (..., out_features), dtype of ``x``
    cache : LinearCache

    Examples
    --------
    >>> import numpy as np
    >>> y, _ = linear_forward(np.array([[1.0, 2.0]]), np.array([[1.0, -1.0], [0.5, 0.5]]),
    ...                       np.array([0.0, 10.0]))
    >>> y
    array([[-1. , 11.5]])
    """
    x = as_float_array(x, "x", min_ndim=1)
    weight = as_float_array(weight, "weight", ndim=2).astype(x.dtype, copy=False)
    if x.shape[-1] != weight.shape[1]:
        raise ValueError(f"x must have {weight.shape[1]} features in its last axis "
                         f"(weight.shape[1]), got shape {x.shape}")
    b = _check_bias(bias, weight.shape[0], x)
    y = x @ weight.T                                       # (..., out)
    if b is not None:
        y = y + b
    return y, LinearCache(x, weight, b is not None)


def linear_backward(dy, cache: LinearCache, *,
                    need_dx: bool = True) -> tuple[np.ndarray | None, dict[str, np.ndarray]]:
    """Gradients of :func:`linear_forward`: ``dx = dy W``, ``dW = dy^T x``, ``db = sum dy``.

    ``need_dx=False`` skips ``dx`` (returned as None), for a layer whose input needs no gradient.

    Returns
    -------
    dx : ndarray, shape (..., in_features), or None
    grads : dict
        ``'weight'`` of shape (out, in) and, if the forward had a bias, ``'bias'`` of shape (out,).
    """
    if not isinstance(cache, LinearCache):
        raise TypeError("cache must be the LinearCache returned by linear_forward")
    x, W = cache.x, cache.weight
    dy = _check_dy(dy, x.shape[:-1] + (W.shape[0],), x.dtype)
    dx = dy @ W if _check_need_dx(need_dx) else None       # (..., in)
    dy2 = dy.reshape(-1, W.shape[0])                       # (M, out)
    x2 = x.reshape(-1, W.shape[1])                         # (M, in)
    grads = {"weight": dy2.T @ x2}                         # (out, in)
    if cache.has_bias:
        grads["bias"] = dy2.sum(axis=0)                    # (out,)
    return dx, grads


class _Affine(Layer):
    """Shared construction of Linear / Conv layers: PyTorch-shaped ``weight`` and ``bias``."""

    def _init_params(self, weight_shape, fan_in, bias, rng, dtype):
        rng = check_rng(rng)
        dtype = check_dtype(dtype)
        if not isinstance(bias, (bool, np.bool_)):
            raise TypeError(f"bias must be a bool, got {bias!r}")
        self.params = {"weight": uniform_init(rng, weight_shape, fan_in, dtype)}
        if bias:
            self.params["bias"] = uniform_init(rng, (weight_shape[0],), fan_in, dtype)

    def _set_arrays(self, weight, bias, ndim):
        weight = np.array(as_float_array(weight, "weight", ndim=ndim))     # a copy
        self.params = {"weight": weight}
        if bias is not None:
            bias = np.array(as_float_array(bias, "bias", ndim=1), dtype=weight.dtype)
            check_shape(bias, (weight.shape[0],), "bias", "weight.shape[0] values")
            self.params["bias"] = bias

    def _grads_like_params(self, grads):
        return {k: g.astype(self.params[k].dtype, copy=False) for k, g in grads.items()}

    # Subclasses define ``_apply(x, weight) -> (y, cache)`` (the functional forward with the
    # layer's bias and geometry) and ``_apply_backward(dy, cache, need_dx=...) -> (dx, grads)``.
    def forward(self, x, train: bool = True):
        """``(y, cache)``; ``train`` must be a bool (these layers act the same in both modes)."""
        check_train(train)
        return self._apply(x, self.params["weight"])

    def backward(self, dy, cache, *, need_dx: bool = True):
        """``(dx, grads)`` with ``grads`` keyed and typed like ``params``; ``need_dx=False``
        skips the input gradient (``dx`` is None), e.g. for a first layer on the data."""
        dx, grads = self._apply_backward(dy, cache, need_dx=need_dx)
        return dx, self._grads_like_params(grads)


class Linear(_Affine):
    """Fully connected layer ``y = x W^T + b`` on the last axis (``torch.nn.Linear``).

    Parameters
    ----------
    in_features, out_features : int
    bias : bool
        Whether to learn an additive bias (default True, as PyTorch).
    rng : numpy.random.Generator
        Source of the initial values (PyTorch's default kaiming-uniform bound
        ``1/sqrt(in_features)`` for weight and bias).
    dtype : float32 or float64
        Parameter dtype (default float32, as PyTorch).

    Use :meth:`from_arrays` to build from given (e.g. checkpoint) arrays.

    Examples
    --------
    >>> import numpy as np
    >>> lin = Linear.from_arrays(np.array([[2.0, 0.0, 1.0]]), np.array([1.0]))
    >>> y, cache = lin.forward(np.ones((4, 3)))
    >>> y.ravel()
    array([4., 4., 4., 4.])
    >>> dx, grads = lin.backward(np.ones_like(y), cache)
    >>> grads["weight"], grads["bias"]
    (array([[4., 4., 4.]]), array([4.]))
    """

    def __init__(self, in_features: int, out_features: int, *, bias: bool = True, rng=None,
                 dtype=np.float32):
        super().__init__()
        self.in_features = check_int(in_features, "in_features", lo=1)
        self.out_features = check_int(out_features, "out_features", lo=1)
        self._init_params((self.out_features, self.in_features), self.in_features, bias, rng,
                          dtype)

    @classmethod
    def from_arrays(cls, weight, bias=None) -> "Linear":
        """A Linear layer holding copies of ``weight`` (out, in) and ``bias`` (out,) or None."""
        self = cls.__new__(cls)
        Layer.__init__(self)
        self._set_arrays(weight, bias, ndim=2)
        self.out_features, self.in_features = self.params["weight"].shape
        return self

    def _apply(self, x, weight):
        """The affine op with a given weight (the quantised layers pass theirs)."""
        return linear_forward(x, weight, self.params.get("bias"))

    _apply_backward = staticmethod(linear_backward)


# --------------------------------------------------------------------------- Conv1d, kernel 1
class Conv1x1Cache(NamedTuple):
    x: np.ndarray          # (N, C_in, L)
    weight: np.ndarray     # (C_out, C_in), in x's dtype
    has_bias: bool


def conv1x1_forward(x, weight, bias=None) -> tuple[np.ndarray, Conv1x1Cache]:
    """Pointwise 1-D convolution ``y[n, o, l] = sum_c W[o, c, 0] x[n, c, l] + b[o]``.

    Parameters
    ----------
    x : ndarray, shape (N, C_in, L), float32 or float64
    weight : ndarray, shape (C_out, C_in, 1)
        PyTorch's ``Conv1d`` weight layout.
    bias : ndarray, shape (C_out,), optional

    Returns
    -------
    y : ndarray, shape (N, C_out, L)
    cache : Conv1x1Cache

    Examples
    --------
    >>> import numpy as np
    >>> x = np.arange(6.0).reshape(1, 2, 3)          # two channels, three tokens
    >>> y, _ = conv1x1_forward(x, np.array([[[1.0], [1.0]]]))
    >>> y                                           # channel sum per token
    array([[[3., 5., 7.]]])
    """
    x = as_float_array(x, "x", ndim=3)
    weight = as_float_array(weight, "weight", ndim=3)
    if weight.shape[2] != 1:
        raise ValueError(f"weight must have kernel size 1 (shape (C_out, C_in, 1)), "
                         f"got shape {weight.shape}")
    W = weight[:, :, 0].astype(x.dtype, copy=False)        # (C_out, C_in)
    if x.shape[1] != W.shape[1]:
        raise ValueError(f"x must have {W.shape[1]} channels (weight.shape[1]) in axis 1, "
                         f"got shape {x.shape}")
    b = _check_bias(bias, W.shape[0], x)
    y = np.matmul(W, x)                                    # (N, C_out, L)
    if b is not None:
        y = y + b[:, None]
    return y, Conv1x1Cache(x, W, b is not None)


def conv1x1_backward(dy, cache: Conv1x1Cache, *,
                     need_dx: bool = True) -> tuple[np.ndarray | None, dict[str, np.ndarray]]:
    """Gradients of :func:`conv1x1_forward`: ``dx = W^T dy``, ``dW = sum_{n,l} dy x^T``,
    ``db = sum_{n,l} dy``; ``grads['weight']`` has PyTorch's shape (C_out, C_in, 1).
    ``need_dx=False`` skips ``dx`` (returned as None)."""
    if not isinstance(cache, Conv1x1Cache):
        raise TypeError("cache must be the Conv1x1Cache returned by conv1x1_forward")
    x, W = cache.x, cache.weight
    N, _, L = x.shape
    dy = _check_dy(dy, (N, W.shape[0], L), x.dtype)
    dx = np.matmul(W.T, dy) if _check_need_dx(need_dx) else None     # (N, C_in, L)
    dW = np.tensordot(dy, x, axes=([0, 2], [0, 2]))        # (C_out, C_in)
    grads = {"weight": dW[:, :, None]}                     # (C_out, C_in, 1)
    if cache.has_bias:
        grads["bias"] = dy.sum(axis=(0, 2))                # (C_out,)
    return dx, grads


class Conv1d(_Affine):
    """The official models' pointwise ``nn.Conv1d(C_in, C_out, kernel_size=1)`` on (N, C, L).

    Only ``kernel_size=1`` (stride 1, no padding) is implemented: it is a :class:`Linear` on the
    channel axis, with PyTorch's weight shape ``(C_out, C_in, 1)`` so checkpoints load by name.

    Parameters
    ----------
    in_channels, out_channels : int
    kernel_size : int
        Must be 1.
    bias : bool
        Default True, as PyTorch (the official spiking transformers pass ``bias=False``).
    rng : numpy.random.Generator
        Initial values, ``U(-1/sqrt(C_in), 1/sqrt(C_in))`` (PyTorch's default).
    dtype : float32 or float64

    Examples
    --------
    >>> import numpy as np
    >>> conv = Conv1d(4, 2, bias=False, rng=np.random.default_rng(0), dtype=np.float64)
    >>> y, cache = conv.forward(np.ones((3, 4, 5)))
    >>> y.shape, sorted(conv.params)
    ((3, 2, 5), ['weight'])
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 1, *,
                 bias: bool = True, rng=None, dtype=np.float32):
        super().__init__()
        self.in_channels = check_int(in_channels, "in_channels", lo=1)
        self.out_channels = check_int(out_channels, "out_channels", lo=1)
        if check_int(kernel_size, "kernel_size") != 1:
            raise ValueError(f"kernel_size must be 1 (only the pointwise Conv1d of the official "
                             f"models is implemented), got {kernel_size}")
        self._init_params((self.out_channels, self.in_channels, 1), self.in_channels, bias, rng,
                          dtype)

    @classmethod
    def from_arrays(cls, weight, bias=None) -> "Conv1d":
        """A Conv1d holding copies of ``weight`` (C_out, C_in, 1) and ``bias`` (C_out,) or None."""
        self = cls.__new__(cls)
        Layer.__init__(self)
        self._set_arrays(weight, bias, ndim=3)
        if self.params["weight"].shape[2] != 1:
            raise ValueError(f"weight must have shape (C_out, C_in, 1), "
                             f"got {self.params['weight'].shape}")
        self.out_channels, self.in_channels = self.params["weight"].shape[:2]
        return self

    def _apply(self, x, weight):
        return conv1x1_forward(x, weight, self.params.get("bias"))

    _apply_backward = staticmethod(conv1x1_backward)

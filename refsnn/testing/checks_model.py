"""Conformance checker for a whole model's logits (BESTformer family, BEST-12, BEST-15), with a
diagnosis by single configuration changes.

``candidate(x) -> logits``: ``x`` float64 images ``(B, C, H, W)``; the logits ``(B, K)`` are the
mean of the two heads (the official evaluation, ``(output0 + output) / 2``), or with
``heads=True`` a tuple ``(y_cls, y_dist)`` (one head for the baseline).  The candidate holds the
reference's weights (``reference.state_dict()``, official names).  Logits have no time axis: the
message names the first differing sample and logit, and shows both logit rows.

>>> import numpy as np
>>> from refsnn.models import from_config, model_config
>>> ref = from_config({**model_config("bestformer-1-16-tiny"), "embed_dims": 8, "num_heads": 1,
...                    "T": 1, "dtype": "float64"}, rng=np.random.default_rng(0))
>>> check_model(lambda x: sum(ref.forward(x, train=True)[:2]) / 2, ref, max_examples=3)
"""
from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

from ..models.registry import from_config
from ._kit import (ConformanceError, again, call_output, check_callable, check_max_examples,
                   diagnose, first_difference_close, search)
from .strategies import block_inputs, sizes

__all__ = ["check_model", "model_variants", "tiny_model"]

_RTOL, _ATOL = 1e-6, 1e-9


def _outputs(model, x, train, heads):
    out = model.forward(x, train=train)[:-1]                              # the logits
    return tuple(out) if heads else sum(out) / len(out)


def tiny_model(config: dict | None = None, *, rng, train: bool = True):
    """A tiny float64 BESTformer (BEST-12) whose attention (BEST-8/9) is active: a reference
    for tests and tutorials.

    Freshly initialised, the attention neurons of a tiny BESTformer never fire, so the BSSA
    order and the binariser do not change its logits and a check could not see them.  Here every
    block's q, k, v BatchNorms get weight 2 and bias 1.5, and ``lambda_attn`` the first of 3, 6,
    12, 24 at which the order and the binariser both change the logits on a probe image.
    ``config`` defaults to ``bestformer-1-16-tiny`` with D = 8, one head, T = 2.
    """
    from ..models.registry import model_config
    cfg = {**model_config("bestformer-1-16-tiny"), "embed_dims": 8, "num_heads": 1, "T": 2,
           "dtype": "float64"} if config is None else {**config, "dtype": "float64"}
    m = from_config(cfg, rng=rng)
    g = np.random.default_rng(20251207)
    x = np.round(g.normal(0.5, 1.5, size=(2, cfg["in_channels"], cfg["img_size_h"],
                                          cfg["img_size_w"])) * 4) / 4
    for lam in (3.0, 6.0, 12.0, 24.0):
        for k, v in m.params.items():
            part = k.split(".")[-2:] if ".attn." in k else ()
            if part and part[0][:1] in "qkv" and part[0].endswith("_bn"):
                v[...] = 2.0 if part[1] == "weight" else 1.5
            elif k.endswith("attn.lambda_attn"):
                v[...] = lam
        base = _outputs(m, x, train, False)
        found = [w for w, f in model_variants(m, train=train, heads=False)
                 if w.startswith(("BSSA order", "attention binariser"))
                 and not np.allclose(f(x), base)]
        if len(found) == 2:
            break
    return m


def model_variants(reference, *, train: bool, heads: bool) -> list:
    """Single configuration changes of ``reference`` with its weights: ``[(why, fn(x))]``."""
    cfg = reference.config
    changes = []
    other = {"qk_v": "q_kv", "q_kv": "qk_v"}.get(cfg.get("order"))
    if other:
        changes.append((f"BSSA order {other!r} instead of {cfg['order']!r}", {"order": other}))
    for b in ("bestformer-sr", "bestformer-official-attn0"):
        if cfg.get("binariser") not in (None, b):
            changes.append((f"attention binariser {b!r} instead of {cfg['binariser']!r}",
                            {"binariser": b}))
    for n in ("bestformer-hr", "bestformer-sr", "spikingjelly-soft", "bestformer-official"):
        if cfg.get("neuron") not in (None, n):
            changes.append((f"every LIF following {n!r} instead of {cfg['neuron']!r}",
                            {"neuron": n}))
    if cfg.get("attn_neuron") not in (None, "bestformer-official"):
        changes.append(("the attention neuron at threshold 1 ('bestformer-official') instead of "
                        f"{cfg['attn_neuron']!r}", {"attn_neuron": "bestformer-official"}))
    if "swap_heads" in cfg:
        changes.append(("the two heads swapped (swap_heads)", {"swap_heads": not cfg["swap_heads"]}))
    out = []
    state = reference.state_dict()
    for why, change in changes:
        try:
            m = from_config({**cfg, **change}, rng=np.random.default_rng(0))
            for store in (m.params, m.buffers):
                for k, v in store.items():
                    v[...] = state[k]
        except (KeyError, TypeError, ValueError):
            continue
        out.append((why, lambda x, m=m: _outputs(m, x, train, heads)))
    n = getattr(reference, "n_outputs", 1)
    if n > 1 and not heads:
        for k, nm in enumerate(("classification head only", "distillation head only")):
            out.append((f"the {nm} instead of the mean of the two heads",
                        lambda x, k=k: reference.forward(x, train=train)[k]))
    return out


def check_model(candidate, reference, *, heads: bool = False, B=(1, 2), train: bool = True,
                image_size=None, max_examples: int = 100, rtol: float = _RTOL,
                atol: float = _ATOL) -> None:
    """Check ``candidate(x)`` against the logits of a refsnn model (BEST-12, BEST-15).

    Parameters
    ----------
    candidate : callable
        ``x`` ``(B, C, H, W)`` float64 -> logits ``(B, K)`` (mean of the heads), or with
        ``heads=True`` a tuple of every head's logits.
    reference : model
        A refsnn model (:func:`refsnn.models.create` / ``from_config``) with ``forward(x, train)
        -> (*logits, cache)`` and a ``config``; build it with ``dtype="float64"``.
    heads : bool
    B : int or (lo, hi)
        Batch sizes drawn.
    train : bool
        BatchNorm mode (default training: batch statistics make untrained weights spike).
    image_size : (H, W) or None
        Input size; default the config's ``img_size_h``, ``img_size_w`` (BESTformer); needed for
        models whose config has none (Spikingformer, QSD, A2OS2A).
    max_examples : int
    rtol, atol : float

    Raises
    ------
    ConformanceError
        With the minimal input, the first differing sample and logit, both logit rows, and the
        single configuration change (BSSA order, binariser, neuron convention, head choice) of
        the reference that reproduces the candidate.
    CandidateError
        If the candidate raises or returns a wrong shape, dtype, NaN or inf.
    """
    __tracebackhide__ = True       # pytest shows the caller, not the kit
    check_callable(candidate)
    check_max_examples(max_examples)
    if not (callable(getattr(reference, "forward", None)) and hasattr(reference, "config")):
        raise TypeError(f"reference must be a refsnn model (forward and config), got "
                        f"{type(reference).__name__}")
    cfg = reference.config
    if image_size is None:
        if cfg.get("img_size_h") is None or cfg.get("img_size_w") is None:
            raise ValueError(f"image_size must be given: the config of {cfg.get('model')!r} names "
                             f"no input size (img_size_h, img_size_w)")
        image_size = (cfg["img_size_h"], cfg["img_size_w"])
    if not (isinstance(image_size, tuple) and len(image_size) == 2
            and all(isinstance(v, int) and v >= 1 for v in image_size)):
        raise ValueError(f"image_size must be a pair of positive ints (H, W), got {image_size!r}")
    (H, W), C, K = image_size, cfg["in_channels"], cfg["num_classes"]
    n = getattr(reference, "n_outputs", 1)

    fh, fw = (4 if H % 4 == 0 else 1), (4 if W % 4 == 0 else 1)

    @st.composite
    def images(draw):
        """Drawn at a quarter of the resolution, repeated 4x4, on the quarter-integer grid:
        few, simple values for Hypothesis to shrink (each call runs a whole model)."""
        x = draw(block_inputs((draw(sizes(B, "B")), C, H // fh, W // fw), coarse=True))
        return np.repeat(np.repeat(x, fh, axis=2), fw, axis=3)

    def shape(x):
        return tuple([(x.shape[0], K)] * n) if heads else (x.shape[0], K)

    ref = lambda x: _outputs(reference, x, train, heads)                  # noqa: E731
    cand = lambda x: call_output(candidate, (x,), shape(x), what="logits",  # noqa: E731
                                 n_out=n if heads else None)
    as_tuple = lambda o: o if isinstance(o, tuple) else (o,)              # noqa: E731

    def first(c, r):
        for k, (ci, ri) in enumerate(zip(as_tuple(c), as_tuple(r))):
            idx = first_difference_close(ci, ri, rtol=rtol, atol=atol)
            if idx is not None:
                return k, idx
        return None

    g = np.random.default_rng(20251207)
    hi = B[1] if isinstance(B, tuple) else B
    probes = [np.round(g.normal(0.5, 1.5, size=(hi, C, H, W)) * 4) / 4]
    r0 = as_tuple(ref(probes[0]))[0]
    if np.allclose(r0, r0.flat[0]):
        raise ValueError("reference is silent: its logits on the probe images are all equal, so "
                         "the check would be vacuous; use train=True or trained weights")
    x = search(lambda x: first(cand(x), ref(x)) is not None, images(),
               max_examples=max_examples, probes=probes, shrink_budget=150)
    if x is None:
        return
    r, c = as_tuple(ref(x)), as_tuple(cand(x))
    k, (b, j) = again(first(c, r))
    why = diagnose(cand, model_variants(reference, train=train, heads=heads), [x] + probes,
                   rtol=rtol, atol=atol)
    head = f"head {k} " if heads else ""
    fmt = lambda v: " ".join(f"{u:10.5g}" for u in v)                     # noqa: E731
    raise ConformanceError("\n".join(
        [f"candidate does not compute the logits of {cfg.get('model', 'the model')!r}: first "
         f"difference at {head}sample b={b}, logit {j} (logits have no time axis)",
         f"minimal counterexample: images x of shape {x.shape} (B, C, H, W), values in "
         f"[{x.min():g}, {x.max():g}]",
         f"logits of sample {b}:", f"  reference {fmt(r[k][b])}", f"  candidate {fmt(c[k][b])}",
         f"diagnosis: {why}"]))

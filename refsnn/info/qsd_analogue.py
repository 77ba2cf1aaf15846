"""Small-scale analogues of the QSD paper's Q-SDSA experiments on digits (QSD-F2b, QSD-F3b,
QSD-T6), with a result cache, and the exact part of Table 6 (QSD-10).

The paper trains QSD-Transformers on ImageNet.  Here tiny :class:`refsnn.models.QSDTransformer`
s (one transformer block, ``D = (8, 16)``, 2 heads, 4-bit LSQ weights) are trained for a few
epochs on scikit-learn's 8x8 digits (upsampled to 16x16), and the q, k, v of their Q-SDSA are
read on the test set.  One neuron family serves every cell: the **stateful IE-LIF with input
gain** ``b``, ``n[t] = floor(clip(b v[t], 0, b) + 1/2)``, ``a = n / b``, reset ``h = tau v - n/b``
(``ie_lif_preset("qsd-official", b=b, stateful=True, tau=0.5)``; QSD-9).  With ``b = 1`` it is a
binary LIF with threshold 1/2 and soft reset (the binary baseline, QSD-1..3); at ``T = 1`` with
``b = 4`` it is the official ``Multispike``.  So every cell's per-element *count* over the run,
``sum_t n[t]``, lies on ``{0, .., b T}``, and the binary baseline at ``T = 4`` and the IE-LIF at
``b = 4, T = 1`` share the lattice ``{0, .., 4}``: their score laws can be compared directly.

Scores recorded per model (pooled over q, k, v, all heads, tokens and test images):

* ``counts`` -- ``sum_t n[t]`` of the q, k, v neurons: the exact histogram on ``{0, .., b T}``;
* ``membrane`` -- a random subsample of the potentials the q, k, v neurons quantise (after MPRF);
* ``product`` -- a random subsample of the time-summed attention product ``q (k^T v) s``
  (before the attention neuron).

For the ANN counterpart (float weights, ReLU neurons) ``counts`` is absent and ``membrane`` holds
the pre-ReLU q, k, v: the linear projections an ANN attention reads.

Training: AdamW (weight decay 0 on 1-D parameters), a cosine schedule with one warm-up epoch,
cross-entropy on the time-mean logits.  The loop is :func:`train_model` here rather than
:func:`refsnn.train.train` because it clamps the LSQ step sizes ``*.alpha`` to ``>= 1e-4`` after
every step: with plain AdamW at ``lr = 3e-3`` a step size crossed zero within five epochs and
:func:`refsnn.quant.lsq.lsq_forward` (rightly) rejects it.

Results are cached as JSON keyed on a SHA-256 of the configuration (:func:`config_key`), so a
figure replots in seconds and retrains only when asked, or when the cache is missing or stale.

Examples
--------
>>> information_per_activation_bits(4, 1), information_per_activation_bits(1, 4)
(2.321928094887362, 4.0)
"""
from __future__ import annotations

import hashlib
import json
import math
import time
from pathlib import Path

import numpy as np

from .._checks import check_int

__all__ = ["CACHE_VERSION", "ie_lif_family", "model_kwargs", "init_mprf", "config_key",
           "train_model", "record_scores", "run_experiment", "score_samples", "statistics_rows",
           "histogram_rows", "load_or_run", "information_per_activation_bits",
           "virtual_time_steps_check"]

#: bumped when the meaning of a cached result changes (it is part of the cache key)
CACHE_VERSION = 3               # 3: MPRF evaluates with running statistics (QSD-12)


def ie_lif_family(b: int) -> dict:
    """JSON neuron spec of the stateful, gain-``b`` IE-LIF used by every cell (QSD-9).

    >>> ie_lif_family(1)
    {'preset': 'qsd-official', 'b': 1, 'stateful': True, 'tau': 0.5}
    """
    return {"preset": "qsd-official", "b": check_int(b, "b", 1, 8), "stateful": True, "tau": 0.5}


def model_kwargs(spec: dict) -> dict:
    """QSDTransformer keyword arguments for a cell spec ``{"b", "T", "mprf"}`` or ``{"ann": True}``.

    >>> model_kwargs({"b": 4, "T": 1, "mprf": True})["neuron"]["b"]
    4
    """
    base = dict(in_channels=1, num_classes=10, embed_dims=[8, 16], depth=1, heads=2,
                conv_blocks=0, layer_scale=1.0)
    if spec.get("ann"):
        return dict(base, T=1, weights="float", neuron="relu", attn_neuron="relu", mprf=False)
    b = check_int(spec["b"], "b", 1, 8)
    return dict(base, T=check_int(spec["T"], "T", 1, 16), weights="lsq", bits=4,
                neuron=ie_lif_family(b), attn_neuron=ie_lif_family(b), mprf=bool(spec["mprf"]))


def init_mprf(model, spec: dict) -> None:
    """Set the MPRF ``gamma``, ``alpha`` of every Q-SDSA to the QSD-11 entropy maximiser when
    ``spec["mprf_init"] == "max-entropy"`` (:func:`refsnn.info.ie_lif_max_entropy_mprf`, divided
    by the quantiser's gain ``b``); otherwise leave the initialisation (1, 0)."""
    init = spec.get("mprf_init", "default")
    if init == "default" or not spec.get("mprf"):
        return
    if init != "max-entropy":
        raise ValueError(f"mprf_init must be 'default' or 'max-entropy', got {init!r}")
    from .capacity import ie_lif_max_entropy_mprf
    b = spec["b"]
    gamma, alpha, _ = ie_lif_max_entropy_mprf(b)
    for name, p in model.params.items():
        if name.endswith("_mprf.gamma"):
            p[...] = gamma / b
        elif name.endswith("_mprf.alpha"):
            p[...] = alpha / b


def config_key(config: dict) -> str:
    """SHA-256 (hex) of the canonical JSON of ``config`` and :data:`CACHE_VERSION`.

    >>> config_key({"a": 1, "b": 2}) == config_key({"b": 2, "a": 1})
    True
    """
    text = json.dumps({"version": CACHE_VERSION, "config": config}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def train_model(model, data, *, epochs: int, batch_size: int, lr: float,
                rng: np.random.Generator) -> list[float]:
    """Train in place (AdamW, cosine schedule, 1 warm-up epoch unless ``epochs == 1``, LSQ step
    sizes clamped to ``>= 1e-4``); returns the test accuracy after every epoch."""
    from ..train import (AdamW, CosineSchedule, cross_entropy_backward, cross_entropy_forward,
                         evaluate, iterate_minibatches, n_batches, no_decay_1d)
    opt = AdamW(weight_decay=0.01, no_decay=no_decay_1d(model.params))
    sched = CosineSchedule(lr, total=epochs, warmup=min(1, epochs - 1), unit="epoch",
                           steps_per_epoch=n_batches(len(data.y_train), batch_size))
    step, acc = 0, []
    for _ in range(epochs):
        for xb, yb in iterate_minibatches(data.x_train, data.y_train, batch_size, rng):
            z, cache = model.forward(xb, train=True)
            _, lc = cross_entropy_forward(z, yb)
            opt.step(model.params, model.backward(cross_entropy_backward(1.0, lc), cache),
                     sched(step))
            for name, p in model.params.items():
                if name.endswith(".alpha") and "mprf" not in name:
                    np.maximum(p, p.dtype.type(1e-4), out=p)
            step += 1
        acc.append(evaluate(model, data.x_test, data.y_test))
    return acc


def _counts_of(neuron, out: np.ndarray) -> np.ndarray:
    """Integer counts ``n`` of a neuron's output ``a`` (``a * divisor``), rounded exactly."""
    return np.rint(out * neuron.spec.divisor).astype(np.int64)


def record_scores(model, x: np.ndarray, rng: np.random.Generator, *,
                  n_subsample: int = 1000) -> dict:
    """The q, k, v scores of block 0's Q-SDSA on images ``x`` (eval mode; module docstring).

    Returns ``{"counts": {level: number}, "membrane": [...], "product": [...]}`` (``counts``
    only for spiking neurons), the subsamples (``n_subsample`` values each, 5 significant
    digits; none if 0) drawn with ``rng``.
    """
    from ..attention import attention_product_forward
    _, cache = model.forward(x, train=False)
    ca = cache.inner[3][0][0]                                   # block 0's AttnCache
    attn = model.blocks[0][0]
    q, k, v = ca.core.qkv                                       # each (T, B, h, N, d)
    out = {}
    membranes = []
    counts = []
    for m in "qkv":
        neuron, c = attn.neurons[m], ca.neurons[m]
        if neuron.kind == "ie-lif":
            membranes.append(c.H.ravel() * neuron.spec.gain)        # in level units
            counts.append(_counts_of(neuron, c.A).sum(axis=0).ravel())
        elif neuron.kind == "relu":
            membranes.append(np.asarray(c).ravel())
        else:
            raise ValueError(f"record_scores expects IE-LIF or ReLU q, k, v neurons, got "
                             f"{neuron.kind!r}")
    Z, _ = attention_product_forward(q, k, v, order=attn.order, scale=attn.scale)
    product = np.asarray(Z).sum(axis=0).ravel()
    if counts:
        levels, number = np.unique(np.concatenate(counts), return_counts=True)
        out["counts"] = {str(int(a)): int(c) for a, c in zip(levels, number)}
    n_subsample = check_int(n_subsample, "n_subsample", lo=0)
    for key, values in (("membrane", np.concatenate(membranes)), ("product", product)):
        pick = rng.choice(values, min(n_subsample, values.size), replace=False)
        out[key] = [float(f"{a:.5g}") for a in pick]
    return out


def run_experiment(config: dict, *, progress=None) -> dict:
    """Train every model of ``config`` and record its scores (no cache; see :func:`load_or_run`).

    ``config``: ``{"seed": int, "epochs": int, "batch_size": int, "lr": float,
    "subsample": int (optional, default 1000), "models": {name: cell spec}}``; a cell spec is
    ``{"b", "T", "mprf"}`` (optionally ``"mprf_init": "max-entropy"``) or ``{"ann": true}``.
    Each model gets its own Generator from ``(seed, index)``.
    """
    from ..models.qsd import QSDTransformer
    from ..train import load_digits
    data = load_digits()
    results = {}
    for i, (name, spec) in enumerate(sorted(config["models"].items())):
        rng = np.random.default_rng([int(config["seed"]), i])
        model = QSDTransformer(rng=rng, **model_kwargs(spec))
        init_mprf(model, spec)
        t0 = time.perf_counter()
        acc = train_model(model, data, epochs=int(config["epochs"]),
                          batch_size=int(config["batch_size"]), lr=float(config["lr"]), rng=rng)
        seconds = time.perf_counter() - t0
        scores = record_scores(model, data.x_test, rng,
                               n_subsample=int(config.get("subsample", 1000)))
        results[name] = {"spec": spec, "test_acc": acc, "train_seconds": round(seconds, 2),
                         **scores}
        if progress is not None:
            progress(name, results[name])
    return results


def load_or_run(config: dict, cache_path, *, retrain: bool = False, progress=None,
                run=None) -> dict:
    """Results of :func:`run_experiment` (or of ``run(config, progress=...)``) from the JSON
    cache at ``cache_path`` if its key matches ``config`` (and ``retrain`` is false); otherwise
    run, write the cache, return.

    The returned dict has ``key``, ``config``, ``results`` and ``from_cache`` (bool).
    """
    path = Path(cache_path)
    key = config_key(config)
    if not retrain and path.is_file():
        try:
            cached = json.loads(path.read_text())
        except (OSError, ValueError):
            cached = None
        if isinstance(cached, dict) and cached.get("key") == key:
            return {**cached, "from_cache": True}
    results = (run or run_experiment)(config, progress=progress)
    record = {"key": key, "config": config, "results": results}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, sort_keys=True, separators=(",", ":")) + "\n")
    return {**record, "from_cache": False}


def score_samples(result: dict, variable: str) -> np.ndarray:
    """The recorded scores of one model as a flat array: ``"counts"`` expanded from the
    histogram (every sample), ``"membrane"`` or ``"product"`` (the subsamples)."""
    if variable == "counts":
        c = result.get("counts")
        if c is None:
            raise ValueError("this model has no spike counts (an ANN): use 'membrane'")
        return np.repeat(np.array([int(k) for k in c], dtype=np.float64),
                         np.array(list(c.values()), dtype=np.int64))
    if variable not in ("membrane", "product"):
        raise ValueError(f"variable must be 'counts', 'membrane' or 'product', got {variable!r}")
    return np.asarray(result[variable], dtype=np.float64)


def statistics_rows(results: dict, variables=("counts", "membrane", "product")) -> list[dict]:
    """One row per (model, variable) with :func:`refsnn.info.score_statistics` (QSD-F2b,
    QSD-F3b; plug-in entropy for the counts, histogram entropy for the real-valued membranes
    and products), the model's spec and its final test accuracy."""
    from .distribution import score_statistics
    rows = []
    for name, r in sorted(results.items()):
        for var in variables:
            if var == "counts" and "counts" not in r:
                continue
            st = score_statistics(score_samples(r, var), discrete=var == "counts")
            rows.append({"model": name, "spec": json.dumps(r["spec"], sort_keys=True),
                         "variable": var, **{k: (round(v, 6) if isinstance(v, float) else v)
                                              for k, v in st.items()},
                         "test_acc": r["test_acc"][-1]})
    return rows


def histogram_rows(results: dict, panels) -> list[dict]:
    """The histograms QSD-F2b and QSD-F3b draw, with the normal density of the same mean and
    sample standard deviation at each bin centre (the paper's red line).

    ``panels`` lists ``(model, variable)`` pairs of ``results`` (:func:`score_samples`).  The
    ``"counts"`` get unit bins centred on the lattice ``min, .., max``; a real-valued variable
    40 equal bins over its range.  ``density = count / (n width)``, so it sums to 1 over the bins
    of a panel once multiplied by the widths.

    Returns one dict per bin: ``model``, ``variable``, ``bin_left``, ``bin_right``, ``count``,
    ``density``, ``normal_pdf``.

    >>> rows = histogram_rows({"m": {"counts": {"0": 1, "1": 2, "2": 1}}}, [("m", "counts")])
    >>> [(r["bin_left"], r["count"], r["density"]) for r in rows]
    [(-0.5, 1, 0.25), (0.5, 2, 0.5), (1.5, 1, 0.25)]
    >>> round(rows[1]["normal_pdf"], 4)             # N(1, 0.8165^2) at its mean
    0.4886
    """
    from scipy import stats
    rows = []
    for model, var in panels:
        x = score_samples(results[model], var)
        if var == "counts":
            edges = np.arange(x.min() - 0.5, x.max() + 1.0)
        else:
            edges = np.linspace(x.min(), x.max(), 41)
        counts, _ = np.histogram(x, bins=edges)
        width = np.diff(edges)
        dens = counts / (x.size * width)
        centre = (edges[:-1] + edges[1:]) / 2
        pdf = stats.norm.pdf(centre, x.mean(), x.std(ddof=1))
        rows += [{"model": model, "variable": var, "bin_left": float(lo), "bin_right": float(hi),
                  "count": int(c), "density": float(d), "normal_pdf": float(p)}
                 for lo, hi, c, d, p in zip(edges[:-1], edges[1:], counts, dens, pdf)]
    return rows


# -- the exact part of Table 6 (QSD-T6, QSD-10) -------------------------------------------------
def information_per_activation_bits(b: int, T: int) -> float:
    """Most information one activation can carry over a run: ``T log2(b + 1)`` bits (QSD-T6).

    An IE-LIF (QSD-9) emits one of ``b + 1`` levels per step, so ``T`` steps have at most
    ``(b + 1)^T`` spike patterns (A2-19: ``C = log |X|``).  What a *layer* reads in QSD-10 is
    the count ``sum_t n[t]`` in ``{0, .., b T}``, at most ``log2(b T + 1)`` bits.

    >>> information_per_activation_bits(2, 2), round(math.log2(2 * 2 + 1), 4)
    (3.169925001442312, 2.3219)
    """
    b, T = check_int(b, "b", lo=1), check_int(T, "T", lo=1)
    return T * math.log2(b + 1)


def virtual_time_steps_check(rng: np.random.Generator, b: int = 4, *, n: int = 64,
                             d_out: int = 8) -> dict:
    """QSD-10 on random data: ``W (b a) == sum_k W s[k]`` with ``s = expand_to_spikes(a, b)``.

    Draws IE-LIF outputs ``a`` in ``{0, 1/b, .., 1}`` (``n`` of them) and integer weights
    ``W`` (``d_out, n``).  ``b a`` is the integer count (``(k / b) * b == k`` in float64 for
    ``b <= 8``), so both sides are sums of integers, exact in float64; ``b (W @ a)`` itself would
    carry rounding from the inexact ``k / b``.  Returns the largest absolute
    difference (0.0 when the law holds), the number of virtual steps and of spikes.

    >>> virtual_time_steps_check(np.random.default_rng(0))["max_abs_diff"]
    0.0
    """
    from ..neurons import expand_to_spikes
    b = check_int(b, "b", 1, 8)
    a = rng.integers(0, b + 1, size=n) / b                      # (n,) multi-bit activations
    W = rng.integers(-8, 9, size=(d_out, n)).astype(np.float64)   # (d_out, n)
    s = expand_to_spikes(a, b)                                  # (b, n) binary virtual steps
    lhs = W @ (b * a)                                           # (d_out,)
    rhs = sum(W @ s[k] for k in range(b))                       # (d_out,)
    return {"b": b, "virtual_steps": int(s.shape[0]), "spikes": int(s.sum()),
            "max_abs_diff": float(np.max(np.abs(lhs - rhs)))}

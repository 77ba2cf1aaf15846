"""Every LIF's spikes of a BESTformer's float eval path, for comparison with the packed path
(:mod:`refsnn.deploy.packed_model`; BEST-7, BEST-8, BEST-9, BEST-12).

>>> import numpy as np
>>> from refsnn.models import create
>>> model = create("bestformer-1-16-tiny", rng=np.random.default_rng(0))
>>> z_cls, z_dist, spikes = eval_spikes(model, np.zeros((1, 3, 8, 8), np.float32))
>>> spikes["block.0.attn.q_lif"].shape                    # (T, B, C, N)
(2, 1, 16, 4)
"""
from __future__ import annotations

import numpy as np

from .._checks import as_float_array, check_samples
from ..layers.linear import linear_forward
from ..neurons import lif_forward
from .packed_layers import check_bestformer

__all__ = ["eval_spikes"]


def eval_spikes(model, x):
    """The float eval path, ``model.forward(x, train=False)``, with every LIF's spikes:
    ``(z_cls, z_dist, spikes)`` keyed and shaped as :meth:`PackedBESTformer.forward_spikes`.

    Walks the model's public parts (tokenizer, each reversible block, BEST-12, the heads) in the
    model's order of operations; the tests check that its logits are
    bitwise ``model.forward``'s.  ``attn_lif0``'s spikes are recomputed from the attention map
    the branch cache holds (:meth:`refsnn.attention.BSSA.attention_map`).
    """
    check_bestformer(model)
    x = as_float_array(x, "x")
    check_samples(x)
    X = np.repeat(x[None], model.T, axis=0) if x.ndim == 4 else x
    tok, ctok = model.patch_embed.forward(X.astype(model.dtype, copy=False), False)
    spikes = {f"patch_embed.lif{s + 1}": S for s, S in enumerate(ctok.spikes)}
    T, B, D = tok.shape[:3]
    flat = lambda a: a.reshape(a.shape[:3] + (-1,))                       # noqa: E731
    x0, x1 = None, tok
    for j, blk in enumerate(model.stack.blocks):
        (x0, x1), c = blk.forward(x0, x1, train=False)                    # BEST-12
        p = f"block.{j}.attn."
        for nm, S in zip(("proj_lif", "q_lif", "k_lif", "v_lif", "attn_lif"), blk.F.spikes(c.cF)):
            spikes[p + nm] = flat(S)
        spikes[p + "attn_lif0"] = lif_forward(blk.F.attention_map(c.cF), blk.F.binariser).S
        S1, S2 = blk.G.spikes(c.cG)
        spikes[f"block.{j}.mlp.mlp1_lif"], spikes[f"block.{j}.mlp.mlp2_lif"] = flat(S1), flat(S2)
    f0, f1 = (y.reshape(T, B, D, -1).mean(axis=3).mean(axis=0) for y in (x0, x1))
    if model.config["swap_heads"]:
        f0, f1 = f1, f0
    hp = model.head_params
    z_cls = linear_forward(f0, hp["head.weight"], hp["head.bias"])[0]
    z_dist = linear_forward(f1, hp["head2.weight"], hp["head2.bias"])[0]
    return z_cls, z_dist, spikes

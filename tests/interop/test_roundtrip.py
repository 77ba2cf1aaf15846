"""Laws of the loaders: a refsnn model's own official-named state_dict loads back unchanged and
gives the same evaluation logits (BEST-12, BEST-15; SPF-5), for any small configuration."""
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from refsnn.interop import load_official_bestformer, load_official_spikingformer
from refsnn.models import BESTformer, Spikingformer

configs = st.fixed_dictionaries({"D": st.sampled_from([8, 16]), "heads": st.sampled_from([1, 2]),
                                 "L": st.integers(1, 2), "K": st.integers(1, 4),
                                 "ratio": st.sampled_from([1, 2, 1.5]),
                                 "seed": st.integers(0, 2 ** 16)})


def _randomise_bn(model, rng):
    for k, v in model.buffers.items():
        if k.endswith("running_mean"):
            v[...] = rng.normal(0.0, 0.5, v.shape)
        elif k.endswith("running_var"):
            v[...] = rng.uniform(0.5, 2.0, v.shape)


@settings(max_examples=6)
@given(configs)
def test_bestformer_state_dict_roundtrip_keeps_eval_logits_BEST_12(c):
    rng = np.random.default_rng(c["seed"])
    src = BESTformer(embed_dims=c["D"], num_heads=c["heads"], depths=c["L"], num_classes=c["K"],
                     mlp_ratios=c["ratio"], T=4, rng=rng, dtype=np.float64)
    _randomise_bn(src, rng)
    official = load_official_bestformer(src.state_dict())
    assert official.kwargs["mlp_ratios"] == c["ratio"] and official.kwargs["depths"] == c["L"]
    for k, v in official.state_dict().items():
        np.testing.assert_array_equal(v, src.state_dict()[k], err_msg=k)
    x = rng.normal(0.0, 1.0, (2, 3, 8, 8))
    y_cls, y_dist, _ = src.forward(x, train=False)
    got = official(x)
    np.testing.assert_array_equal(got[0], y_cls)
    np.testing.assert_array_equal(got[1], y_dist)


@settings(max_examples=6)
@given(configs, st.integers(1, 3))
def test_spikingformer_state_dict_roundtrip_keeps_eval_logits_SPF_5(c, T):
    rng = np.random.default_rng(c["seed"])
    src = Spikingformer(num_classes=c["K"], embed_dim=c["D"], depth=c["L"], heads=c["heads"],
                        mlp_ratio=c["ratio"], T=T, rng=rng, dtype="float64")
    _randomise_bn(src, rng)
    sd = {**src.state_dict(), **{f"block.{j}.norm{n}.{p}": np.ones(c["D"]) for j in range(c["L"])
                                 for n in (1, 2) for p in ("weight", "bias")}}
    official = load_official_spikingformer(sd, num_heads=c["heads"], T=T)
    assert official.state_dict().keys() == sd.keys()
    x = rng.normal(0.0, 1.0, (2, 3, 8, 8))
    np.testing.assert_array_equal(official(x), src.forward(x, train=False)[0])


def test_spikingformer_wrapper_state_dict_loads_again_with_the_unused_layernorms_SPF_5():
    """``load(official.state_dict())`` works and returns the same arrays: the official module's
    unused ``norm1``/``norm2`` LayerNorms are kept (torch's strict ``load_state_dict`` of the
    official ``vit_snn`` needs them), not dropped."""
    rng = np.random.default_rng(3)
    src = Spikingformer(num_classes=3, embed_dim=16, depth=1, heads=2, T=2, rng=rng,
                        dtype="float64")
    norms = {f"block.0.norm{n}.{p}": rng.normal(size=16) for n in (1, 2) for p in ("weight", "bias")}
    sd = {**src.state_dict(), **norms}
    official = load_official_spikingformer(sd, num_heads=2, T=2)
    out = official.state_dict()
    assert out.keys() == sd.keys()
    assert all(np.array_equal(out[k], sd[k]) for k in sd)
    again = load_official_spikingformer(out, num_heads=2, T=2)
    x = rng.normal(size=(1, 3, 8, 8))
    np.testing.assert_array_equal(again(x), official(x))
    out["block.0.norm1.weight"][0] = 7.0                        # copies, not views
    assert official.state_dict()["block.0.norm1.weight"][0] != 7.0

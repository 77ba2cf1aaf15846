"""The official loaders refuse state_dicts that are not the official module's, naming the keys."""
import numpy as np
import pytest

from refsnn.interop import load_official_bestformer, load_official_spikingformer
from refsnn.models import BESTformer, Spikingformer


@pytest.fixture(scope="module")
def best_state():
    return BESTformer(embed_dims=16, num_heads=2, depths=2, num_classes=3, T=4,
                      rng=np.random.default_rng(0)).state_dict()


@pytest.fixture(scope="module")
def spf_state():
    sd = Spikingformer(num_classes=3, embed_dim=16, depth=1, heads=2, T=2,
                       rng=np.random.default_rng(0)).state_dict()
    sd.update({f"block.0.norm{n}.{p}": np.ones(16, np.float32) for n in (1, 2)
               for p in ("weight", "bias")})
    return sd


def test_missing_extra_and_misshapen_keys_are_all_named(best_state):
    sd = dict(best_state)
    del sd["block.1.attn.q_bn.running_var"]
    del sd["head2.bias"]
    sd["block.0.attn.foo"] = np.zeros(3)
    sd["block.0.mlp.mlp1_conv.weight"] = np.zeros((32, 16, 1, 1))
    with pytest.raises(ValueError) as e:
        load_official_bestformer(sd, mlp_ratios=4)
    msg = str(e.value)
    for key in ("block.1.attn.q_bn.running_var", "head2.bias", "block.0.attn.foo",
                "block.0.mlp.mlp1_conv.weight: expected (64, 16, 1, 1), got (32, 16, 1, 1)"):
        assert key in msg, msg
    assert "missing keys" in msg and "unexpected keys" in msg and "wrong shapes" in msg


def test_keywords_that_contradict_the_shapes_name_the_keys(best_state):
    with pytest.raises(ValueError, match=r"head\.weight: expected \(7, 16\), got \(3, 16\)"):
        load_official_bestformer(best_state, num_classes=7)
    with pytest.raises(ValueError, match="missing keys.*block.2"):
        load_official_bestformer(best_state, depths=3)


def test_T_other_than_lambda_attn_explains_the_official_quirk(best_state):
    """The official RevSpikingTransformer never passes T on: lambda_attn has 4 steps."""
    with pytest.raises(ValueError, match="lambda_attn.*only runs with T = 4"):
        load_official_bestformer(best_state, T=2)


def test_unknown_keywords_and_non_mappings_are_type_errors(best_state):
    with pytest.raises(TypeError, match="unknown keyword.*embed_dim'"):
        load_official_bestformer(best_state, embed_dim=16)
    with pytest.raises(TypeError, match="state_dict must be a mapping"):
        load_official_bestformer([("head.weight", np.zeros((3, 16)))])
    with pytest.raises(TypeError, match=r"state_dict\['head.weight'\] must be a numeric array"):
        load_official_bestformer({**best_state, "head.weight": np.array(["a"])})
    with pytest.raises(ValueError, match="cannot infer in_channels, embed_dims, num_classes, "
                                         "depths, num_heads, T, mlp_ratios"):
        load_official_bestformer({})
    nan = best_state["block.1.mlp.mlp2_bn.weight"].copy()
    nan[0] = np.nan
    with pytest.raises(ValueError, match=r"NaN or inf in \['block.1.mlp.mlp2_bn.weight'\]"):
        load_official_bestformer({**best_state, "block.1.mlp.mlp2_bn.weight": nan})
    with pytest.raises(ValueError, match="constant_rows must be one of"):
        load_official_bestformer(best_state, constant_rows="nan")


def test_constant_binary_rows_are_refused_unless_zero_is_chosen(best_state):
    """A constant nonzero row: the official sign((w - mean)/0) depends on rounding (BEST-5)."""
    sd = dict(best_state)
    w = sd["block.0.attn.k_conv.weight"].copy()
    w[3] = 0.1
    sd["block.0.attn.k_conv.weight"] = w
    with pytest.raises(ValueError, match=r"block\.0\.attn\.k_conv\.weight rows \[3\]"):
        load_official_bestformer(sd)
    official = load_official_bestformer(sd, constant_rows="zero")
    assert official(np.zeros((1, 3, 8, 8))).__len__() == 2
    w[3] = 0.0                                      # all-zero rows binarise to 0 in both codes
    load_official_bestformer({**sd, "block.0.attn.k_conv.weight": w})


def test_npz_file_loads_like_a_dict(best_state, tmp_path):
    np.savez(tmp_path / "w.npz", **best_state)
    with np.load(tmp_path / "w.npz") as d:
        official = load_official_bestformer(d)
    assert official.kwargs["depths"] == 2 and "OfficialBESTformer(" in repr(official)


def test_spikingformer_requires_heads_T_and_its_unused_layernorms(spf_state):
    with pytest.raises(ValueError, match="num_heads must be given"):
        load_official_spikingformer(spf_state, T=2)
    with pytest.raises(ValueError, match="T must be given"):
        load_official_spikingformer(spf_state, num_heads=2)
    sd = {k: v for k, v in spf_state.items() if "norm2" not in k}
    with pytest.raises(ValueError, match=r"missing keys \['block.0.norm2.weight', "
                                         r"'block.0.norm2.bias'\]"):
        load_official_spikingformer(sd, num_heads=2, T=2)
    with pytest.raises(ValueError, match=r"block\.0\.attn\.proj_conv\.bias: expected \(16,\)"):
        load_official_spikingformer({**spf_state, "block.0.attn.proj_conv.bias": np.zeros(8)},
                                    num_heads=2, T=2)
    with pytest.raises(ValueError, match="multiple of 8 .* and of num_heads"):
        load_official_spikingformer(spf_state, num_heads=3, T=2)
    official = load_official_spikingformer(spf_state, num_heads=2, T=2, img_size_h=8,
                                           img_size_w=8, patch_size=4, sr_ratios=1)
    assert official.kwargs["mlp_ratios"] == 4 and official.kwargs["img_size_h"] == 8
    assert official(np.zeros((1, 3, 8, 8), np.float32)).dtype == np.float64


def test_an_empty_batch_is_rejected_naming_the_argument(spf_state):
    """B = 0 ended in numpy's 'cannot reshape array of size 0'; the loaders' modules name the
    argument (the forward, the intermediates and the parts)."""
    best = load_official_bestformer(BESTformer(embed_dims=16, num_heads=2, depths=1,
                                               num_classes=3, T=4,
                                               rng=np.random.default_rng(0)).state_dict())
    empty = np.zeros((0, 3, 8, 8))
    for call in (best, best.predict, best.intermediates):
        with pytest.raises(ValueError, match="x must hold at least one sample"):
            call(empty)
    with pytest.raises(ValueError, match="X must hold at least one sample"):
        best.patch_embed(np.zeros((4, 0, 3, 8, 8)))
    with pytest.raises(ValueError, match="x1 must hold at least one sample"):
        best.block(0, None, np.zeros((4, 0, 16, 2, 2)))
    spf = load_official_spikingformer(spf_state, num_heads=2, T=2)
    for call in (spf, spf.intermediates):
        with pytest.raises(ValueError, match="x must hold at least one sample"):
            call(empty)


def test_numpy_scalar_keywords_are_accepted_like_python_numbers():
    """``mlp_ratios=np.int64(4)`` (e.g. read from a config array) was refused as 'not a
    positive number'."""
    sd = BESTformer(embed_dims=16, num_heads=2, depths=1, num_classes=3, T=4, mlp_ratios=4,
                    rng=np.random.default_rng(0)).state_dict()
    for v in (np.int64(4), np.float32(4.0), 4, 4.0):
        assert load_official_bestformer(sd, mlp_ratios=v).kwargs["mlp_ratios"] == 4
    with pytest.raises(ValueError, match="mlp_ratios must be a positive number"):
        load_official_bestformer(sd, mlp_ratios=np.bool_(True))

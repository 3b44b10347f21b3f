"""Action views: invertible mappings between the native Dict and the flat SB3 views."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vmimo_env.config import ScenarioConfig
from vmimo_env.spaces import ActionLayout, normalise_shares

LAYOUT = ActionLayout.from_config(ScenarioConfig())


def test_nvec_matches_config() -> None:
    cfg = ScenarioConfig()
    nvec = LAYOUT.nvec
    K, G = cfg.num_devices, cfg.num_groups
    assert nvec.shape == (3 * K + G,)
    assert (nvec[:K] == G + 1).all()
    assert (nvec[K:2 * K] == len(cfg.power_levels_db)).all()
    assert (nvec[2 * K:3 * K] == len(cfg.compression_levels)).all()
    assert (nvec[3 * K:] == 5).all()


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 2**32 - 1))
def test_multidiscrete_round_trip(seed: int) -> None:
    a = LAYOUT.space("multidiscrete", seed=seed).sample()
    native = LAYOUT.from_multidiscrete(a)
    assert np.array_equal(LAYOUT.to_multidiscrete(native), a)
    assert LAYOUT.dict_space().contains({k: (v.astype(np.float32) if k == "bandwidth" else v)
                                         for k, v in native.items()})


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 2**32 - 1))
def test_dict_box_dict_round_trip(seed: int) -> None:
    native = LAYOUT.dict_space(seed=seed).sample()
    back = LAYOUT.from_box(LAYOUT.to_box(native))
    for key in ("group", "power", "compression"):
        assert np.array_equal(back[key], native[key]), key
    np.testing.assert_allclose(back["bandwidth"], native["bandwidth"], atol=1e-6)


def test_box_bins_cover_every_index_uniformly() -> None:
    # the failure mode of gymnasium's generic flatten: continuous samples collapsing onto index 0
    x = LAYOUT.space("box", seed=0)
    samples = np.stack([x.sample() for _ in range(4000)])
    native = LAYOUT.from_box(samples)
    counts = np.bincount(native["group"].ravel(), minlength=LAYOUT.num_groups + 1)
    frac = counts / counts.sum()
    assert np.all(np.abs(frac - 1 / (LAYOUT.num_groups + 1)) < 0.03), frac


def test_box_clips_out_of_range_and_edges() -> None:
    x = np.full(LAYOUT.flat_dim, 5.0, dtype=np.float32)
    native = LAYOUT.from_box(x)
    assert (native["group"] == LAYOUT.num_groups).all()
    assert (native["bandwidth"] == 1.0).all()
    native = LAYOUT.from_box(-x)
    assert (native["group"] == 0).all() and (native["bandwidth"] == 0.0).all()


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_box_rejects_nan_inf(bad: float) -> None:
    x = np.zeros(LAYOUT.flat_dim, dtype=np.float32)
    x[3] = bad
    with pytest.raises(ValueError, match="NaN or inf"):
        LAYOUT.from_box(x)


def test_multidiscrete_errors_name_the_field() -> None:
    a = np.zeros(LAYOUT.flat_dim, dtype=np.int64)
    a[LAYOUT.num_devices + 2] = 99
    with pytest.raises(ValueError, match=r"power\[2\]"):
        LAYOUT.from_multidiscrete(a)
    with pytest.raises(ValueError, match="last dimension"):
        LAYOUT.from_multidiscrete(np.zeros(3, dtype=np.int64))
    with pytest.raises(ValueError, match="integers"):
        LAYOUT.from_multidiscrete(np.full(LAYOUT.flat_dim, 0.5))


def test_native_validation() -> None:
    good = LAYOUT.dict_space(seed=1).sample()
    LAYOUT.validate_native(good)
    with pytest.raises(ValueError, match="missing"):
        LAYOUT.validate_native({k: v for k, v in good.items() if k != "power"})
    bad = dict(good, group=np.full(LAYOUT.num_devices, LAYOUT.num_groups + 1))
    with pytest.raises(ValueError, match=r"action\['group'\]"):
        LAYOUT.validate_native(bad)
    with pytest.raises(ValueError, match="numeric"):
        LAYOUT.validate_native(dict(good, compression=np.array(["a"] * LAYOUT.num_devices)))
    with pytest.raises(ValueError, match="must be a dict"):
        LAYOUT.validate_native([1, 2, 3])


def test_normalise_shares_caps_total_at_one() -> None:
    assert np.allclose(normalise_shares(np.array([0.2, 0.3, 0.1])), [0.2, 0.3, 0.1])
    s = normalise_shares(np.array([1.0, 1.0, 0.0]))
    assert np.allclose(s, [0.5, 0.5, 0.0]) and np.isclose(s.sum(), 1.0)


# ---------------------------------------------------------------------- batch shapes and dtypes, every view
K, G, D = LAYOUT.num_devices, LAYOUT.num_groups, LAYOUT.flat_dim


def _native(lead: tuple[int, ...] = ()) -> dict[str, np.ndarray]:
    return {"group": np.ones((*lead, K), np.int64), "power": np.zeros((*lead, K), np.int64),
            "compression": np.zeros((*lead, K), np.int64), "bandwidth": np.full((*lead, G), 0.5, np.float32)}


@pytest.mark.parametrize("key", ["group", "power", "compression", "bandwidth"])
@pytest.mark.parametrize("lead", [(1,), (2,), (1, 1)])
def test_unbatched_native_rejects_batch_shaped_part(key: str, lead: tuple[int, ...]) -> None:
    a = _native()
    a[key] = _native(lead)[key]
    with pytest.raises(ValueError, match=rf"action\['{key}'\] must have shape \({a[key].shape[-1]},\).*got shape"):
        LAYOUT.validate_native(a, batch=None)


@pytest.mark.parametrize("lead", [(1,), (2,)])
def test_unbatched_flat_views_reject_batch_shapes(lead: tuple[int, ...]) -> None:
    with pytest.raises(ValueError, match=rf"shape \({D},\).*got shape \({lead[0]}, {D}\)"):
        LAYOUT.from_multidiscrete(np.zeros((*lead, D), np.int64), batch=None)
    with pytest.raises(ValueError, match=rf"shape \({D},\).*got shape"):
        LAYOUT.from_box(np.zeros((*lead, D), np.float32), batch=None)


def test_batched_decoders_require_the_batch_size() -> None:
    for n in (1, 3):
        assert LAYOUT.validate_native(_native((n,)), batch=n)["group"].shape == (n, K)
        assert LAYOUT.from_multidiscrete(np.zeros((n, D), np.int64), batch=n)["power"].shape == (n, K)
        assert LAYOUT.from_box(np.zeros((n, D), np.float32), batch=n)["bandwidth"].shape == (n, G)
    with pytest.raises(ValueError, match=rf"bandwidth.*shape \(3, {G}\).*batch of 3.*got shape \({G},\)"):
        LAYOUT.validate_native(dict(_native((3,)), bandwidth=np.zeros(G)), batch=3)
    with pytest.raises(ValueError, match=r"shape \(3, \d+\).*got shape \(2, \d+\)"):
        LAYOUT.from_box(np.zeros((2, D)), batch=3)
    with pytest.raises(ValueError, match="batch must be"):
        LAYOUT.from_box(np.zeros(D), batch=0)


def test_any_batch_requires_consistent_leading_axes() -> None:
    a = _native((2,))
    a["power"] = np.zeros((3, K), np.int64)
    with pytest.raises(ValueError, match=r"action\['power'\] has shape \(3, 8\)"):
        LAYOUT.validate_native(a)


@pytest.mark.parametrize("key", ["group", "power", "compression", "bandwidth"])
def test_complex_and_bool_parts_are_refused(key: str) -> None:
    a = _native()
    n = a[key].shape[0]
    a[key] = np.full(n, 1 + 7j)
    with pytest.raises(ValueError, match=rf"action\['{key}'\] must be real, got the complex"):
        LAYOUT.validate_native(a, batch=None)
    a[key] = np.ones(n, dtype=bool)
    with pytest.raises(ValueError, match=rf"action\['{key}'\] must be a numeric .*bool"):
        LAYOUT.validate_native(a, batch=None)
    with pytest.raises(ValueError, match="complex"):
        LAYOUT.from_box(np.zeros(D, np.complex64), batch=None)
    with pytest.raises(ValueError, match="bool"):
        LAYOUT.from_multidiscrete(np.zeros(D, bool), batch=None)


def test_huge_float_index_is_out_of_range_not_wrapped() -> None:
    a = _native()
    a["group"] = np.full(K, 1e300)
    with pytest.raises(ValueError, match=r"action\['group'\] values must be in \[0, 3\]"):
        LAYOUT.validate_native(a, batch=None)
    flat = np.zeros(D)
    flat[K] = 1e300
    with pytest.raises(ValueError, match=r"power\[0\]"):
        LAYOUT.from_multidiscrete(flat, batch=None)


def test_errors_on_large_arrays_stay_short() -> None:
    with pytest.raises(ValueError) as err:
        LAYOUT.from_multidiscrete(np.full((1000, D), 0.5), batch=1000)
    assert len(str(err.value)) < 400


@settings(max_examples=200, deadline=None)
@given(seed=st.integers(0, 10_000), batch=st.sampled_from([None, 3]),
       mutation=st.sampled_from(["none", "range", "share_nan", "share_high", "dtype32", "shape", "scalar_share",
                                 "extra_key", "list"]))
def test_fast_native_check_agrees_with_the_full_validation(seed: int, batch: int | None, mutation: str) -> None:
    """``validate_native`` first tries a few-call check for the common case (a dict of int64 arrays and float
    shares); whatever it accepts must equal what the full validation returns, and what it cannot vouch for goes
    to the full validation (same errors)."""
    rng = np.random.default_rng(seed)
    lead = () if batch is None else (batch,)
    K, G = LAYOUT.num_devices, LAYOUT.num_groups
    action = {"group": rng.integers(0, G + 1, (*lead, K)), "power": rng.integers(0, LAYOUT.num_power, (*lead, K)),
              "compression": rng.integers(0, LAYOUT.num_compression, (*lead, K)),
              "bandwidth": rng.random((*lead, G)).astype(np.float32)}
    if mutation == "range":
        action["power"] = action["power"].copy()
        action["power"].flat[0] = LAYOUT.num_power
    elif mutation == "share_nan":
        action["bandwidth"].flat[0] = np.nan
    elif mutation == "share_high":
        action["bandwidth"].flat[0] = 1.7
    elif mutation == "dtype32":
        action["group"] = action["group"].astype(np.int32)
    elif mutation == "shape":
        action["compression"] = action["compression"][..., :-1]
    elif mutation == "scalar_share":
        action["bandwidth"] = np.float32(0.5)
    elif mutation == "extra_key":
        action["extra"] = 1
    elif mutation == "list":
        action["group"] = action["group"].tolist()

    def run(fn):
        try:
            return fn()
        except ValueError as err:
            return f"ValueError: {err}"

    got = run(lambda: LAYOUT.validate_native(action, batch=batch))
    full = run(lambda: LAYOUT.validate_native(_NotADict(action), batch=batch))
    if isinstance(full, str) or isinstance(got, str):
        assert got == full
    else:
        assert got.keys() == full.keys()
        for k in got:
            assert got[k].dtype == full[k].dtype
            np.testing.assert_array_equal(got[k], full[k])
    if mutation in ("range", "share_nan", "shape", "scalar_share", "extra_key"):
        assert isinstance(got, str)
    if mutation == "share_high":
        assert not isinstance(got, str) and got["bandwidth"].max() <= 1.0
    if mutation in ("none", "share_high"):  # the common case must take the fast check, also once pickled
        import pickle

        assert LAYOUT.validate_native_fast(action, lead) is not None
        assert LAYOUT.validate_native_fast(pickle.loads(pickle.dumps(action)), lead) is not None


class _NotADict(dict):
    """A dict subclass: ``validate_native`` skips its fast check (which takes exact dicts only)."""

"""jaxwvae.evaluation.inception against pytorch-fid 0.3.0's own InceptionV3, both holding the same random weights.

The real weights (pt_inception-2015-12-05-6726825d.pth) cannot be downloaded here, so the
reference is pytorch-fid's module built exactly as FID uses it, with its weight download
(``pytorch_fid.inception.load_state_dict_from_url``) replaced by a seeded random state dict of
the same names and shapes. The test dependencies: torch, torchvision, pytorch-fid (see
BUILD.md / .ci/run); without them the comparisons skip and the rest still runs.
"""

import importlib.util
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxwvae.errors import UserError
from jaxwvae.evaluation import inception as inc
from jaxwvae.evaluation import inception_net

# Max |port - reference| over max |reference|, for the features and every intermediate.
# Both sides compute in float32 through ~100 conv/BN/ReLU layers (oneDNN in torch, XLA here)
# with different summation orders: measured on x86 CPU, 4e-7..2.5e-6 of the scale (growing
# with depth; 5e-7..7e-7 for the pool3 features). Real port errors measured with these weights
# are far larger: count_include_pad=True in the FID average pools 5e-2, an average pool in
# place of FIDInceptionE_2's max pool 0.25, kernels with H and W swapped 0.15. 1e-4 leaves
# ~40x headroom over float noise (other CPUs, other conv algorithms) and ~500x under a bug.
REL_TOL = 1e-4
# F.interpolate alone: a few float32 roundings of values in [0, 1].
RESIZE_ATOL = 1e-6


# --------------------------------------------------------------------------------------
# The reference: pytorch-fid's module, weights random but shared.


def _import_reference():
    """(torch, pytorch_fid.inception), or skip when the test dependencies are not installed.

    torchvision's wheel from PyPI is built against a CUDA torch; beside the CPU-only torch its
    C extension cannot load, and then its import stops at registering a fake kernel for the
    ops ``torchvision::nms``/``qnms`` that the extension would have defined. pytorch-fid uses
    none of torchvision's C ops (only the Inception3 model code), so in that case the two op
    schemas are declared here and the import is retried.
    """
    torch = pytest.importorskip("torch")
    if importlib.util.find_spec("torchvision") is None:
        pytest.skip("torchvision not installed (pip install torchvision, matching torch)")
    pytest.importorskip("pytorch_fid", reason="pytorch-fid not installed (pip install pytorch-fid==0.3.0)")
    try:
        import torchvision  # noqa: F401
    except RuntimeError as e:
        if "torchvision::nms" not in str(e):
            raise
        for name in [m for m in sys.modules if m == "torchvision" or m.startswith("torchvision.")]:
            del sys.modules[name]
        lib = torch.library.Library("torchvision", "DEF")
        lib.define("nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
        lib.define("qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
        _KEEP_ALIVE.append(lib)  # the schemas live as long as this object
        import torchvision  # noqa: F401
    import pytorch_fid.inception as fid_inception

    return torch, fid_inception


_KEEP_ALIVE: list = []


def _random_state_dict(torch, fid_inception):
    """Seeded random weights with every name and shape of the FID Inception state dict.

    He-normal convs, BN running stats near (0, 1) and affine near (1, 0): each BasicConv2d
    roughly keeps the second moment of its input, so the 2048-d output has std ~1 (checked
    in the test), neither vanishing nor exploding.
    """
    # torchvision's Inception3 without aux logits has exactly the FID model's names and shapes
    # (pytorch-fid's FID blocks subclass torchvision's and only change forward()).
    skeleton = fid_inception._inception_v3(num_classes=1008, aux_logits=False, weights=None)
    gen = torch.Generator().manual_seed(2015_12_05)
    state = {}
    for name, value in skeleton.state_dict().items():
        shape = value.shape
        if name.endswith("conv.weight"):
            fan_in = shape[1] * shape[2] * shape[3]
            state[name] = torch.randn(shape, generator=gen) * (2.0 / fan_in) ** 0.5
        elif name.endswith("bn.weight"):
            state[name] = 1.0 + 0.1 * torch.randn(shape, generator=gen)
        elif name.endswith("bn.bias") or name.endswith("running_mean"):
            state[name] = 0.1 * torch.randn(shape, generator=gen)
        elif name.endswith("running_var"):
            state[name] = 0.5 + torch.rand(shape, generator=gen)
        elif name.endswith("num_batches_tracked"):
            state[name] = torch.tensor(0)
        elif name.startswith("fc."):
            state[name] = 0.01 * torch.randn(shape, generator=gen)
        else:
            raise AssertionError(f"unexpected parameter {name} in torchvision's Inception3")
    return state


@pytest.fixture(scope="module")
def reference():
    """(torch, pytorch-fid InceptionV3 for 2048-d features in eval mode, its state dict)."""
    torch, fid_inception = _import_reference()
    state = _random_state_dict(torch, fid_inception)
    mp = pytest.MonkeyPatch()
    # fid_inception_v3() fetches FID_WEIGHTS_URL with this; hand it the random weights instead.
    mp.setattr(fid_inception, "load_state_dict_from_url", lambda url, progress=True, **kw: state)
    try:
        net = fid_inception.InceptionV3(
            [fid_inception.InceptionV3.BLOCK_INDEX_BY_DIM[2048]],
            resize_input=True,
            normalize_input=True,
            use_fid_inception=True,
        ).eval()
    finally:
        mp.undo()
    return torch, net, state


def _torch_features(torch, net, images_nhwc, hooks=()):
    """pytorch-fid's forward on NHWC [0, 1] images (grey repeated to RGB, as its loaders do)."""
    x = torch.from_numpy(np.ascontiguousarray(images_nhwc)).permute(0, 3, 1, 2)
    if x.shape[1] == 1:
        x = x.repeat(1, 3, 1, 1)
    captured = {}
    handles = [
        module.register_forward_hook(lambda m, i, o, name=name: captured.__setitem__(name, o.permute(0, 2, 3, 1)))
        for name, module in hooks
    ]
    try:
        with torch.no_grad():
            (out,) = net(x)
    finally:
        for h in handles:
            h.remove()
    assert out.shape[2:] == (1, 1)
    return out[:, :, 0, 0].numpy(), {k: v.numpy() for k, v in captured.items()}


def _assert_close(port, ref, what):
    assert port.shape == ref.shape, what
    scale = float(np.abs(ref).max())
    err = float(np.abs(port - ref).max())
    assert err <= REL_TOL * scale, f"{what}: max |diff| {err:.3g} > {REL_TOL} x max |ref| {scale:.3g}"


# --------------------------------------------------------------------------------------
# The port against the reference.

RNG = np.random.default_rng(2109_14795)
GREY28 = RNG.random((4, 28, 28, 1), dtype=np.float32)
RGB64 = RNG.random((3, 64, 64, 3), dtype=np.float32)


@pytest.mark.slow  # imports torch
@pytest.mark.parametrize("size", [(28, 28), (64, 64), (299, 299), (30, 45), (512, 400), (7, 300)])
def test_resize_matches_torch_interpolate(size):
    torch, _ = _import_reference()
    images = RNG.random((2, *size, 3), dtype=np.float32)
    ref = torch.nn.functional.interpolate(
        torch.from_numpy(images).permute(0, 3, 1, 2), size=(299, 299), mode="bilinear", align_corners=False
    ).permute(0, 2, 3, 1).numpy()
    port = np.asarray(inception_net.resize_bilinear_torch(jnp.asarray(images), (299, 299)))
    np.testing.assert_allclose(port, ref, rtol=0, atol=RESIZE_ATOL)


@pytest.mark.slow  # the PyTorch reference: imports torch, runs InceptionV3 twice
def test_grey_features_and_intermediates_match_pytorch_fid(reference):
    torch, net, state = reference
    blocks = net.blocks
    # Torch submodules whose outputs the port's same-named submodules must reproduce.
    hooks = [
        ("Conv2d_1a_3x3", blocks[0][0]),  # first conv block: resize, normalisation, conv, BN
        ("Conv2d_4a_3x3", blocks[1][1]),
        ("Mixed_5b", blocks[2][0]),  # first FIDInceptionA (avg pool without the padding)
        ("Mixed_6a", blocks[2][3]),
        ("Mixed_6e", blocks[2][7]),  # 768-d, the aux classifier's input
        ("Mixed_7b", blocks[3][1]),  # FIDInceptionE_1
        ("Mixed_7c", blocks[3][2]),  # FIDInceptionE_2 (max pool)
    ]
    ref, ref_mid = _torch_features(torch, net, GREY28, hooks)
    # Random weights that neither vanish nor explode: the comparison means something.
    assert 0.1 < ref.std() < 10, ref.std()

    variables = inc.variables_from_torch_state_dict(state)
    apply = jax.jit(lambda v, x: inception_net.FIDInceptionV3().apply(v, x, capture_intermediates=True,
                                                                      mutable=["intermediates"]))
    port, state_out = apply(variables, jnp.asarray(GREY28))
    mid = state_out["intermediates"]
    for name, _ in hooks:
        _assert_close(np.asarray(mid[name]["__call__"][0]), ref_mid[name], name)
    _assert_close(np.asarray(port), ref, "pool3 features")


@pytest.mark.slow  # the PyTorch reference: imports torch, runs InceptionV3 twice
def test_rgb_features_match_pytorch_fid(reference):
    torch, net, state = reference
    ref, _ = _torch_features(torch, net, RGB64)
    assert 0.1 < ref.std() < 10, ref.std()
    # The convenience wrapper, in batches of 2: the last one is zero-padded, the rows the same.
    feats = inc.inception_features(inc.variables_from_torch_state_dict(state), RGB64, batch_size=2)
    assert feats.dtype == np.float32 and feats.shape == (3, inception_net.FEATURE_DIM)
    _assert_close(feats, ref, "pool3 features, 64x64 RGB")


@pytest.mark.slow  # the PyTorch reference: imports torch, runs InceptionV3 twice
def test_pth_and_npz_files_load_to_the_same_features(reference, tmp_path):
    torch, _, state = reference
    pth, npz = tmp_path / inc.FID_WEIGHTS_FILENAME, tmp_path / "inception.npz"
    torch.save(state, pth)
    # What a user without torch would ship: the same names as numpy arrays.
    np.savez(npz, **{k: v.numpy() for k, v in state.items()})
    direct = inc.variables_from_torch_state_dict(state)
    from_pth, from_npz = inc.load_weights(pth), inc.load_weights(str(npz))
    for loaded in (from_pth, from_npz):
        assert jax.tree.structure(loaded) == jax.tree.structure(direct)
        for a, b in zip(jax.tree.leaves(loaded), jax.tree.leaves(direct), strict=True):
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    # Same shapes as in test_rgb_features_match_pytorch_fid: the compiled program is reused.
    expected = inc.inception_features(direct, RGB64, batch_size=2)
    np.testing.assert_array_equal(inc.inception_features(from_npz, RGB64, batch_size=2), expected)


# --------------------------------------------------------------------------------------
# Without torch: names, shapes and errors.


@pytest.fixture(scope="module")
def numpy_state():
    """A numpy state dict of the right names and shapes, built from the port's own init."""
    shapes = inc._expected_shapes()
    state = {}
    for path, shape in shapes.items():
        name = inc._torch_name(path)
        if path[-1] == "kernel":  # HWIO -> OIHW
            shape = (shape[3], shape[2], shape[0], shape[1])
        state[name] = np.full(shape, 0.5, np.float32)
    return state


def test_converter_accepts_numpy_and_ignores_fc_and_counters(numpy_state):
    assert len(numpy_state) == 94 * 5  # 94 BasicConv2d: conv weight + 4 BN tensors
    extra = dict(numpy_state, **{"fc.weight": np.zeros((1008, 2048)), "Mixed_5b.branch1x1.bn.num_batches_tracked": 0})
    variables = inc.variables_from_torch_state_dict(extra)
    assert set(variables) == {"params", "batch_stats"}
    assert variables["params"]["Conv2d_1a_3x3"]["conv"]["kernel"].shape == (3, 3, 3, 32)
    assert variables["params"]["Mixed_6b"]["branch7x7_2"]["conv"]["kernel"].shape == (1, 7, 128, 128)
    assert variables["batch_stats"]["Mixed_7c"]["branch_pool"]["bn"]["var"].shape == (192,)


def test_converter_transposes_oihw_to_hwio(numpy_state):
    state = dict(numpy_state)
    w = np.arange(32 * 3 * 3 * 3, dtype=np.float32).reshape(32, 3, 3, 3)
    state["Conv2d_1a_3x3.conv.weight"] = w
    kernel = np.asarray(inc.variables_from_torch_state_dict(state)["params"]["Conv2d_1a_3x3"]["conv"]["kernel"])
    np.testing.assert_array_equal(kernel[1, 2, 0, 5], w[5, 0, 1, 2])


def test_converter_names_missing_and_unexpected_keys(numpy_state):
    state = dict(numpy_state)
    del state["Mixed_6c.branch7x7dbl_3.bn.running_var"]
    state["Mixed_8z.conv.weight"] = np.zeros((1, 1, 1, 1), np.float32)
    with pytest.raises(ValueError, match=r"missing keys \(1\): Mixed_6c\.branch7x7dbl_3\.bn\.running_var") as info:
        inc.variables_from_torch_state_dict(state)
    assert "unexpected keys (1): Mixed_8z.conv.weight" in str(info.value)


def test_converter_rejects_wrong_shapes(numpy_state):
    state = dict(numpy_state, **{"Mixed_5b.branch_pool.conv.weight": np.zeros((64, 192, 1, 1), np.float32)})
    with pytest.raises(ValueError, match=r"Mixed_5b\.branch_pool\.conv\.weight: shape"):
        inc.variables_from_torch_state_dict(state)


def test_load_weights_missing_file_says_where_to_get_it(tmp_path):
    path = tmp_path / "nowhere" / inc.FID_WEIGHTS_FILENAME
    with pytest.raises(UserError, match="not found") as info:
        inc.load_weights(path)
    message = str(info.value)
    assert str(path) in message
    assert "pytorch-fid release page" in message and "--inception-weights PATH" in message


def test_load_weights_wrong_content(tmp_path, numpy_state):
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"not a zip file")
    with pytest.raises(UserError, match="could not read") as info:
        inc.load_weights(junk)
    assert str(junk) in str(info.value) and "--inception-weights PATH" in str(info.value)

    wrong = tmp_path / "wrong.npz"
    np.savez(wrong, **{k: v for k, v in numpy_state.items() if not k.startswith("Mixed_7c.")})
    with pytest.raises(UserError, match=r"not pytorch-fid's FID Inception weights.*missing keys \(45\)") as info:
        inc.load_weights(wrong)
    assert str(wrong) in str(info.value) and "--inception-weights PATH" in str(info.value)


@pytest.mark.slow  # imports torch
def test_load_weights_bad_pth(tmp_path):
    pytest.importorskip("torch")
    bad = tmp_path / inc.FID_WEIGHTS_FILENAME
    bad.write_bytes(b"\x00" * 64)
    with pytest.raises(UserError, match="could not read") as info:
        inc.load_weights(bad)
    assert str(bad) in str(info.value)


def test_rejects_images_that_are_not_nhwc_grey_or_rgb():
    with pytest.raises(ValueError, match="1 or 3"):
        inc.inception_features({}, np.zeros((2, 3, 28, 28), np.float32))
    with pytest.raises(ValueError, match="NHWC"):
        jax.eval_shape(inception_net.FIDInceptionV3().init, jax.random.key(0),
                       jax.ShapeDtypeStruct((2, 28, 28), jnp.float32))


def test_init_shapes_and_output_dim_without_weights():
    out = jax.eval_shape(
        lambda x: inception_net.FIDInceptionV3().init_with_output(jax.random.key(0), x)[0],
        jax.ShapeDtypeStruct((5, 28, 28, 1), jnp.float32),
    )
    assert out.shape == (5, 2048)


def test_importing_the_module_does_not_import_torch():
    code = "import sys, jaxwvae.evaluation.inception; sys.exit('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0

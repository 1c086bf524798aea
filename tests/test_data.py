"""jaxwvae.data: IDX reading, folder lookup, validation, download (local HTTP server) and tfds fallback."""

import functools
import gzip
import hashlib
import http.server
import pathlib
import shutil
import socket
import subprocess
import sys
import threading
import types

import numpy as np
import pytest

from jaxwvae import data
from jaxwvae.data import datasets
from jaxwvae.errors import DataError

TRAIN_IMG, TRAIN_LAB = "train-images-idx3-ubyte", "train-labels-idx1-ubyte"
TEST_IMG, TEST_LAB = "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch, tmp_path):
    """No test sees the caller's data settings or touches ~/.cache."""
    monkeypatch.delenv("JAXWVAE_DATA_DIR", raising=False)
    monkeypatch.delenv("JAXWVAE_DATA_URL", raising=False)
    monkeypatch.setenv("JAXWVAE_CACHE_DIR", str(tmp_path / "default-cache"))


@pytest.fixture
def no_tfds(monkeypatch):
    """Make `import tensorflow_datasets` fail."""
    monkeypatch.setitem(sys.modules, "tensorflow_datasets", None)


@pytest.fixture(scope="module")
def real(data_dir):
    """All four real splits, read once: {(dataset, split): (images, labels)}."""
    return {(d, s): data.load(d, s, data_dir) for d in data.DATASETS for s in ("train", "test")}


def idx_bytes(arr, magic=None):
    """Serialise a uint8 array as IDX (magic defaults to 0x0800 | ndim)."""
    arr = np.asarray(arr, dtype=np.uint8)
    magic = (0x0800 | arr.ndim) if magic is None else magic
    header = magic.to_bytes(4, "big") + b"".join(int(d).to_bytes(4, "big") for d in arr.shape)
    return header + arr.tobytes()


def write_split(folder, n_images=5, n_labels=5, side=28, labels=None, split="test"):
    """A small synthetic split in `folder`; returns (images path, labels path)."""
    folder.mkdir(parents=True, exist_ok=True)
    img_name, lab_name = (TEST_IMG, TEST_LAB) if split == "test" else (TRAIN_IMG, TRAIN_LAB)
    images = np.arange(n_images * side * side, dtype=np.int64).reshape(n_images, side, side) % 256
    labels = np.arange(n_labels) % 10 if labels is None else np.asarray(labels)
    (folder / img_name).write_bytes(idx_bytes(images))
    (folder / lab_name).write_bytes(idx_bytes(labels))
    return folder / img_name, folder / lab_name


def closed_port_url():
    """An http URL on 127.0.0.1 where nothing listens."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def serve():
    """serve(folder) -> base URL of an HTTP server on 127.0.0.1 for that folder; shut down on teardown."""
    servers = []

    def start(folder):
        handler = functools.partial(_QuietHandler, directory=str(folder))
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
        thread.start()
        servers.append((server, thread))
        return f"http://127.0.0.1:{server.server_address[1]}"

    yield start
    for server, thread in servers:
        server.shutdown()
        server.server_close()
        thread.join()


# --------------------------------------------------------------------------- real data


@pytest.mark.parametrize("dataset", data.DATASETS)
@pytest.mark.parametrize("split,n", [("train", 60000), ("test", 10000)])
def test_real_splits(real, dataset, split, n):
    images, labels = real[dataset, split]
    assert images.shape == (n, 28, 28) and images.dtype == np.uint8
    assert labels.shape == (n,) and labels.dtype == np.uint8
    assert set(np.unique(labels).tolist()) == set(range(10))
    assert images.max() == 255 and images.min() == 0


def test_known_properties(real):
    images, labels = real["mnist", "train"]
    counts = np.bincount(labels, minlength=10)
    assert counts.sum() == 60000
    assert counts[1] == 6742 and counts[5] == 5421  # the well-known MNIST train class counts
    assert labels[0] == 5 and real["mnist", "test"][1][0] == 7
    # Fashion-MNIST is balanced: 6000 per class in train, 1000 in test.
    assert np.all(np.bincount(real["fashion_mnist", "train"][1]) == 6000)
    assert np.all(np.bincount(real["fashion_mnist", "test"][1]) == 1000)
    assert not np.array_equal(real["mnist", "test"][0], real["fashion_mnist", "test"][0])


def test_raw_and_gz_and_layouts_read_identically(data_dir, real, tmp_path):
    nested = tmp_path / "nested" / "mnist"
    flat = tmp_path / "flat"
    nested.mkdir(parents=True)
    flat.mkdir()
    for name in (TEST_IMG, TEST_LAB):
        with gzip.open(data_dir / "mnist" / f"{name}.gz", "rb") as f:
            (nested / name).write_bytes(f.read())  # raw, <dir>/<dataset>/ layout
        shutil.copy(data_dir / "mnist" / f"{name}.gz", flat)  # .gz, flat layout
    assert np.array_equal(data.read_idx(nested / TEST_IMG), data.read_idx(flat / f"{TEST_IMG}.gz"))
    want_x, want_y = real["mnist", "test"]
    for root in (tmp_path / "nested", flat, str(flat)):
        x, y = data.load("mnist", "test", root)
        assert np.array_equal(x, want_x) and np.array_equal(y, want_y)


def test_env_data_dir_used_when_no_data_dir(data_dir, real, monkeypatch, tmp_path):
    monkeypatch.setenv("JAXWVAE_DATA_DIR", str(data_dir))
    x, y = data.load("fashion_mnist", "test", cache_dir=tmp_path / "c", download=False)
    assert np.array_equal(x, real["fashion_mnist", "test"][0])
    assert np.array_equal(y, real["fashion_mnist", "test"][1])
    assert not (tmp_path / "c").exists()


def test_read_idx_generic_shapes(tmp_path):
    arr = np.arange(2 * 3 * 4 * 5, dtype=np.uint8).reshape(2, 3, 4, 5)
    (tmp_path / "a.idx").write_bytes(idx_bytes(arr))
    (tmp_path / "a.idx.gz").write_bytes(gzip.compress(idx_bytes(arr)))
    for p in ("a.idx", "a.idx.gz"):
        out = data.read_idx(tmp_path / p)
        assert out.dtype == np.uint8 and np.array_equal(out, arr)
        out[0, 0, 0, 0] = 7  # writable


def test_default_cache_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("JAXWVAE_CACHE_DIR", str(tmp_path / "x"))
    assert data.default_cache_dir() == tmp_path / "x"
    monkeypatch.delenv("JAXWVAE_CACHE_DIR")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert data.default_cache_dir() == tmp_path / ".cache" / "jaxwvae"


# --------------------------------------------------------------------------- validation


def test_unknown_dataset_and_split(tmp_path):
    with pytest.raises(DataError, match="unknown dataset 'cifar'.*mnist, fashion_mnist"):
        data.load("cifar", "train", tmp_path)
    with pytest.raises(DataError, match="unknown split 'val'.*train, test"):
        data.load("mnist", "val", tmp_path)
    with pytest.raises(DataError, match="unknown dataset"):
        data.download("emnist", tmp_path)


def test_synthetic_split_loads(tmp_path):
    write_split(tmp_path, labels=[0, 9, 3, 3, 1])
    x, y = data.load("mnist", "test", tmp_path)
    assert x.shape == (5, 28, 28) and y.tolist() == [0, 9, 3, 3, 1]


def test_wrong_magic(tmp_path):
    img, _ = write_split(tmp_path)
    img.write_bytes(b"\x12\x34\x08\x03" + img.read_bytes()[4:])
    with pytest.raises(DataError, match=rf"{TEST_IMG}: is not an IDX file: magic number 0x12340803"):
        data.read_idx(img)
    with pytest.raises(DataError, match=TEST_IMG):
        data.load("mnist", "test", tmp_path)


def test_wrong_type_code(tmp_path):
    img, _ = write_split(tmp_path)
    img.write_bytes(b"\x00\x00\x0d\x03" + img.read_bytes()[4:])
    with pytest.raises(DataError, match=rf"{TEST_IMG}: IDX type code 0x0D \(float32\)"):
        data.load("mnist", "test", tmp_path)


def test_truncated_body(tmp_path):
    img, _ = write_split(tmp_path)
    img.write_bytes(img.read_bytes()[:-100])
    with pytest.raises(DataError, match=rf"{TEST_IMG}: truncated IDX file.*promises 3920 data bytes, found 3820"):
        data.load("mnist", "test", tmp_path)


def test_absurd_header(tmp_path):
    p = tmp_path / "huge"
    p.write_bytes(b"\x00\x00\x08\x04" + b"\xff\xff\xff\xff" * 4 + b"\x00" * 10)
    with pytest.raises(DataError, match="huge: the IDX header declares shape .* too large"):
        data.read_idx(p)


def test_trailing_bytes(tmp_path):
    _, lab = write_split(tmp_path)
    lab.write_bytes(lab.read_bytes() + b"\x00\x01")
    with pytest.raises(DataError, match=rf"{TEST_LAB}: IDX file is longer than its header says"):
        data.load("mnist", "test", tmp_path)


@pytest.mark.parametrize("keep", [0, 3, 10])
def test_truncated_header(tmp_path, keep):
    img, _ = write_split(tmp_path)
    img.write_bytes(img.read_bytes()[:keep])
    with pytest.raises(DataError, match=rf"{TEST_IMG}: truncated IDX header"):
        data.load("mnist", "test", tmp_path)


def test_count_mismatch_names_both_files_and_counts(tmp_path):
    write_split(tmp_path, n_images=5, n_labels=4)
    with pytest.raises(DataError) as e:
        data.load("mnist", "test", tmp_path)
    msg = str(e.value)
    assert TEST_IMG in msg and TEST_LAB in msg
    assert "5 images" in msg and "4 labels" in msg


def test_labels_file_where_images_expected(tmp_path):
    img, lab = write_split(tmp_path)
    shutil.copy(lab, img)
    with pytest.raises(DataError, match=rf"{TEST_IMG}: is not an IDX image file: magic number 0x00000801"):
        data.load("mnist", "test", tmp_path)


def test_images_where_labels_expected(tmp_path):
    img, lab = write_split(tmp_path)
    shutil.copy(img, lab)
    with pytest.raises(DataError, match=rf"{TEST_LAB}: is not an IDX label file.*expected 0x00000801"):
        data.load("mnist", "test", tmp_path)


def test_images_not_28x28(tmp_path):
    write_split(tmp_path, side=27)
    with pytest.raises(DataError, match=rf"{TEST_IMG}: images are 27x27, expected 28x28"):
        data.load("mnist", "test", tmp_path)


def test_label_out_of_range(tmp_path):
    write_split(tmp_path, labels=[0, 1, 10, 3, 4])
    with pytest.raises(DataError, match=rf"{TEST_LAB}: label 10 at index 2 is outside 0..9"):
        data.load("mnist", "test", tmp_path)


def _gz_variants(payload):
    good = gzip.compress(payload)
    bad_crc = bytearray(good)
    bad_crc[-8] ^= 0xFF  # CRC32 in the trailer
    garbage = bytearray(good)
    garbage[10] = 0x07  # first deflate block header: BTYPE=11 is reserved -> zlib.error
    return {"truncated": good[: len(good) // 2], "bad_crc": bytes(bad_crc), "garbage": bytes(garbage),
            "header_only": good[:5]}


@pytest.mark.parametrize("variant", ["truncated", "bad_crc", "garbage", "header_only"])
def test_corrupt_gzip(tmp_path, variant):
    img, lab = write_split(tmp_path)
    (tmp_path / f"{TEST_LAB}.gz").write_bytes(_gz_variants(lab.read_bytes())[variant])
    lab.unlink()
    with pytest.raises(DataError, match=rf"{TEST_LAB}\.gz: corrupt or truncated gzip file \(") as e:
        data.load("mnist", "test", tmp_path)
    assert "\n" not in str(e.value)


def test_missing_partner(tmp_path):
    img, lab = write_split(tmp_path / "mnist")
    lab.unlink()
    with pytest.raises(DataError, match=rf"{TEST_IMG} is there but its partner {TEST_LAB}\[\.gz\] is missing"):
        data.load("mnist", "test", tmp_path)
    img.unlink()
    write_split(tmp_path)  # flat layout now holds both: nested folder is empty, flat is used
    assert data.load("mnist", "test", tmp_path)[0].shape == (5, 28, 28)
    (tmp_path / TEST_IMG).unlink()
    with pytest.raises(DataError, match=rf"{TEST_LAB} is there but its partner {TEST_IMG}"):
        data.load("mnist", "test", tmp_path)


def test_explicit_folder_is_authoritative(data_dir, tmp_path, no_tfds):
    cache = tmp_path / "cache"
    write_split(cache / "mnist")  # a complete cache must not be used
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataError, match=rf"data folder {empty}: no mnist test files.*{TEST_IMG}") as e:
        data.load("mnist", "test", empty, cache_dir=cache, base_url=closed_port_url())
    assert "--data-dir" in str(e.value)
    with pytest.raises(DataError, match="is not a folder"):
        data.load("mnist", "test", tmp_path / "nope", cache_dir=cache)


def test_env_folder_is_authoritative(tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    write_split(cache / "mnist")
    monkeypatch.setenv("JAXWVAE_DATA_DIR", str(tmp_path / "empty"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match=r"\$JAXWVAE_DATA_DIR .*empty: no mnist test files"):
        data.load("mnist", "test", cache_dir=cache)


def test_cache_used_without_network(tmp_path, no_tfds):
    write_split(tmp_path / "cache" / "fashion_mnist", labels=[4, 4, 4, 4, 4])
    x, y = data.load("fashion_mnist", "test", cache_dir=tmp_path / "cache", base_url=closed_port_url())
    assert y.tolist() == [4] * 5


def test_corrupt_cache_says_delete(tmp_path):
    img, _ = write_split(tmp_path / "cache" / "mnist")
    img.write_bytes(img.read_bytes()[:50])
    with pytest.raises(DataError, match=r"truncated.*delete .*cache.mnist to download it again"):
        data.load("mnist", "test", cache_dir=tmp_path / "cache", download=False)


# --------------------------------------------------------------------------- download


def test_download_and_cache(data_dir, real, tmp_path, serve, no_tfds):
    url = serve(data_dir)
    cache = tmp_path / "cache"
    folder = data.download("mnist", cache, base_url=url)
    assert folder == cache / "mnist"
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        f"{n}.gz" for n in (TRAIN_IMG, TRAIN_LAB, TEST_IMG, TEST_LAB))
    for p in folder.iterdir():
        assert p.read_bytes() == (data_dir / "mnist" / p.name).read_bytes()
    x, y = data.load("mnist", "test", cache_dir=cache, base_url=closed_port_url())  # no server needed
    assert np.array_equal(x, real["mnist", "test"][0]) and np.array_equal(y, real["mnist", "test"][1])
    # A second download keeps the verified files (the server may be gone).
    assert data.download("mnist", cache, base_url=closed_port_url()) == folder


def test_load_downloads_via_env_url(data_dir, real, tmp_path, serve, monkeypatch, no_tfds):
    monkeypatch.setenv("JAXWVAE_DATA_URL", serve(data_dir) + "/")
    monkeypatch.setenv("JAXWVAE_CACHE_DIR", str(tmp_path / "envcache"))
    x, y = data.load("fashion_mnist", "test")
    assert np.array_equal(y, real["fashion_mnist", "test"][1])
    assert (tmp_path / "envcache" / "fashion_mnist" / f"{TRAIN_IMG}.gz").is_file()
    assert not list((tmp_path / "envcache" / "fashion_mnist").glob(".*"))


@pytest.fixture
def altered_copy(data_dir, tmp_path):
    """A copy of the mnist files: t10k labels recompressed (still valid), train labels altered."""
    root = tmp_path / "served"
    shutil.copytree(data_dir / "mnist", root / "mnist")
    with gzip.open(data_dir / "mnist" / f"{TEST_LAB}.gz", "rb") as f:
        payload = f.read()
    (root / "mnist" / f"{TEST_LAB}.gz").write_bytes(gzip.compress(payload, compresslevel=1, mtime=0))
    with gzip.open(data_dir / "mnist" / f"{TRAIN_LAB}.gz", "rb") as f:
        bad = bytearray(f.read())
    bad[100] = (bad[100] + 1) % 10
    (root / "mnist" / f"{TRAIN_LAB}.gz").write_bytes(gzip.compress(bytes(bad)))
    return root, hashlib.sha256(bytes(bad)).hexdigest()


def test_checksum_mismatch(altered_copy, tmp_path, serve, no_tfds):
    root, actual = altered_copy
    cache = tmp_path / "cache"
    with pytest.raises(DataError) as e:
        data.load("mnist", "test", cache_dir=cache, base_url=serve(root))
    msg = str(e.value)
    assert TRAIN_LAB in msg and "checksum mismatch" in msg
    assert datasets._SHA256["mnist"][TRAIN_LAB] in msg and actual in msg
    folder = cache / "mnist"
    assert not (folder / f"{TRAIN_LAB}.gz").exists() and not (folder / TRAIN_LAB).exists()
    assert not [p for p in folder.iterdir() if p.name.startswith(".")]  # no temp files left


def test_recompressed_copy_verifies(altered_copy, data_dir, tmp_path, serve):
    root, _ = altered_copy
    shutil.copy(data_dir / "mnist" / f"{TRAIN_LAB}.gz", root / "mnist")  # undo the alteration
    recompressed = (root / "mnist" / f"{TEST_LAB}.gz").read_bytes()
    assert recompressed != (data_dir / "mnist" / f"{TEST_LAB}.gz").read_bytes()
    folder = data.download("mnist", tmp_path / "cache", base_url=serve(root))
    assert (folder / f"{TEST_LAB}.gz").read_bytes() == recompressed


def test_not_gzip_download(tmp_path, serve, data_dir):
    root = tmp_path / "served"
    shutil.copytree(data_dir / "mnist", root / "mnist")
    (root / "mnist" / f"{TRAIN_IMG}.gz").write_text("<html>captive portal</html>")
    with pytest.raises(DataError, match=rf"{TRAIN_IMG}\.gz is not a valid gzip file"):
        data.download("mnist", tmp_path / "cache", base_url=serve(root))
    assert not (tmp_path / "cache" / "mnist" / f"{TRAIN_IMG}.gz").exists()


def test_http_404_is_a_network_failure(tmp_path, serve, no_tfds):
    url = serve(tmp_path / "nothing-here")
    (tmp_path / "nothing-here").mkdir()
    with pytest.raises(DataError, match=r"download failed: could not download mnist/.*404"):
        data.load("mnist", "train", cache_dir=tmp_path / "cache", base_url=url)


def test_nothing_found(tmp_path, no_tfds):
    url = closed_port_url()
    with pytest.raises(DataError) as e:
        data.load("mnist", "train", cache_dir=tmp_path / "cache", base_url=url, timeout=5)
    msg = str(e.value)
    assert "\n" not in msg
    assert "no mnist train data found" in msg
    assert str(tmp_path / "cache" / "mnist") in msg
    assert f"download failed: could not download mnist/{TRAIN_IMG}.gz ({url}/mnist/{TRAIN_IMG}.gz" in msg
    assert "tensorflow_datasets is not installed" in msg
    assert "--data-dir" in msg and "JAXWVAE_DATA_DIR" in msg and "jaxwvae[tfds]" in msg
    assert not [p for p in (tmp_path / "cache" / "mnist").iterdir()]


def test_download_disabled(tmp_path, no_tfds):
    with pytest.raises(DataError, match="download disabled.*tensorflow_datasets is not installed"):
        data.load("mnist", "train", cache_dir=tmp_path / "cache", download=False)
    assert not (tmp_path / "cache").exists()


# --------------------------------------------------------------------------- tfds


@pytest.fixture
def fake_tfds(monkeypatch):
    calls = []
    module = types.ModuleType("tensorflow_datasets")

    def load(name, split, batch_size, as_supervised, download=True):
        calls.append(dict(name=name, split=split, batch_size=batch_size, as_supervised=as_supervised,
                          download=download))
        n = 3 if split == "test" else 4
        images = np.full((n, 28, 28, 1), 7, dtype=np.uint8)
        return ("tf-images", images), ("tf-labels", np.arange(n, dtype=np.int64) + 2)

    module.load = load
    module.as_numpy = lambda ds: (ds[0][1], ds[1][1])
    monkeypatch.setitem(sys.modules, "tensorflow_datasets", module)
    return calls


def test_tfds_fallback(tmp_path, fake_tfds):
    x, y = data.load("fashion_mnist", "test", cache_dir=tmp_path / "cache", download=False)
    assert x.shape == (3, 28, 28) and x.dtype == np.uint8 and np.all(x == 7)
    assert y.dtype == np.uint8 and y.tolist() == [2, 3, 4]
    assert fake_tfds == [dict(name="fashion_mnist", split="test", batch_size=-1, as_supervised=True,
                              download=False)]


def test_tfds_after_failed_download(tmp_path, fake_tfds):
    x, y = data.load("mnist", "train", cache_dir=tmp_path / "cache", base_url=closed_port_url())
    assert x.shape == (4, 28, 28) and y.tolist() == [2, 3, 4, 5]
    assert fake_tfds[0]["name"] == "mnist" and fake_tfds[0]["download"] is True


def test_tfds_error_reported(tmp_path, monkeypatch):
    module = types.ModuleType("tensorflow_datasets")

    def load(*a, **k):
        raise RuntimeError("no\nnetwork")

    module.load = load
    monkeypatch.setitem(sys.modules, "tensorflow_datasets", module)
    with pytest.raises(DataError, match=r"tensorflow_datasets failed \(RuntimeError: no network\)"):
        data.load("mnist", "test", cache_dir=tmp_path / "cache", download=False)


# --------------------------------------------------------------------------- imports


def test_import_is_light():
    code = ("import sys, jaxwvae.data; "
            "bad = [m for m in ('tensorflow', 'tensorflow_datasets', 'statsmodels', 'matplotlib') "
            "if m in sys.modules]; print(bad); sys.exit(1 if bad else 0)")
    repo = pathlib.Path(__file__).resolve().parents[1]
    result = subprocess.run([sys.executable, "-c", code], cwd=repo, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr

"""``--tensorboard``: one run per replica, read back from the event files and compared with history.npz."""

import struct

import numpy as np
from tensorboardX.proto import event_pb2  # the dev extra installs tensorboardX

from jaxwvae.commands import sweep as sweep_command
from jaxwvae.runs.tensorboard import FOLDER, run_name


def read_events(folder):
    """Every Event in ``folder``'s event files: TFRecord framing (length, CRC, data, CRC), read by hand."""
    events = []
    for path in sorted(folder.glob("events.out.tfevents.*")):
        data = path.read_bytes()
        at = 0
        while at < len(data):
            (length,) = struct.unpack("<Q", data[at:at + 8])
            record = data[at + 12:at + 12 + length]
            at += 12 + length + 4
            event = event_pb2.Event()
            event.ParseFromString(record)
            events.append(event)
    return events


def scalars(folder) -> dict:
    out = {}
    for event in read_events(folder):
        for value in event.summary.value:
            if value.HasField("simple_value"):
                out.setdefault(value.tag, {})[event.step] = value.simple_value
    return out


def test_every_replica_is_a_run_whose_scalars_are_its_history(data_dir, tmp_path):
    out = tmp_path / "run"
    argv = ["--preset", "smoke", "--data-dir", str(data_dir), "--train-size", "500", "--test-size", "200",
            "--hidden", "32,16", "--latent-dim", "4", "--grid", "lam=1,4", "--out", str(out), "--no-progress",
            "--tensorboard"]
    assert sweep_command.main(argv) == 0
    with np.load(out / "history.npz") as h:
        history = {k: h[k] for k in h.files}
    names = sorted(p.name for p in (out / FOLDER).iterdir())
    assert names == sorted(run_name(s, {"lam": v}) for s in (0, 1) for v in ("1", "4")) == \
        ["lam=1_seed0", "lam=1_seed1", "lam=4_seed0", "lam=4_seed1"]
    steps = history["loss"].shape[1]
    for r, (seed, point) in enumerate(zip(history["seeds"], history["point"])):
        got = scalars(out / FOLDER / run_name(int(seed), {"lam": ("1", "4")[point]}))
        for metric in ("loss", "rec", "w2", "kl", "t_gap", "lam"):
            series = got[f"train/{metric}"]
            assert sorted(series) == list(range(1, steps + 1))
            np.testing.assert_allclose([series[t + 1] for t in range(steps)], history[metric][r], rtol=1e-6)
        assert set(got["test/kl"]) == {steps}
    plugins = {v.metadata.plugin_data.plugin_name for e in read_events(out / FOLDER / "lam=4_seed1")
               for v in e.summary.value}
    assert "hparams" in plugins

"""Security: the EEG stream is pinned by source id and host in the closed loop, and nothing
a user loads executes code (a profile carrying a pickle payload is refused, unexecuted).

Also relied on, tested elsewhere: the simulator's TCP server binds 127.0.0.1 by default
(test_devices_simulator.py, test_devices_cli.py); impostors ignored on re-acquisition
(test_acquisition_stream.py); configurations are TOML (tomllib, no code) and recordings are
read by MNE and pyxdf (test_fuzz_inputs.py).
"""

from __future__ import annotations

import hashlib
import io
import json
import os

import numpy as np
import pylsl
import pytest

from bci.acquisition._metadata import make_eeg_info
from bci.app import _parts
from bci.app.config import SessionConfig
from bci.errors import StreamError


def _outlet(name: str, source_id: str) -> pylsl.StreamOutlet:
    return pylsl.StreamOutlet(make_eeg_info(name, source_id, ["Oz", "O1", "O2"], 256.0))


def test_closed_loop_stream_pinned_by_source_id_ignores_same_name_impostor(unique_name):
    impostor = _outlet(unique_name, unique_name + "-impostor")  # announced first
    headset = _outlet(unique_name, unique_name + "-headset")
    cfg = SessionConfig({"source": {"kind": "lsl", "timeout_s": 3.0}})
    for _ in range(3):  # whichever LSL lists first, the pinned one is used
        stream = _parts.open_stream(cfg, name=unique_name, source_id=unique_name + "-headset",
                                    channels=None)
        try:
            assert stream.info.source_id() == unique_name + "-headset"
        finally:
            stream.disconnect()
    del impostor, headset


def test_closed_loop_stream_pinned_to_another_host_is_not_used(unique_name):
    outlet = _outlet(unique_name, unique_name + "-id")
    cfg = SessionConfig({"source": {"kind": "lsl", "timeout_s": 1.0,
                                    "host": "headset-pc.invalid"}})
    with pytest.raises(StreamError, match=unique_name):
        _parts.open_stream(cfg, name=unique_name, source_id=unique_name + "-id", channels=None)
    cfg = SessionConfig({"source": {"kind": "lsl", "timeout_s": 3.0,
                                    "host": pylsl.StreamInfo().hostname() or os.uname()[1]}})
    stream = _parts.open_stream(cfg, name=unique_name, source_id=unique_name + "-id",
                                channels=None)
    stream.disconnect()
    del outlet


class _Payload:
    """Unpickling this would create a file: the proof that code ran."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


def test_profile_with_pickle_payload_is_refused_without_running_it(tmp_path):
    from bci.cli.demo import DEMO_CONFIG, calibrate_demo_user
    from calibration.errors import ProfileError
    from calibration.profile import SubjectProfile, json_digest

    prof = calibrate_demo_user(tmp_path / "prof", SessionConfig(DEMO_CONFIG))
    folder = prof if prof.is_dir() else prof.parent
    proof = tmp_path / "pwned"
    with np.load(folder / "profile.npz", allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    key = next(iter(arrays))
    arrays[key] = np.array([_Payload(str(proof))], dtype=object)
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    (folder / "profile.npz").write_bytes(buf.getvalue())
    doc = json.loads((folder / "profile.json").read_text())
    doc["npz_sha256"] = hashlib.sha256(buf.getvalue()).hexdigest()  # a consistent forgery
    doc["json_sha256"] = json_digest(doc)
    (folder / "profile.json").write_text(json.dumps(doc))
    with pytest.raises(ProfileError, match="truncated or not a valid .npz"):
        SubjectProfile.load(prof)
    with pytest.raises(ProfileError):
        _parts.build_decoder(SessionConfig({"decoder": {"profile": str(prof)}}))
    assert not proof.exists()
    with np.load(folder / "profile.npz", allow_pickle=True) as z:  # the premise: it is live
        z[key]
    assert proof.exists()

"""The EXITS bench resumes a kept work folder only for the code, config and data that made it."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from benchmarks.exits import _fingerprint
from inference.methods.exits.train import ExitsConfig


def test_the_work_folder_key_follows_config_data_and_code(monkeypatch, tmp_path):
    import inference

    config = ExitsConfig()
    key = _fingerprint(config, 527, 50)
    assert len(key) == 16 and key == _fingerprint(ExitsConfig(), 527, 50)  # repeatable
    assert _fingerprint(replace(config, epochs=config.epochs + 1), 527, 50) != key
    assert _fingerprint(config, 160, 50) != key
    # a change to EXITS' source names another folder: copy the package, edit one file
    fake = tmp_path / "inference"
    (fake / "methods" / "exits").mkdir(parents=True)
    (fake / "backbones").mkdir()
    real = Path(inference.__file__).parent
    for source in (real / "methods" / "exits").glob("*.py"):
        (fake / "methods" / "exits" / source.name).write_bytes(source.read_bytes())
    for source in (real / "backbones").glob("*.py"):
        (fake / "backbones" / source.name).write_bytes(source.read_bytes())
    (fake / "imaging.py").write_bytes((real / "imaging.py").read_bytes())
    monkeypatch.setattr(inference, "__file__", str(fake / "__init__.py"))
    assert _fingerprint(config, 527, 50) == key
    train = fake / "methods" / "exits" / "train.py"
    train.write_text(train.read_text() + "\n# changed\n")
    assert _fingerprint(config, 527, 50) != key

import gzip
import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from baselines import datasets


def test_every_shipped_file_matches_its_recorded_checksums() -> None:
    # Prepare
    manifest = json.loads((datasets.DATA_DIR / "checksums.json").read_text())
    # Execute
    verified = datasets.verify_checksums()
    # Assert
    assert len(verified) == 13
    for gz_name, entry in manifest.items():
        blob = (datasets.DATA_DIR / gz_name).read_bytes()
        assert hashlib.sha256(blob).hexdigest() == entry["gzip_sha256"]
        assert hashlib.sha256(gzip.decompress(blob)).hexdigest() == entry["original_sha256"]
    total = sum((datasets.DATA_DIR / n).stat().st_size for n in manifest)
    assert total < 15 * 1024 * 1024


def test_tampered_file_is_refused(tmp_path, monkeypatch) -> None:
    # Prepare: a copy of the data folder with one corrupted file
    for src in datasets.DATA_DIR.iterdir():
        (tmp_path / src.name).write_bytes(src.read_bytes())
    (tmp_path / "RUL_FD001.txt.gz").write_bytes(gzip.compress(b"1\n2\n"))
    monkeypatch.setattr(datasets, "DATA_DIR", tmp_path)
    datasets.read_verified.cache_clear()
    datasets._manifest.cache_clear()
    # Execute / Assert
    try:
        with pytest.raises(datasets.DatasetChecksumError):
            datasets.load_cmapss_rul("FD001")
    finally:
        datasets.read_verified.cache_clear()
        datasets._manifest.cache_clear()


def test_cmapss_counts_match_the_published_figures() -> None:
    train = datasets.load_cmapss("FD004")
    test = datasets.load_cmapss("FD004", "test")
    assert list(train.columns) == list(datasets.CMAPSS_COLUMNS)
    assert len(train) == 61249 and train["unit"].nunique() == 249
    assert test["unit"].nunique() == 248 == len(datasets.load_cmapss_rul("FD004"))
    assert str(train["cycle"].dtype) == "int64"


def test_ai4i_bom_is_stripped_and_counts_match() -> None:
    frame = datasets.load_ai4i()
    assert frame.columns[0] == "udi"
    assert len(frame) == 10000
    assert int(frame["machine_failure"].sum()) == 339
    assert frame["type"].value_counts().to_dict() == {"L": 6000, "M": 2997, "H": 1003}
    modes = frame[list(datasets.AI4I_FAILURE_MODES)].sum().to_dict()
    assert modes == {"twf": 46, "hdf": 115, "pwf": 95, "osf": 98, "rnf": 19}


def test_loaders_return_fresh_copies() -> None:
    a = datasets.load_ai4i()
    a.loc[0, "torque_nm"] = np.nan
    assert not datasets.load_ai4i()["torque_nm"].isna().any()


def test_unknown_subset_is_rejected() -> None:
    with pytest.raises(ValueError):
        datasets.load_cmapss("FD009")


def test_a_plant_reads_its_own_copied_files_and_only_its_subset(tmp_path: Path) -> None:
    # Prepare: the plant's local history is FD003 only.
    written = datasets.write_cmapss_plant_files("FD003", tmp_path / "fd003")

    # Execute
    local = datasets.load_cmapss("FD003", "test", data_dir=tmp_path / "fd003")
    rul = datasets.load_cmapss_rul("FD003", data_dir=tmp_path / "fd003")

    # Assert: same rows as the shipped copy, found by subset, and nothing else is there.
    assert [p.name for p in written] == ["train_FD003.txt.gz", "test_FD003.txt.gz",
                                         "RUL_FD003.txt.gz"]
    pd.testing.assert_frame_equal(local, datasets.load_cmapss("FD003", "test"))
    assert np.array_equal(rul, datasets.load_cmapss_rul("FD003"))
    assert datasets.cmapss_subset_in(tmp_path / "fd003") == "FD003"
    assert datasets.cmapss_subset_in(tmp_path) is None
    with pytest.raises(FileNotFoundError, match="train_FD001"):
        datasets.load_cmapss("FD001", "train", data_dir=tmp_path / "fd003")

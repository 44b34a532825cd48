import numpy as np
import pandas as pd

from baselines.contracts import AI4I_RAW, CMAPSS_RAW, Severity, get_contract
from baselines.datasets import CMAPSS_SUBSETS, load_ai4i, load_cmapss


def test_shipped_data_honours_its_contracts() -> None:
    for subset in CMAPSS_SUBSETS:
        assert CMAPSS_RAW.validate(load_cmapss(subset, "test")).clean
    assert AI4I_RAW.validate(load_ai4i()).clean


def test_bad_cmapss_batch_names_every_problem() -> None:
    # Prepare
    frame = load_cmapss("FD001").head(120)
    frame.loc[3, "s2"] = 9999.0  # out of range
    frame.loc[5, "s3"] = np.nan  # one null: under the 1 % tolerance -> warning
    frame.loc[10, "cycle"] = 2  # goes backwards
    frame.loc[60, "cycle"] = 70  # skips cycles
    frame = frame.drop(columns=["s21"])  # missing column
    frame["s4"] = frame["s4"].astype(object)
    frame.loc[7, "s4"] = "hot"  # wrong dtype
    # Execute
    report = CMAPSS_RAW.validate(frame)
    # Assert
    assert not report.ok
    found = {(v.rule, v.column): v for v in report.violations}
    assert found[("missing_column", "s21")].row_indices == []
    assert found[("range", "s2")].row_indices == [3]
    assert found[("null_value", "s3")].severity is Severity.WARNING
    assert found[("dtype", "s4")].row_indices == [7]
    assert 10 in found[("monotonic_cycles", "cycle")].row_indices
    assert 60 in found[("sampling_frequency", "cycle")].row_indices
    assert {3, 5, 7, 10, 60} <= report.bad_rows()
    assert len(frame) == 120  # nothing dropped
    as_json = report.to_dict()
    assert {"rule", "column", "row_indices", "count"} <= set(as_json["violations"][0])


def test_null_rate_above_tolerance_is_an_error() -> None:
    frame = load_ai4i().head(100)
    frame["torque_nm"] = frame["torque_nm"].astype(float)
    frame.loc[0:4, "torque_nm"] = np.nan
    report = AI4I_RAW.validate(frame)
    (v,) = [v for v in report.violations if v.column == "torque_nm"]
    assert v.rule == "null_rate" and v.severity is Severity.ERROR and v.count == 5


def test_unknown_type_and_bad_labels_are_reported() -> None:
    frame = load_ai4i().head(50)
    frame.loc[2, "type"] = "X"
    frame.loc[3, "machine_failure"] = 2
    frame.loc[4, "torque_nm"] = -1.0
    report = AI4I_RAW.validate(frame)
    rules = report.rules()
    assert ("vocabulary", "type") in rules
    assert ("vocabulary", "machine_failure") in rules
    assert ("range", "torque_nm") in rules
    assert ("product_type", "product_id") in rules
    assert report.bad_rows() == {2, 3, 4}


def test_serving_batches_need_no_labels() -> None:
    frame = load_ai4i().head(20).drop(columns=["machine_failure", "twf", "udi", "product_id"])
    assert AI4I_RAW.validate(frame, with_labels=False).clean
    assert ("missing_column", "machine_failure") in AI4I_RAW.validate(frame).rules()


def test_get_contract_by_name() -> None:
    assert get_contract("cmapss-raw") is CMAPSS_RAW
    assert isinstance(CMAPSS_RAW.validate(pd.DataFrame()).violations, list)

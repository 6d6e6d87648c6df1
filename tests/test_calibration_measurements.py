"""The measurement reader checks every field and names the file and field path of a problem."""

from __future__ import annotations

import json

import pytest
from test_calibration_synthetic import ENV, make_measurements

from calibration.measurements import load_measurement_file, load_measurements
from planner.errors import InputError


def _doc(tmp_path):
    path = make_measurements(tmp_path / "m.json")
    return path, json.loads(path.read_text())


def test_reads_a_valid_file_with_hash_and_counts(tmp_path):
    path, doc = _doc(tmp_path)
    loaded = load_measurement_file(path)
    assert len(loaded.sha256) == 64 and loaded.env["device_name"] == "Synthetic CPU"
    assert len(loaded.records) == len(doc["records"]) and loaded.failed == 1
    first = loaded.records[0]
    assert first.ok and first.median_s > 0 and first.suite == "gemm"


@pytest.mark.parametrize("mutate,field", [
    (lambda d: d["records"][3]["timing"].update(median_s=-1), "records[3].timing.median_s"),
    (lambda d: d["records"][3]["timing"].pop("p90_s"), "records[3].timing.p90_s"),
    (lambda d: d["records"][3]["timing"].update(reps=0), "records[3].timing.reps"),
    (lambda d: d["records"][3].update(timing=None), "records[3].timing"),
    (lambda d: d["records"][3].update(suite="disk"), "records[3].suite"),
    (lambda d: d["records"][3].update(kernel="conv"), "records[3].kernel"),
    (lambda d: d["records"][3].update(dtype="fp64"), "records[3].dtype"),
    (lambda d: d["records"][3]["params"].pop("batch"), "records[3].params.batch"),
    (lambda d: d["records"][3]["params"].update(batch=1.5), "records[3].params.batch"),
    (lambda d: d["records"][3].update(error="oom"), "records[3].timing"),
    (lambda d: d["records"][3].pop("case_id"), "records[3].case_id"),
    (lambda d: d["records"][3].update(extra=[1]), "records[3].extra"),
    (lambda d: d.update(schema_version=2), "schema_version"),
    (lambda d: d["env"].update(device_kind="tpu"), "env.device_kind"),
    (lambda d: d["env"].pop("device_name"), "env.device_name"),
    (lambda d: d.update(records=[]), "records"),
    (lambda d: d.update(records={}), "records"),
])
def test_bad_fields_are_named(tmp_path, mutate, field):
    path, doc = _doc(tmp_path)
    mutate(doc)
    path.write_text(json.dumps(doc))
    with pytest.raises(InputError) as err:
        load_measurement_file(path)
    assert err.value.field == field and err.value.file == str(path)


@pytest.mark.parametrize("content,problem",
                         [("", "empty"), ("{not json", "malformed JSON"), ("[1, 2]", "object")])
def test_corrupt_or_empty_files(tmp_path, content, problem):
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(InputError, match=problem):
        load_measurement_file(path)


def test_missing_file(tmp_path):
    with pytest.raises(InputError, match="not found"):
        load_measurement_file(tmp_path / "nope.json")


def test_files_from_two_devices_are_refused(tmp_path):
    a = make_measurements(tmp_path / "a.json")
    b = make_measurements(tmp_path / "b.json", env={**ENV, "device_name": "Other CPU"})
    with pytest.raises(InputError) as err:
        load_measurements([a, b])
    assert err.value.file == str(b) and err.value.field == "env.device_name"


def test_all_failed_is_refused(tmp_path):
    path, doc = _doc(tmp_path)
    for record in doc["records"]:
        record.update(timing=None, error="unsupported")
    path.write_text(json.dumps(doc))
    with pytest.raises(InputError, match="no successful records"):
        load_measurements([path])

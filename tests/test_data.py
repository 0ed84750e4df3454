"""data/: what the lab ships as data is found from the clone and holds what its README says."""
from pathlib import Path

import pytest

import labkit
from labkit import paths
from labkit.attacks import TABLE1_SETTINGS, format_table1, load_table1, save_table1

ROOT = Path(__file__).resolve().parent.parent


def test_data_path_finds_the_top_level_data_folder():
    assert labkit.data_path() == ROOT / "data"
    assert labkit.data_path("vectors", "fips197.json").is_file()


def test_data_path_can_be_redirected_and_says_when_the_folder_is_missing(tmp_path, monkeypatch):
    monkeypatch.setenv(paths.DATA_ENV, str(tmp_path))
    assert labkit.data_path("x.csv") == tmp_path / "x.csv"
    monkeypatch.setenv(paths.DATA_ENV, str(tmp_path / "missing"))
    with pytest.raises(FileNotFoundError, match="LABKIT_DATA"):
        labkit.data_path()
    with pytest.raises(TypeError):
        labkit.data_path(3)


def test_every_data_file_is_described_in_the_data_readme():
    readme = (ROOT / "data" / "README.md").read_text()
    for path in (ROOT / "data").rglob("*"):
        if path.is_file() and path.name != "README.md":
            assert str(path.relative_to(ROOT / "data")) in readme, f"data/README.md does not describe {path.name}"


def test_full_table1_results_are_complete_and_honest():
    """The 1000-key run (labkit-table1-full): every key recovered, no wrong key ever confirmed."""
    rows = load_table1(labkit.data_path("results", "table1_full.csv"))
    assert [r["setting"] for r in rows] == list(TABLE1_SETTINGS)
    for row in rows:
        assert row["strategy"] == TABLE1_SETTINGS[row["setting"]]["strategy"]
        assert row["keys"] == 1000 and row["recovered"] == 1000 and row["success_rate"] == 1.0
        assert row["undetected_errors"] == 0
        assert 0 < row["mean_queries"] <= row["max_queries"]
    assert "labkit-table1-full" in (ROOT / "data" / "README.md").read_text()


def test_table1_rows_survive_a_save_and_load(tmp_path):
    rows = [dict(setting="s", strategy="back_to_back", keys=3, recovered=2, success_rate=2 / 3, mean_queries=257.5,
                 max_queries=300, detected_errors=1, undetected_errors=0, seconds=1.25)]
    save_table1(rows, tmp_path / "t.csv")
    back = load_table1(tmp_path / "t.csv")
    assert back == [{**rows[0], "success_rate": 0.6667, "seconds": 1.2}]  # (stored rounded: 4 and 1 decimals)
    assert format_table1(back) == format_table1([{**rows[0]}])
    (tmp_path / "bad.csv").write_text("setting,keys\nx,1\n")
    with pytest.raises(ValueError, match="columns"):
        load_table1(tmp_path / "bad.csv")

"""Issue-14 data cases not covered elsewhere: wrong separator in a fixed-format file, tiny files, tiny splits."""

import pytest

from qrec.data import DataError
from qrec.data.movielens import load_movielens100k
from qrec.data.sources import movielens


def test_wrong_separator_names_expected_and_found(tmp_path):
    (tmp_path / "u.data").write_text("1,1,5,874965758\n2,1,3,876893171\n")
    with pytest.raises(DataError, match=r"u.data, line 1: expected fields separated by tab '\\t' \(data.sep\) but "
                                        r"found none; it looks separated by ','"):
        load_movielens100k(str(tmp_path))


def test_two_ratings_say_which_split_is_empty_before_training(tmp_path):
    (tmp_path / "u.data").write_text("1\t1\t5\t874965758\n2\t1\t3\t876893171\n")
    dm = movielens("ml-100k", root=str(tmp_path), seed=0)
    with pytest.raises(DataError, match=r"leaves validation empty \(train 1, validation 0, test 1\).*at least 3"):
        dm.setup()
    with pytest.raises(DataError, match=r"data.split=u1 is a canonical GroupLens fold .*2 ratings.*leave_last"):
        movielens("ml-100k", root=str(tmp_path), split="u1").setup()


def test_temporal_split_needs_timestamps(tmp_path):
    from qrec.data.sources import ratings_file

    (tmp_path / "r.csv").write_text("user,item,rating\n" + "".join(f"u{i % 5},i{i},3\n" for i in range(30)))
    with pytest.raises(DataError, match=r"data.split=temporal .*no timestamp column.*data.columns.timestamp"):
        ratings_file(str(tmp_path / "r.csv"), split="temporal").setup()


def test_any_source_plugs_in_as_a_table_and_scales_are_consistent():
    import torch

    from qrec.data import RatingsDataModule, make_synthetic_ratings
    from qrec.data.datamodule import scale, unscale
    from qrec.models.bias import BiasModule

    table = make_synthetic_ratings(seed=0)
    table.ratings = table.ratings * 2 - 1  # a 1-9 scale
    table.rating_scale = None
    dm = RatingsDataModule(table, seed=0, batch_size=None)  # a table, not a callable
    dm.setup()
    assert dm.rating_scale == (float(dm.train.ratings.min()), float(dm.train.ratings.max()))
    model = BiasModule()
    model.attach(dm)
    preds = model.predict_clipped(torch.tensor([0, 0]), torch.tensor([0, 10_000]))  # the second: an unknown item
    assert model.rating_scale == dm.rating_scale and preds.min() >= dm.rating_scale[0] and preds.max() <= 9
    x = torch.tensor([1.0, 5.0, 9.0])
    assert torch.allclose(unscale(scale(x, (1, 9)), (1, 9)), x) and scale(x, (1, 9)).tolist() == [0, 0.5, 1]


def test_report_groups_runs_by_dataset_name_and_sources_not_by_seed_dependent_fields():
    from qrec.report.runs import group_key

    source = {"name": "ml-1m", "sources": {"ml-1m.zip": "a6898adb50"}}
    a = {"dataset": {**source, "parts": {"test": 30}, "rating_scale": [1, 5]}}
    b = {"dataset": {**source, "parts": {"test": 31}, "rating_scale": [1, 4]}}
    c = {"dataset": {"name": "ml-1m", "sources": {"ml-1m.zip": "0000000000"}}}
    assert group_key(a) == group_key(b) == "ml-1m@a6898adb" and group_key(c) != group_key(a)
    assert group_key({}) == "" and group_key({"dataset": "ml-100k"}) == "ml-100k"

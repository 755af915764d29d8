"""Ratings files: every layout the reader accepts, and every bad input named with its fix."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from qrec.data import DataError
from qrec.data.files import read_ratings
from qrec.data.sources import ratings_file

ROWS = [("alice", "sku-1", 4.0, 100), ("alice", "sku-2", 2.0, 101), ("bob", "sku-1", 5.0, 102),
        ("carol", "sku-3", 3.0, 103)]  # fmt: skip


def write(tmp_path: Path, text: str, name: str = "r.csv") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def delimited(sep: str, header: bool = True, rows=ROWS) -> str:
    head = sep.join(["user", "item", "rating", "timestamp"]) + "\n" if header else ""
    return head + "".join(sep.join(str(v) for v in row) + "\n" for row in rows)


@pytest.mark.parametrize("sep", [",", "\t", ";", "|", "::", " "])
@pytest.mark.parametrize("header", [True, False])
def test_any_separator_with_or_without_header_is_detected(tmp_path, sep, header):
    table = read_ratings(write(tmp_path, delimited(sep, header), "r.txt"))
    assert (table.n_users, table.n_items, len(table)) == (3, 3, 4)
    np.testing.assert_array_equal(table.users, [0, 0, 1, 2])
    assert list(table.user_ids) == ["alice", "bob", "carol"] and list(table.item_ids) == ["sku-1", "sku-2", "sku-3"]
    np.testing.assert_array_equal(table.ratings, [4, 2, 5, 3])
    np.testing.assert_array_equal(table.timestamps, [100, 101, 102, 103])
    assert table.has_timestamps and table.sources["r.txt"]


def test_integer_ids_are_encoded_and_decodable(tmp_path):
    table = read_ratings(write(tmp_path, "user,item,rating\n10,7,4\n3,7,1\n10,9,2\n"))
    assert list(table.user_ids[table.users]) == [10, 3, 10] and list(table.item_ids[table.items]) == [7, 7, 9]
    assert not table.has_timestamps  # a default-named timestamp column that is absent is simply absent


def test_column_mapping_by_name_and_parquet(tmp_path):
    frame = pd.DataFrame({"customer_id": ["a", "b", "a"], "sku": [1, 1, 2], "stars": [3.5, 4.0, 1.0]})
    path = tmp_path / "r.parquet"
    frame.to_parquet(path)
    table = read_ratings(path, columns={"user": "customer_id", "item": "sku", "rating": "stars", "timestamp": None})
    assert (table.n_users, table.n_items, len(table)) == (2, 2, 3)
    np.testing.assert_array_equal(table.ratings, [3.5, 4.0, 1.0])


def test_columns_by_position_without_header_and_iso_timestamps(tmp_path):
    path = write(tmp_path, "2020-01-01,u1,i1,4\n2020-01-02,u2,i1,5\n")
    table = read_ratings(path, columns={"user": 1, "item": 2, "rating": 3, "timestamp": 0}, header=False)
    assert list(table.user_ids) == ["u1", "u2"] and table.timestamps[1] - table.timestamps[0] == 86400


def test_implicit_every_row_is_an_interaction(tmp_path):
    table = read_ratings(write(tmp_path, "user,item\nu1,i1\nu1,i2\nu2,i1\n"), columns={"rating": None})
    np.testing.assert_array_equal(table.ratings, [1, 1, 1])


@pytest.mark.parametrize(
    ("text", "kwargs", "message"),
    [
        ("user,item,stars\na,b,4\n", {}, r"data.columns.rating='rating' is not a column of .*r.csv; its columns "
                                         r"are: user, item, stars. Set data.columns.rating"),
        ("user,item,rating\na,b,4\n", {"columns": {"user": "customer_id"}}, r"data.columns.user='customer_id'"),
        ("user,item,rating\na,b,4\nc,d,five\n", {}, r"r.csv, line 3: rating 'five' is not a number"),
        ("user,item,rating\na,b,4\nc,d,\n", {}, r"line 3: rating '' is not a number"),
        ("user,item,rating\na,b,4\nc,d,7\n", {"rating_scale": (1, 5)}, r"line 3: rating 7 is outside 1-5.*scale"),
        ("user,item,rating\na,b,4\na,b,3\nc,d,1\nc,d,2\n", {},
         r"user a rated item b more than once \(lines 2, 3\); 2 \(user, item\) pairs .*data.duplicates=last"),
        ("", {}, r"r.csv holds no ratings"),
        ("user,item,rating\n", {}, r"r.csv holds no ratings"),
        ("user\titem\trating\na\tb\t4\n", {"sep": ","}, r"expected fields separated by ',' \(data.sep\) but found "
                                                      r"none; it looks separated by tab '\\t'"),
        ("a b,c,4\n", {"columns": {"user": 0, "item": 1, "rating": 2}}, None),
        ("u,i,r,t\n1,2,3,4\n", {"header": False, "columns": {"user": "u"}}, r"no header line.*by position"),
    ],
)
def test_bad_input_names_file_line_and_fix(tmp_path, text, kwargs, message):
    path = write(tmp_path, text)
    if message is None:  # a space inside a field with commas around: "," wins on the .csv suffix
        assert len(read_ratings(path, **kwargs)) == 1
        return
    with pytest.raises(DataError, match=message):
        read_ratings(path, **kwargs)


def test_ambiguous_separator_asks_for_data_sep(tmp_path):
    path = write(tmp_path, "a,b;c;d,e\nf,g;h;i,j\n", "r.txt")  # 3 fields either way; a .csv name would pick ","
    with pytest.raises(DataError, match=r"separator is ambiguous: ',', ';'.*data.sep"):
        read_ratings(path)


def test_duplicates_last_and_mean(tmp_path):
    path = write(tmp_path, "user,item,rating,timestamp\na,b,4,1\nc,d,1,2\na,b,2,3\n")
    last = read_ratings(path, duplicates="last")
    assert len(last) == 2 and sorted(last.ratings) == [1, 2]
    mean = read_ratings(path, duplicates="mean")
    assert sorted(mean.ratings) == [1, 3] and mean.timestamps.max() == 3


def test_unreadable_parquet_and_missing_file(tmp_path):
    with pytest.raises(DataError, match=r"bad.parquet cannot be read as Parquet.*Is it a Parquet file"):
        read_ratings(write(tmp_path, "user,item,rating\na,b,4\n", "bad.parquet"))
    with pytest.raises(DataError, match=r"does not exist. Set data.path"):
        read_ratings(tmp_path / "nope.csv")


def test_declared_scale_is_used_and_inferred_scale_is_recorded(tmp_path):
    rows = [(f"u{u}", f"i{i}", float((u * 7 + i) % 10 + 1), u * 100 + i) for u in range(12) for i in range(8)]
    path = write(tmp_path, delimited(",", rows=rows))
    declared = ratings_file(str(path), rating_scale=[0, 10], seed=0)
    declared.setup()
    assert declared.rating_scale == (0.0, 10.0) and declared.describe()["scale_source"] == "declared"
    inferred = ratings_file(str(path), seed=0)
    inferred.setup()
    train = inferred.train.ratings
    assert inferred.rating_scale == (float(train.min()), float(train.max()))
    assert inferred.describe()["scale_source"] == "inferred from the training split"
    with pytest.raises(DataError, match=r"line \d+: rating \d+ is outside 1-5"):
        ratings_file(str(path), rating_scale=[1, 5]).setup()


def test_split_too_small_says_which_part_is_empty(tmp_path):
    dm = ratings_file(str(write(tmp_path, "user,item,rating\na,b,4\nc,d,2\n")), seed=0)
    with pytest.raises(DataError, match=r"data.split=random on r \(2 ratings\) leaves validation empty.*"
                                        r"random \(60/20/20\) needs at least 3 ratings"):
        dm.setup()


def test_fixed_test_file_shares_codes_and_counts_cold_start(tmp_path):
    train = write(tmp_path, delimited(",", rows=[(f"u{u}", f"i{i}", 3.0, 1) for u in range(5) for i in range(5)]))
    test = write(tmp_path, "user,item,rating,timestamp\nu0,i9,4,2\nnewbie,i1,5,2\nu1,i9,4,1\n", "t.csv")
    dm = ratings_file(str(train), test_path=str(test), rating_scale=[1, 5], seed=0, val_fraction=0.2)
    dm.setup()
    assert len(dm.test) == 3 and len(dm.train) + len(dm.val) == 25
    assert dm.cold_start() == {"test/cold_users": 1, "test/cold_items": 1}
    assert set(dm.describe()["sources"]) == {"r.csv", "t.csv"}
    with pytest.raises(DataError, match=r"1 \(user, item\) pairs are rated both"):
        overlap = write(tmp_path, "user,item,rating,timestamp\nu0,i0,4,2\n", "o.csv")
        ratings_file(str(train), test_path=str(overlap)).setup()

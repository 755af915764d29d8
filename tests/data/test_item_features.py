"""Item features from files (long and wide tables) for the feature-aware rankers and CAQUBO."""

import numpy as np
import pytest

from qrec.data import DataError
from qrec.data.files import read_ratings
from qrec.data.item_files import features_from_file
from qrec.data.sources import ratings_file


@pytest.fixture
def table(tmp_path):
    path = tmp_path / "clicks.csv"
    path.write_text("user,item\n" + "".join(f"u{u},m{i}\n" for u in range(4) for i in range(3)))
    return read_ratings(path, columns={"rating": None})


def test_long_table_with_and_without_values(tmp_path, table):
    (tmp_path / "f.csv").write_text("item,feature\nm0,drama\nm0,comedy\nm2,drama\nunrated,horror\n")
    feats = features_from_file(table, str(tmp_path / "f.csv"))
    assert feats.names == ["comedy", "drama"] and feats.matrix.shape == (3, 2)
    np.testing.assert_array_equal(feats.matrix.toarray(), [[1, 1], [0, 0], [0, 1]])
    (tmp_path / "v.tsv").write_text("item\tfeature\tvalue\nm0\tdrama\t1\nm1\tdrama\t0\nm1\tcomedy\t0.5\n")
    feats = features_from_file(table, str(tmp_path / "v.tsv"))
    np.testing.assert_array_equal(feats.matrix.toarray(), [[0, 1], [1, 0], [0, 0]])


def test_wide_table(tmp_path, table):
    (tmp_path / "w.csv").write_text("movie,drama,comedy,horror\nm1,1,0,1\nm2,0,1,0\n")
    feats = features_from_file(table, str(tmp_path / "w.csv"))
    assert feats.names == ["drama", "comedy", "horror"]
    np.testing.assert_array_equal(feats.matrix.toarray(), [[0, 0, 0], [1, 0, 1], [0, 1, 0]])


def test_features_matching_no_rated_item_say_so(tmp_path, table):
    (tmp_path / "f.csv").write_text("item,feature\n101,drama\n102,comedy\n")
    with pytest.raises(DataError, match=r"No item of .*f.csv \(column 'item', e.g. 101, 102\) matches a rated item "
                                        r"\(e.g. m0, m1, m2\)"):
        features_from_file(table, str(tmp_path / "f.csv"))
    with pytest.raises(DataError, match=r"data.features.format='tall' is unknown"):
        features_from_file(table, str(tmp_path / "f.csv"), format="tall")


def test_implicit_module_with_features_file(tmp_path):
    rng = np.random.default_rng(0)
    clicks = tmp_path / "clicks.csv"
    rows = [f"u{u},m{i}\n" for u in range(30) for i in rng.choice(20, 6, replace=False)]
    clicks.write_text("user,item\n" + "".join(rows))
    (tmp_path / "f.csv").write_text("item,feature\n" + "".join(f"m{i},g{i % 4}\n" for i in range(20)))
    dm = ratings_file(str(clicks), implicit=True, columns={"rating": None, "timestamp": None}, threshold=None,
                      features={"path": str(tmp_path / "f.csv")}, seed=0, duplicates="last")
    dm.setup()
    assert dm.features.n_features == 4 and dm.train.nnz + dm.val.nnz + dm.test.nnz == 180
    described = dm.describe()
    assert described["features"] == "file:f.csv" and described["threshold"] is None

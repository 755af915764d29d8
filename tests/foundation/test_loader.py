"""The MovieLens-100k loader: sources, cache, checksums and every kind of bad input."""

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from qrec.data import movielens
from qrec.data.movielens import CHECKSUMS, DataError, load_movielens100k

HEADER = "user_id:token\titem_id:token\trating:float\ttimestamp:float\n"


def write_inter(folder: Path, rows: list[str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "ml-100k.inter").write_text(HEADER + "".join(r + "\n" for r in rows))
    return folder


def test_atomic_root_loads_and_encodes(tmp_path):
    root = write_inter(tmp_path, ["10\t5\t4\t100", "11\t5\t2\t101", "10\t7\t5\t102"])
    table = load_movielens100k(str(root))
    assert (table.n_users, table.n_items, len(table)) == (2, 2, 3)
    np.testing.assert_array_equal(table.users, [0, 1, 0])
    np.testing.assert_array_equal(table.ratings, [4, 2, 5])


def test_grouplens_root_loads(tmp_path):
    (tmp_path / "u.data").write_text("1\t1\t5\t874965758\n2\t1\t3\t876893171\n1\t2\t4\t878542960\n")
    flags = "|".join(["0"] * 18 + ["1"])
    (tmp_path / "u.item").write_text(f"1|Toy Story (1995)|01-Jan-1995||http://x|{flags}\n"
                                     f"2|GoldenEye (1995)|01-Jan-1995||http://x|{flags}\n")
    table = load_movielens100k(str(tmp_path))
    assert len(table) == 3 and table.item_info.loc[0, "genres"] == ["Western"]


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ("12\t9\tfive\t103", r"line 4: rating 'five' is not a number"),
        ("12\t9\t7\t103", r"line 4: rating 7 is outside 1-5"),
        ("12\t9\t0\t103", r"line 4: rating 0 is outside 1-5"),
        ("12\t9\t3\tyesterday", r"line 4: timestamp 'yesterday' is not a number"),
        ("10\t5\t3\t103", r"user 10 rated item 5 more than once \(lines 2, 4\)"),
    ],
)
def test_bad_rows_name_file_and_line(tmp_path, row, message):
    root = write_inter(tmp_path, ["10\t5\t4\t100", "11\t5\t2\t101", row])
    with pytest.raises(DataError, match=message) as err:
        load_movielens100k(str(root))
    assert "ml-100k.inter" in str(err.value)


def test_root_without_files_says_what_to_do(tmp_path):
    with pytest.raises(DataError, match="data.root=.*u.data.*ml-100k.inter"):
        load_movielens100k(str(tmp_path))


def test_empty_file(tmp_path):
    root = write_inter(tmp_path, [])
    with pytest.raises(DataError, match="no ratings"):
        load_movielens100k(str(root))


def fake_wheel(tmp_path: Path, corrupt: bool = False) -> Path:
    """A wheel with the real file names; contents match CHECKSUMS only if copied from the cache."""
    import zipfile

    wheel = tmp_path / "src" / "recbole-1.2.1-py3-none-any.whl"
    wheel.parent.mkdir()
    source = movielens.cache_dir()
    with zipfile.ZipFile(wheel, "w") as zf:
        for name in CHECKSUMS:
            data = (source / name).read_bytes() if not corrupt else b"garbage"
            zf.writestr(movielens.WHEEL_DIR + name, data)
    return wheel


@pytest.fixture
def real_cache():
    """Make sure the real files are cached once (this fetches from the package index if needed)."""
    load_movielens100k()
    return movielens.cache_dir()


def patch_pip(monkeypatch, wheel: Path | None, returncode: int = 0):
    def fake_run(cmd, capture_output, text):
        if wheel is not None:
            shutil.copy(wheel, cmd[cmd.index("-d") + 1])
        return subprocess.CompletedProcess(cmd, returncode, "", "no network" if returncode else "")

    monkeypatch.setattr(movielens.subprocess, "run", fake_run)


def test_fetch_fills_cache_atomically(tmp_path, monkeypatch, real_cache):
    wheel = fake_wheel(tmp_path)
    monkeypatch.setenv("QREC_DATA_DIR", str(tmp_path / "cache"))
    patch_pip(monkeypatch, wheel)
    table = load_movielens100k()
    assert (table.n_users, table.n_items, len(table)) == (943, 1682, 100_000)
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == [".ml-100k.lock", "ml-100k"]


@pytest.mark.parametrize("mode", ["network", "checksum"])
def test_failed_fetch_leaves_nothing(tmp_path, monkeypatch, real_cache, mode):
    monkeypatch.setenv("QREC_DATA_DIR", str(tmp_path / "cache"))
    if mode == "network":
        patch_pip(monkeypatch, None, returncode=1)
        expected = "Could not download recbole==1.2.1.*data.root"
    else:
        patch_pip(monkeypatch, fake_wheel(tmp_path, corrupt=True))
        expected = "unexpected sha256; not cached"
    with pytest.raises(DataError, match=expected):
        load_movielens100k()
    assert [p.name for p in (tmp_path / "cache").iterdir()] == [".ml-100k.lock"]  # no folder, no staging


def test_corrupt_cache_is_refetched_and_says_so(tmp_path, monkeypatch, real_cache, capsys):
    wheel = fake_wheel(tmp_path)  # from the real cache, before QREC_DATA_DIR moves it
    cache = tmp_path / "cache" / "ml-100k"
    shutil.copytree(real_cache, cache)
    with open(cache / "ml-100k.inter", "a") as f:
        f.write("1\t1\t5\t0\n")
    monkeypatch.setenv("QREC_DATA_DIR", str(tmp_path / "cache"))
    patch_pip(monkeypatch, wheel)
    assert len(load_movielens100k()) == 100_000
    err = capsys.readouterr().err
    assert "ml-100k.inter has sha256" in err and "it is a cache, so fetching it again" in err
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == [".ml-100k.lock", "ml-100k"]


def test_real_movielens(real_cache):
    table = load_movielens100k()
    assert (table.n_users, table.n_items, len(table)) == (943, 1682, 100_000)
    assert table.ratings.mean() == pytest.approx(3.530, abs=5e-4)
    assert len(table.kg) == 91_631 and table.item_info["genres"].map(len).min() >= 1
    # Canonical fold u1: rows 0..19,999 in file order (first row of u.data: user 196, item 242).
    assert (table.user_ids[table.users[0]], table.item_ids[table.items[0]]) == ("196", "242")

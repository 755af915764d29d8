"""The MovieLens family: readers on fixtures in GroupLens' exact formats, zips, downloads, the shared cache."""

import http.server
import os
import shutil
import subprocess
import sys
import threading
import zipfile
from functools import partial
from pathlib import Path

import pytest

from qrec.data import DataError
from qrec.data.grouplens import SPECS, load_movielens
from qrec.data.table import sha256

FIXTURES = Path(__file__).parents[1] / "fixtures"
FOLDERS = {"ml-1m": "ml-1m", "ml-10m": "ml-10M100K", "ml-20m": "ml-20m", "ml-25m": "ml-20m", "ml-32m": "ml-20m"}


def make_zip(tmp_path: Path, name: str = "ml-1m") -> Path:
    """The fixture folder zipped the way GroupLens ships it (one top folder)."""
    path = tmp_path / f"{name}.zip"
    with zipfile.ZipFile(path, "w") as zf:
        for f in sorted((FIXTURES / FOLDERS[name]).iterdir()):
            zf.write(f, f"{SPECS[name].folder}/{f.name}")
    return path


@pytest.mark.parametrize("name", list(FOLDERS))
def test_each_release_reads_its_exact_format(name):
    table = load_movielens(name, str(FIXTURES / FOLDERS[name]))
    assert (table.n_users, table.n_items, len(table)) == (30, 20, 300)
    assert table.rating_scale == SPECS[name].scale and table.has_timestamps
    half = (table.ratings * 2 % 2 == 1).any()
    assert half == (name != "ml-1m")  # ml-1m: whole stars; the others: half stars
    info = table.item_info
    assert info["title"].str.len().min() > 0 and info["year"].eq("1995").sum() >= 15
    assert info["genres"].map(len).min() >= (0 if name in ("ml-20m", "ml-25m", "ml-32m") else 1)
    assert set(table.sources) == {SPECS[name].ratings, SPECS[name].movies}


def test_latin1_titles_and_quoted_commas():
    ml1m = load_movielens("ml-1m", str(FIXTURES / "ml-1m"))
    assert "Café au lait (1993)" in set(ml1m.item_info["title"])
    ml20m = load_movielens("ml-20m", str(FIXTURES / "ml-20m"))
    assert "American President, The (1995)" in set(ml20m.item_info["title"])


def test_ml1m_genres_implicit_module(make_cfg):
    from hydra.utils import instantiate

    dm = instantiate(make_cfg("model=itemknn_cbf", "data=ml1m_genres", f"data.root={FIXTURES / 'ml-1m'}").data)
    dm.setup()
    assert dm.features.source == "genres" and 0 < dm.features.n_features <= 9
    assert dm.describe()["name"] == "ml-1m" and dm.describe()["threshold"] == 4.0


def test_root_can_be_the_zip_itself_or_the_folder_above(tmp_path):
    zipped = make_zip(tmp_path)
    table = load_movielens("ml-1m", str(zipped), sha256=sha256(zipped))
    assert len(table) == 300 and table.sources == {"ml-1m.zip": sha256(zipped)}
    shutil.copytree(FIXTURES / "ml-1m", tmp_path / "parent" / "ml-1m")
    assert len(load_movielens("ml-1m", str(tmp_path / "parent"))) == 300


def test_zip_with_wrong_checksum_is_refused(tmp_path):
    with pytest.raises(DataError, match=r"ml-1m.zip has sha256 .*but GroupLens' ml-1m.zip has a6898adb.*data.sha256"):
        load_movielens("ml-1m", str(make_zip(tmp_path)))


def test_root_without_ratings_says_what_to_do(tmp_path):
    with pytest.raises(DataError, match=r"holds no ratings.dat: point it at the unzipped ml-1m folder"):
        load_movielens("ml-1m", str(tmp_path))


def test_download_once_into_the_cache_from_a_file_url(tmp_path, monkeypatch, capsys):
    zipped = make_zip(tmp_path)
    monkeypatch.setenv("QREC_DATA_DIR", str(tmp_path / "cache"))
    (tmp_path / "cache").mkdir()
    (tmp_path / "cache" / ".fetch-ml-1m-killed").mkdir()  # left by a fetch killed earlier
    (tmp_path / "cache" / ".fetch-ml-1m-killed" / "ml-1m.zip").write_bytes(b"partial")
    table = load_movielens("ml-1m", url=zipped.as_uri(), sha256=sha256(zipped))
    assert len(table) == 300 and "downloading ml-1m" in capsys.readouterr().err
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == [".ml-1m.lock", "ml-1m"]
    zipped.unlink()  # the second load reads the cache only, and writes nothing (a read-only cache works)
    (tmp_path / "cache" / ".ml-1m.lock").unlink()
    assert len(load_movielens("ml-1m", url=zipped.as_uri(), sha256=sha256(tmp_path / "cache/ml-1m/ml-1m.zip"))) == 300
    assert "downloading" not in capsys.readouterr().err
    assert [p.name for p in (tmp_path / "cache").iterdir()] == ["ml-1m"]


def test_download_from_a_local_http_server_and_corrupt_cache_refetch(tmp_path, monkeypatch, capsys):
    zipped = make_zip(tmp_path)
    handler = partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/ml-1m.zip"
    monkeypatch.setenv("QREC_DATA_DIR", str(tmp_path / "cache"))
    try:
        assert len(load_movielens("ml-1m", url=url, sha256=sha256(zipped))) == 300
        cached = tmp_path / "cache" / "ml-1m" / "ml-1m.zip"
        with open(cached, "ab") as f:
            f.write(b"flipped")
        capsys.readouterr()
        assert len(load_movielens("ml-1m", url=url, sha256=sha256(zipped))) == 300
        assert "is corrupt (ml-1m.zip has sha256" in capsys.readouterr().err and sha256(cached) == sha256(zipped)
        with pytest.raises(DataError, match=r"downloaded with sha256 .*expected 0000.*not cached"):
            load_movielens("ml-20m", url=url, sha256="0" * 64)
        assert not (tmp_path / "cache" / "ml-20m").exists() and not list((tmp_path / "cache").glob(".fetch-*"))
    finally:
        server.shutdown()


def test_unpinned_release_fails_closed_and_unreachable_url_names_data_root(tmp_path, monkeypatch):
    monkeypatch.setenv("QREC_DATA_DIR", str(tmp_path / "cache"))
    with pytest.raises(DataError, match=r"No sha256 is pinned for ml-10m.zip.*data.root=.*data.sha256"):
        load_movielens("ml-10m")
    with pytest.raises(DataError, match=r"Could not download ml-1m .*data.root"):
        load_movielens("ml-1m", url=(tmp_path / "missing.zip").as_uri())


def test_unwritable_cache_names_the_directory_and_qrec_data_dir(tmp_path, monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("")  # a cache "directory" below a regular file can never be created (even by root)
    monkeypatch.setenv("QREC_DATA_DIR", str(blocker / "cache"))
    with pytest.raises(DataError, match=r"Cannot write the data cache .*a-file/cache .*QREC_DATA_DIR="):
        load_movielens("ml-1m", url="file:///nowhere.zip")


SCRIPT = """
import sys
from qrec.data.grouplens import load_movielens
print(len(load_movielens("ml-1m", url=sys.argv[1], sha256=sys.argv[2])))
"""


def test_several_processes_fetch_at_once(tmp_path):
    """Real processes started together: each loads the data, exactly one downloads, nothing is left over."""
    zipped = make_zip(tmp_path)
    env = {**os.environ, "QREC_DATA_DIR": str(tmp_path / "cache")}
    procs = [subprocess.Popen([sys.executable, "-c", SCRIPT, zipped.as_uri(), sha256(zipped)], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(3)]  # fmt: skip
    results = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], [err for _, err in results]
    assert [out.strip() for out, _ in results] == ["300"] * 3
    assert sum("downloading ml-1m" in err for _, err in results) == 1
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == [".ml-1m.lock", "ml-1m"]

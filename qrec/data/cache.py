"""The download cache every dataset shares: one lock, one atomic publish, checksums, progress bars.

Layout: ``$QREC_DATA_DIR`` (or ``~/.cache/qrec``) holds one folder per dataset (``ml-100k``,
``ml-1m`` ...). A folder is only ever created by renaming a complete, verified staging folder
(``.fetch-<name>-*``) onto its final name, so a reader sees either nothing or a whole folder.

Concurrency: fetching takes ``.<name>.lock`` (``filelock``) and re-checks the cache inside it, so
two processes starting together download once and the second reuses the first's folder. A folder
that fails its checksum is moved aside (one rename) before the re-fetch, never deleted in place.
Staging folders left by a killed fetch are removed by the next fetch (it holds the lock, so no
other fetch of that dataset can be writing them).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
import tempfile
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from pathlib import Path

from filelock import FileLock
from tqdm.auto import tqdm

from qrec.data.table import DataError, sha256


def cache_root() -> Path:
    """``$QREC_DATA_DIR`` or ``~/.cache/qrec``."""
    return Path(os.environ.get("QREC_DATA_DIR") or Path.home() / ".cache" / "qrec").expanduser()


def _writable_root(root: Path) -> Path:
    try:
        root.mkdir(parents=True, exist_ok=True)
        probe = tempfile.NamedTemporaryFile(dir=root, prefix=".probe-", delete=True)
        probe.close()
    except OSError as err:
        raise DataError(
            f"Cannot write the data cache {root} ({err.strerror or err}). Choose a writable directory with "
            "QREC_DATA_DIR=/some/writable/dir, or point data.root / data.path at files you already have."
        ) from err
    return root


def cached_folder(name: str, fetch: Callable[[Path], None], verify: Callable[[Path], str | None]) -> Path:
    """The cache folder of dataset ``name``, fetched once (concurrency-safe) if missing or corrupt.

    Args:
        name: folder name under :func:`cache_root`.
        fetch: fills an empty staging folder with the dataset's files (raises DataError on failure).
        verify: ``None`` if a folder is complete and intact, else a sentence saying what is wrong.

    Returns:
        The published folder, verified.
    """
    root = cache_root()
    folder = root / name
    if folder.is_dir() and verify(folder) is None:  # the common case: no lock, nothing written
        return folder
    _writable_root(root)
    with FileLock(str(root / f".{name}.lock")):
        problem = verify(folder) if folder.is_dir() else None
        if folder.is_dir() and problem is None:  # another process published it while we waited
            return folder
        for stale in root.glob(f".fetch-{name}-*"):  # left by a killed fetch; we hold the lock
            shutil.rmtree(stale, ignore_errors=True)
        if problem is not None:
            print(f"qrec: the cached {folder} is corrupt ({problem}); it is a cache, so fetching it again.",
                  file=sys.stderr)  # fmt: skip
            aside = root / f".fetch-{name}-corrupt-{uuid.uuid4().hex[:8]}"
            os.rename(folder, aside)  # one rename: the name never points at a half-deleted folder
            shutil.rmtree(aside, ignore_errors=True)
        staging = Path(tempfile.mkdtemp(dir=root, prefix=f".fetch-{name}-"))
        try:
            fetch(staging)
            problem = verify(staging)
            if problem is not None:
                raise DataError(f"The freshly fetched {name} is not what was expected ({problem}); not cached.")
            os.rename(staging, folder)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return folder


def download(url: str, dest: Path, expected_sha256: str | None, what: str) -> None:
    """Stream ``url`` (http(s) or ``file://``) to ``dest`` with a progress bar, checking its sha256.

    Raises:
        DataError: unreachable URL, or the bytes do not have ``expected_sha256`` (``dest`` is removed).
    """
    digest = hashlib.sha256()
    try:
        with urllib.request.urlopen(url, timeout=60) as response, open(dest, "wb") as out:
            total = int(response.headers.get("Content-Length") or 0) or None
            with tqdm(total=total, unit="B", unit_scale=True, desc=f"qrec: {what}", file=sys.stderr,
                      leave=False) as bar:  # fmt: skip
                for block in iter(lambda: response.read(1 << 20), b""):
                    out.write(block)
                    digest.update(block)
                    bar.update(len(block))
    except (urllib.error.URLError, OSError) as err:
        dest.unlink(missing_ok=True)
        raise DataError(
            f"Could not download {what} from {url} ({getattr(err, 'reason', err)}). Without network access, "
            "download it elsewhere and run with data.root=/path/to/the/zip-or-folder."
        ) from err
    if expected_sha256 is not None and digest.hexdigest() != expected_sha256:
        dest.unlink(missing_ok=True)
        raise DataError(
            f"{url} downloaded with sha256 {digest.hexdigest()}, expected {expected_sha256}; not cached. "
            "The file changed upstream or the download was tampered with."
        )


def check_sha256(path: Path, expected: str) -> str | None:
    """``None`` if ``path`` exists with sha256 ``expected``, else what is wrong (for ``verify``)."""
    if not path.is_file():
        return f"{path.name} is missing"
    actual = sha256(path)
    return None if actual == expected else f"{path.name} has sha256 {actual}, expected {expected}"

"""A cache of fitted models shared by runs (a hybrid's stage 1, an ensemble's members).

Guarantees:

- never stale: the key covers the caller's config and data plus the source of the *whole* installed
  ``qrec`` package and the versions of torch, lightning, pennylane and numpy, so a fix anywhere in the
  code a model calls (simulator, circuits, ALS solver...) or a library upgrade retrains;
- never corrupt: an entry is a small header (key, sha256 and size of the payload) followed by the
  ``torch.save`` payload; it is written under a unique temporary name in the same directory and renamed
  atomically, and its hash is checked on load (a mismatch is reported, naming the file, and the caller
  retrains);
- concurrent jobs: :meth:`ModelCache.lock` serialises jobs that need the same entry (one trains, the
  others wait and reuse it); if the wait times out a job trains privately;
- a directory that cannot be written (read-only disk) is a warning: the run goes on without caching.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import io
import json
import logging
import os
import tempfile
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path

import torch

log = logging.getLogger(__name__)

MAGIC = b"QRECCACHE1\n"
LIBRARIES = ("torch", "lightning", "pennylane", "numpy")
SOURCE_ROOT = Path(__file__).resolve().parents[1]  # the installed `qrec` package
LOCK_TIMEOUT_S = float(os.environ.get("QREC_CACHE_LOCK_TIMEOUT", 6 * 3600))


def default_root() -> Path:
    """``$QREC_DATA_DIR/stage1`` (default ``~/.cache/qrec/stage1``)."""
    return Path(os.environ.get("QREC_DATA_DIR") or Path.home() / ".cache" / "qrec") / "stage1"


@functools.lru_cache(maxsize=8)
def source_fingerprint(root: Path | None = None) -> str:
    """sha256 over every ``.py`` file of the package at ``root`` (default: the installed ``qrec``):
    sorted relative paths and their bytes, so editing, adding, renaming or deleting a module changes it."""
    root = Path(root or SOURCE_ROOT)
    digest = hashlib.sha256()
    for file in sorted(root.rglob("*.py")):
        digest.update(file.relative_to(root).as_posix().encode() + b"\0")
        digest.update(file.read_bytes() + b"\0")
    return digest.hexdigest()


def library_versions() -> dict[str, str | None]:
    """Installed versions of the libraries whose numerics a cached model depends on (None: not installed)."""
    versions = {}
    for name in LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def cache_key(payload: dict) -> str:
    """A 24-hex key of ``payload`` (JSON-serialisable) + the qrec source + the library versions."""
    full = {"payload": payload, "code": source_fingerprint(SOURCE_ROOT), "versions": library_versions()}
    return hashlib.sha256(json.dumps(full, sort_keys=True, default=str).encode()).hexdigest()[:24]


class ModelCache:
    """Checksummed, atomically written, lockable ``state_dict`` entries in one directory."""

    def __init__(self, directory: str | Path | None = None):
        self.directory = Path(directory) if directory else default_root()

    def path(self, name: str, key: str) -> Path:
        return self.directory / f"{name}-{key}.pt"

    @contextlib.contextmanager
    def lock(self, path: Path, timeout: float = LOCK_TIMEOUT_S) -> Iterator[bool]:
        """Hold ``<path>.lock`` while checking and filling one entry; yields whether the lock is held.

        Not held (yields False) when the directory cannot be written or the wait exceeds ``timeout``:
        the caller then trains privately (saving stays atomic, so the file is never corrupt either way).
        """
        from filelock import FileLock, Timeout

        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            lock = FileLock(str(path) + ".lock", timeout=timeout)
            lock.acquire()
        except Timeout:
            log.warning("model cache: %s is still locked after %.0f s; training privately.", path, timeout)
            yield False
            return
        except OSError as err:
            log.warning("model cache: cannot lock %s (%s); going on without the lock.", path, err)
            yield False
            return
        try:
            yield True
        finally:
            lock.release()

    def load(self, path: Path, key: str) -> dict | None:
        """The stored entry (a dict of tensors and numbers) if ``path`` holds a valid one for ``key``; None
        (with a warning naming the file) if it is corrupt or belongs to another key; None silently if absent."""
        if not path.is_file():
            return None
        try:
            data = path.read_bytes()
            if not data.startswith(MAGIC):
                raise ValueError("not a qrec cache entry")
            header_end = data.index(b"\n", len(MAGIC))
            header = json.loads(data[len(MAGIC) : header_end])
            payload = data[header_end + 1 :]
            if header.get("key") != key:
                raise ValueError(f"stored key {header.get('key')} != {key}")
            if len(payload) != header["size"] or hashlib.sha256(payload).hexdigest() != header["sha256"]:
                raise ValueError("content hash mismatch: the file is corrupt (truncated or altered)")
            # weights_only: a cache directory may be shared, so its files are not trusted to run code.
            return torch.load(io.BytesIO(payload), map_location="cpu", weights_only=True)
        except Exception as err:  # noqa: BLE001 - any unreadable entry means "retrain", never "crash"
            log.warning("model cache: %s is unusable (%s); retraining it.", path, err)
            return None

    def save(self, path: Path, key: str, entry: dict) -> bool:
        """Write ``entry`` (tensors and numbers only: it is loaded with ``weights_only=True``) atomically;
        False (with a warning) if the directory cannot be written."""
        buffer = io.BytesIO()
        torch.save(entry, buffer)
        payload = buffer.getvalue()
        header = json.dumps({"key": key, "sha256": hashlib.sha256(payload).hexdigest(), "size": len(payload)})
        tmp = None
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
            with os.fdopen(fd, "wb") as handle:
                handle.write(MAGIC + header.encode() + b"\n" + payload)
            os.replace(tmp, path)  # atomic: readers see the old entry or the complete new one
            return True
        except OSError as err:
            log.warning("model cache: cannot write %s (%s); going on without caching. Set QREC_DATA_DIR to a "
                        "writable directory to cache fitted models.", path, err)  # fmt: skip
            if tmp is not None:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
            return False

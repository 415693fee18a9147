"""Download a corpus sample from its public source into the user cache, verified file by file.

* TIMIT sample: the NLTK data package ``timit.zip`` (``<base>/timit.zip``, base
  ``https://raw.githubusercontent.com/nltk/nltk_data/gh-pages/packages/corpora/``); its ``timit/`` folder becomes
  ``timit_sample/``.
* LibriSpeech sample: openslr resource 12 (base ``https://www.openslr.org/resources/12/``), archives
  ``test-other.tar.gz`` and ``train-clean-100.tar.gz`` (about 6.6 GB together); only the sample's files are kept,
  picked by file name from the manifest.  Archives are deleted after extraction unless ``keep_archives``.

The manifests ``data/<sample>.sha256`` (``sha256sum`` format, written by ``data/make_manifests.py``) list every file of
the sample with its SHA-256; each extracted file is checked against them, and the sample folder only appears (by an
atomic rename) once every file has been found and verified.  Archives go to ``<cache>/downloads/<name>.part`` and are
renamed when complete.  Any failure removes the partial archive and the partial folder.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.request
import zipfile
import zlib
from pathlib import Path, PurePosixPath

from tqdm.auto import tqdm

from .roots import SAMPLE_DIRS, cache_dir, check_corpus, project_root

DEFAULT_URLS = {
    "timit": "https://raw.githubusercontent.com/nltk/nltk_data/gh-pages/packages/corpora/",
    "librispeech": "https://www.openslr.org/resources/12/",
}
URL_ENV = {"timit": "WAVELAB_DATA_URL_TIMIT", "librispeech": "WAVELAB_DATA_URL_LIBRISPEECH"}
ARCHIVES = {"timit": ("timit.zip",), "librispeech": ("test-other.tar.gz", "train-clean-100.tar.gz")}
_CHUNK = 1 << 20


class DownloadError(RuntimeError):
    """A download that failed, or an archive that is corrupt or does not hold the files the manifest lists."""


def manifest_path(corpus: str) -> Path:
    """``<project root>/data/<sample dir>.sha256``, the committed per-file checksums of ``corpus``'s sample."""
    return project_root() / "data" / f"{SAMPLE_DIRS[check_corpus(corpus)]}.sha256"


def sha256_file(path: str | os.PathLike) -> str:
    """Hex SHA-256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(_CHUNK), b""):
            h.update(block)
    return h.hexdigest()


def read_manifest(path: str | os.PathLike) -> dict[str, str]:
    """Read a ``sha256sum``-style manifest (``<hex>  <relative/posix/path>`` per line) into ``{relpath: hex}``.

    Raises:
        FileNotFoundError: no such manifest.
        DownloadError: a malformed line, or a path that is absolute or climbs out with ``..``.
    """
    entries: dict[str, str] = {}
    for n, line in enumerate(Path(path).read_text().splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        digest, _, rel = line.partition("  ")
        p = PurePosixPath(rel)
        if len(digest) != 64 or not rel or p.is_absolute() or ".." in p.parts:
            raise DownloadError(f"manifest {path} line {n} is malformed: {line!r}; regenerate it with "
                                f"data/make_manifests.py")
        entries[rel] = digest.lower()
    return entries


def download_file(url: str, dest: str | os.PathLike, progress: bool = True, expected_sha256: str | None = None) -> Path:
    """Download ``url`` (http(s) or file://) to ``dest`` through ``dest.part``, renamed atomically when complete.

    Args:
        url: the source.
        dest: final path; its folder is created.
        progress: show a tqdm bar (bytes).
        expected_sha256: if given, the file's SHA-256 must match.
    Returns:
        ``dest`` as a Path.
    Raises:
        DownloadError: network/IO failure, a short read, or a checksum mismatch; no ``.part`` file is left behind.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    h = hashlib.sha256()
    try:
        with urllib.request.urlopen(url) as r, open(part, "wb") as f:
            total = r.headers.get("Content-Length")
            total = int(total) if total else None
            got = 0
            with tqdm(total=total, unit="B", unit_scale=True, desc=dest.name, disable=not progress) as bar:
                for block in iter(lambda: r.read(_CHUNK), b""):
                    f.write(block)
                    h.update(block)
                    got += len(block)
                    bar.update(len(block))
        if total is not None and got != total:
            raise DownloadError(f"download of {url} stopped after {got} of {total} bytes; try again")
        if expected_sha256 is not None and h.hexdigest() != expected_sha256.lower():
            raise DownloadError(f"{url} has SHA-256 {h.hexdigest()}, expected {expected_sha256}; the source changed "
                                f"or the download is corrupt")
        os.replace(part, dest)
    except (urllib.error.URLError, OSError) as e:
        raise DownloadError(f"cannot download {url}: {e}") from e
    finally:
        part.unlink(missing_ok=True)
    return dest


def _member_to_rel(corpus: str, name: str, wanted: dict[str, str], by_name: dict[str, str]) -> str | None:
    """Sample path of an archive member, or None if the manifest does not want it.

    TIMIT: ``timit/<rel>`` -> ``<rel>``.  LibriSpeech: matched by file name, which is unique in the corpus
    (``LibriSpeech/test-other/1688/142285/1688-142285-0000.flac`` -> ``test-other/1688/1688-142285-0000.flac``,
    ``LibriSpeech/SPEAKERS.TXT`` -> ``SPEAKERS.TXT``).
    """
    parts = PurePosixPath(name).parts
    if corpus == "timit":
        rel = "/".join(parts[1:]) if parts and parts[0] == "timit" else "/".join(parts)
        return rel if rel in wanted else None
    return by_name.get(parts[-1]) if parts else None


def _write_checked(stream, target: Path, rel: str, digest: str, archive: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    h = hashlib.sha256()
    with open(target, "wb") as out:
        for block in iter(lambda: stream.read(_CHUNK), b""):
            out.write(block)
            h.update(block)
    if h.hexdigest() != digest:
        raise DownloadError(f"{rel} extracted from {archive.name} has SHA-256 {h.hexdigest()}, but the manifest says "
                            f"{digest}; the archive is corrupt or a different version")


def extract_verified(archive: Path, corpus: str, dest: Path, wanted: dict[str, str], done: set[str]) -> None:
    """Extract the manifest's files from ``archive`` (zip or tar, any compression) into ``dest``, verifying each.

    Members are mapped to sample paths per corpus (see :func:`_member_to_rel`); files
    already in ``done`` are skipped and every verified path is added to it.  Only listed files are written, at paths
    taken from the manifest, so an archive cannot write outside ``dest``.

    Raises:
        DownloadError: the archive is unreadable/corrupt or a file's checksum differs.
    """
    by_name = {PurePosixPath(rel).name: rel for rel in wanted}

    def to_rel(name: str) -> str | None:
        return _member_to_rel(corpus, name, wanted, by_name)

    try:
        if zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as z:
                for info in z.infolist():
                    rel = None if info.is_dir() else to_rel(info.filename)
                    if rel is None or rel in done:
                        continue
                    with z.open(info) as src:
                        _write_checked(src, dest / rel, rel, wanted[rel], archive)
                    done.add(rel)
        else:
            with tarfile.open(archive, mode="r|*") as t:  # streaming: one pass over a multi-GB archive
                for member in t:
                    rel = to_rel(member.name) if member.isfile() else None
                    if rel is None or rel in done:
                        continue
                    src = t.extractfile(member)
                    _write_checked(src, dest / rel, rel, wanted[rel], archive)
                    done.add(rel)
    except DownloadError:
        raise
    except (zipfile.BadZipFile, tarfile.TarError, zlib.error, EOFError, OSError) as e:
        raise DownloadError(f"archive {archive} is corrupt or unreadable ({type(e).__name__}: {e}); "
                            f"download it again (a partial or damaged download is deleted)") from e


def download_corpus(corpus: str, cache: str | os.PathLike | None = None, url_base: str | None = None,
                    manifest: str | os.PathLike | None = None, progress: bool = True,
                    keep_archives: bool = False) -> Path:
    """Download the sample of ``corpus`` into the user cache and verify every file; return its folder.

    Args:
        corpus: ``"timit"`` or ``"librispeech"``.
        cache: cache folder (default :func:`wavelab.data.roots.cache_dir`).
        url_base: folder URL holding the archives (default: env ``WAVELAB_DATA_URL_TIMIT`` /
            ``WAVELAB_DATA_URL_LIBRISPEECH``, else the public source in :data:`DEFAULT_URLS`); ``file://`` works.
        manifest: per-file checksum manifest (default :func:`manifest_path`).
        progress: tqdm progress bars.
        keep_archives: keep the downloaded archives in ``<cache>/downloads/``.
    Returns:
        ``<cache>/<sample dir>`` (``timit_sample`` or ``librispeech_sample``), complete and verified. Returned at
        once if it already exists.
    Raises:
        DownloadError: download failure, corrupt archive, checksum mismatch or files missing from the archives. The
            partial archive and folder are removed.
    """
    check_corpus(corpus)
    cache = Path(cache) if cache is not None else cache_dir()
    final = cache / SAMPLE_DIRS[corpus]
    if final.is_dir():
        return final
    wanted = read_manifest(manifest if manifest is not None else manifest_path(corpus))
    base = url_base or os.environ.get(URL_ENV[corpus]) or DEFAULT_URLS[corpus]
    base = base if base.endswith("/") else base + "/"
    downloads = cache / "downloads"
    cache.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{SAMPLE_DIRS[corpus]}-", dir=cache))
    done: set[str] = set()
    fetched: list[Path] = []
    try:
        for name in ARCHIVES[corpus]:
            archive = downloads / name
            if not archive.is_file():
                download_file(base + name, archive, progress=progress)
                fetched.append(archive)
            try:
                extract_verified(archive, corpus, tmp, wanted, done)
            except DownloadError:
                archive.unlink(missing_ok=True)
                raise
        missing = sorted(set(wanted) - done)
        if missing:
            raise DownloadError(f"the archives {ARCHIVES[corpus]} from {base} lack {len(missing)} file(s) the "
                                f"manifest lists, e.g. {missing[:3]}; the source changed")
        try:
            os.replace(tmp, final)
        except OSError:
            if not final.is_dir():  # another process finished first otherwise
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        if not keep_archives:
            for archive in fetched:
                archive.unlink(missing_ok=True)
        if downloads.is_dir() and not any(downloads.iterdir()):
            downloads.rmdir()
    return final

"""Write the per-file SHA-256 manifests of the corpus samples: ``data/timit_sample.sha256`` and
``data/librispeech_sample.sha256`` (``sha256sum`` format: ``<hex>  <path relative to the sample folder>``).

The download code (:mod:`wavelab.data.download`) checks every extracted file against them.  Run from the project root:

    .venv/bin/python data/make_manifests.py [SOURCE]

SOURCE is the folder holding ``timit_sample/`` and ``librispeech_sample/`` (default ``../shared/data``).  The manifests
are small text files and are committed; the audio never is.
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from wavelab.data.download import sha256_file  # noqa: E402
from wavelab.data.roots import SAMPLE_DIRS  # noqa: E402


def write_manifest(sample: Path, out: Path) -> int:
    """Hash every file under ``sample`` (sorted, posix relative paths) into ``out``; return the number of files."""
    files = sorted(p for p in sample.rglob("*") if p.is_file())
    lines = [f"{sha256_file(p)}  {p.relative_to(sample).as_posix()}" for p in files]
    out.write_text("\n".join(lines) + "\n")
    return len(lines)


def main(argv: list[str]) -> None:
    source = Path(argv[1]) if len(argv) > 1 else HERE.parent.parent / "shared" / "data"
    for sample_dir in SAMPLE_DIRS.values():
        sample = source / sample_dir
        if not sample.is_dir():
            raise SystemExit(f"{sample} does not exist; pass the folder holding {sample_dir}/ as the argument")
        n = write_manifest(sample, HERE / f"{sample_dir}.sha256")
        print(f"{sample_dir}: {n} files -> data/{sample_dir}.sha256")


if __name__ == "__main__":
    main(sys.argv)

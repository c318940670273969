"""The exported folder's manifest: every file's size and sha256, and the exporter's version.

The export writes ``manifest.json`` last; the runtime checks the folder against it before it creates
a session, so a missing or damaged graph is named (with the command that exports it again) instead
of surfacing as onnxruntime's NO_SUCHFILE or INVALID_PROTOBUF. No torch here: the runtime imports it.
"""

import hashlib
import json
import logging
from pathlib import Path
from typing import Dict

MANIFEST = "manifest.json"
REEXPORT = ("export it again: python -m espnet2_glow_wavegan.bin.export_onnx --train_config <config.yaml> "
            "--model_file <model.pth> --out_dir <a new folder> (add --quantize true for int8)")


def exporter_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f"espnet2-glow-wavegan {version('espnet2-glow-wavegan')}"
    except PackageNotFoundError:
        return "espnet2-glow-wavegan (not installed)"


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_manifest(folder: Path) -> Path:
    files: Dict[str, dict] = {}
    for path in sorted(p for p in Path(folder).iterdir() if p.is_file() and p.name != MANIFEST):
        files[path.name] = {"bytes": path.stat().st_size, "sha256": sha256(path)}
    out = Path(folder) / MANIFEST
    out.write_text(json.dumps({"exporter": exporter_version(), "files": files}, indent=2) + "\n")
    return out


def check_folder(folder: Path) -> None:
    """Raise ``ValueError`` naming the first missing or damaged file of an exported folder.

    A folder exported before manifests existed is used as it is, with a one-line notice."""
    folder = Path(folder)
    manifest = folder / MANIFEST
    if not manifest.is_file():
        logging.getLogger(__name__).warning(f"{folder} has no {MANIFEST} (exported by an older version): its files "
                                            "are not checked; export again to have them checked")
        return
    try:
        files = json.loads(manifest.read_text())["files"]
    except (ValueError, KeyError) as e:
        raise ValueError(f"{manifest} is damaged ({e}); {REEXPORT}") from None
    for name, expected in files.items():
        path = folder / name
        if not path.is_file():
            raise ValueError(f"{path} is missing from the exported folder; {REEXPORT}")
        size = path.stat().st_size
        if size != expected["bytes"]:
            raise ValueError(f"{path} is damaged: {size} bytes, the export wrote {expected['bytes']}; {REEXPORT}")
        if sha256(path) != expected["sha256"]:
            raise ValueError(f"{path} is damaged: its sha256 differs from the one the export wrote; {REEXPORT}")

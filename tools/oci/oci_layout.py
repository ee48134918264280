"""What both image builders share (wasm_oci.py for the filter, image_oci.py
for ext-authz): reproducible blobs, an OCI image layout directory, the
layout as a tarball (`oci-archive`), and reading blobs back checked against
their descriptors. Python 3 standard library only.

Reproducible means: JSON with sorted keys and no whitespace, tar entries in
a fixed order with fixed owners, modes and mtime (SOURCE_DATE_EPOCH), gzip
with no name and mtime 0. The same inputs always give the same digests.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import shutil
import tarfile
import tomllib
from pathlib import Path

OCI_LAYOUT = {"imageLayoutVersion": "1.0.0"}
MT_INDEX = "application/vnd.oci.image.index.v1+json"
MT_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MT_IMAGE_CONFIG = "application/vnd.oci.image.config.v1+json"
MT_TAR_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
REF_NAME = "org.opencontainers.image.ref.name"
TITLE = "org.opencontainers.image.title"
ROOT = Path(__file__).resolve().parents[2]


class OciError(Exception):
    """The input or a layout is not what it must be."""


def canonical_json(value) -> bytes:
    """Stable bytes: sorted keys, no whitespace, so digests are reproducible."""
    return json.dumps(value, sort_keys=True, separators=(",", ":")).encode()


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def descriptor(media_type: str, data: bytes, annotations: dict | None = None) -> dict:
    d = {"mediaType": media_type, "digest": sha256(data), "size": len(data)}
    if annotations:
        d["annotations"] = annotations
    return d


def _workspace_package() -> dict:
    with open(ROOT / "Cargo.toml", "rb") as f:
        return tomllib.load(f)["workspace"]["package"]


def workspace_version() -> str:
    return _workspace_package()["version"]


def workspace_repository() -> str:
    return _workspace_package().get("repository", "")


def workspace_license() -> str:
    return _workspace_package().get("license", "")


def source_date_epoch() -> int:
    """SOURCE_DATE_EPOCH (the reproducible-builds convention), default 0."""
    raw = os.environ.get("SOURCE_DATE_EPOCH", "0") or "0"
    try:
        value = int(raw)
    except ValueError:
        raise OciError(f"SOURCE_DATE_EPOCH={raw!r} is not a number of seconds") from None
    if value < 0:
        raise OciError(f"SOURCE_DATE_EPOCH={raw!r} is negative")
    return value


def tar_entry(name: str, *, mtime: int, mode: int, size: int = 0, directory: bool = False) -> tarfile.TarInfo:
    """A tar header owned by 0:0 with no user or group names."""
    info = tarfile.TarInfo(name)
    info.type = tarfile.DIRTYPE if directory else tarfile.REGTYPE
    info.size = 0 if directory else size
    info.mode = mode
    info.mtime = mtime
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


def gzip_bytes(data: bytes) -> bytes:
    buf = io.BytesIO()
    # No file name and mtime 0 in the gzip header: reproducible.
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, mtime=0, compresslevel=9) as gz:
        gz.write(data)
    return buf.getvalue()


def write_layout(layout: Path, manifest: bytes, blobs: dict[str, bytes], tag: str) -> None:
    if layout.exists():
        shutil.rmtree(layout)
    (layout / "blobs" / "sha256").mkdir(parents=True)
    for digest, data in blobs.items():
        (layout / "blobs" / "sha256" / digest.removeprefix("sha256:")).write_bytes(data)
    (layout / "oci-layout").write_bytes(canonical_json(OCI_LAYOUT))
    index = {
        "schemaVersion": 2,
        "mediaType": MT_INDEX,
        "manifests": [descriptor(MT_MANIFEST, manifest, {REF_NAME: tag})],
    }
    (layout / "index.json").write_bytes(canonical_json(index))


def layout_files(layout: Path) -> list[str]:
    """Relative paths of every file in the layout, sorted."""
    return sorted(
        p.relative_to(layout).as_posix() for p in layout.rglob("*") if p.is_file()
    )


def write_archive(layout: Path, archive: Path, mtime: int) -> None:
    """The layout as an uncompressed tar (skopeo's `oci-archive:`)."""
    tmp = archive.with_suffix(archive.suffix + ".tmp")
    with tarfile.open(tmp, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        dirs = sorted({str(Path(f).parent) for f in layout_files(layout)} - {"."})
        for d in ["blobs"] + [d for d in dirs if d != "blobs"]:
            info = tarfile.TarInfo(d)
            info.type = tarfile.DIRTYPE
            info.mode = 0o755
            info.mtime = mtime
            tar.addfile(info)
        for rel in layout_files(layout):
            data = (layout / rel).read_bytes()
            info = tarfile.TarInfo(rel)
            info.size = len(data)
            info.mode = 0o644
            info.mtime = mtime
            tar.addfile(info, io.BytesIO(data))
    os.replace(tmp, archive)


def load_json(data: bytes, what: str):
    try:
        return json.loads(data)
    except ValueError as e:
        raise OciError(f"{what} is not JSON: {e}") from None


def check(cond: bool, msg: str) -> None:
    if not cond:
        raise OciError(msg)


def read_blob(layout: Path, desc: dict, what: str) -> bytes:
    """A blob named by a descriptor, checked against its digest and size."""
    digest = desc.get("digest", "")
    check(digest.startswith("sha256:") and len(digest) == 71, f"{what}: bad digest {digest!r}")
    path = layout / "blobs" / "sha256" / digest.removeprefix("sha256:")
    check(path.is_file(), f"{what}: blob {digest} missing")
    data = path.read_bytes()
    check(sha256(data) == digest, f"{what}: blob content does not hash to {digest}")
    check(len(data) == desc.get("size"), f"{what}: size {len(data)} != descriptor {desc.get('size')}")
    return data


def read_manifest(layout: Path) -> tuple[dict, dict, bytes]:
    """The layout's one manifest: (its index descriptor, the manifest, its
    config blob), each checked."""
    check((layout / "oci-layout").is_file(), "oci-layout missing")
    check(
        load_json((layout / "oci-layout").read_bytes(), "oci-layout") == OCI_LAYOUT,
        "oci-layout is not imageLayoutVersion 1.0.0",
    )
    check((layout / "index.json").is_file(), "index.json missing")
    index = load_json((layout / "index.json").read_bytes(), "index.json")
    check(index.get("schemaVersion") == 2, "index.json: schemaVersion must be 2")
    manifests = index.get("manifests", [])
    check(len(manifests) == 1, f"index.json: expected 1 manifest, found {len(manifests)}")
    mdesc = manifests[0]
    check(mdesc.get("mediaType") == MT_MANIFEST, "index.json: manifest media type")
    check(bool(mdesc.get("annotations", {}).get(REF_NAME)), "index.json: no ref name (tag)")
    manifest = load_json(read_blob(layout, mdesc, "manifest"), "manifest")
    check(manifest.get("schemaVersion") == 2, "manifest: schemaVersion must be 2")
    check(manifest.get("mediaType") == MT_MANIFEST, "manifest: mediaType")
    config = read_blob(layout, manifest.get("config", {}), "config")
    return mdesc, manifest, config


def check_blob_set(layout: Path, referenced: set[str]) -> None:
    """Every blob present is referenced, and every referenced one present."""
    present = {"sha256:" + p.name for p in (layout / "blobs" / "sha256").iterdir()}
    check(present == referenced, f"unreferenced or missing blobs: {sorted(present ^ referenced)}")


def check_archive(layout: Path, archive: Path) -> None:
    """The tarball holds exactly the layout's files, byte for byte."""
    with tarfile.open(archive) as tar:
        files = {m.name: m for m in tar.getmembers() if m.isfile()}
        check(sorted(files) == layout_files(layout), "archive and layout list different files")
        for rel, m in files.items():
            f = tar.extractfile(m)
            check(f is not None and f.read() == (layout / rel).read_bytes(), f"archive: {rel} differs")

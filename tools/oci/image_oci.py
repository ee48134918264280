#!/usr/bin/env python3
"""Package the static ext-authz binary as a minimal OCI container image,
without Docker: an OCI image layout directory plus the same layout as a
tarball (`oci-archive`). Python 3 standard library only.

    image_oci.py build --binary ext-authz --out target/oci [--tag T]
                       [--revision SHA] [--repo REGISTRY/NAME]
                       [--pin k8s/image/kustomization.yaml]
    image_oci.py verify --layout target/oci/ext-authz [--binary ext-authz]

The image is one layer: `/ext-authz` (0755, static: a dynamically linked
binary is refused) and `/etc/passwd` and `/etc/group` naming user and group
65532 `nonroot`, the user it runs as. No shell, no libc, no CA bundle:
ext-authz trusts Mozilla's roots compiled in (webpki-roots) plus the PEM
file EXT_AUTHZ_IDP_CA_FILE names, and never reads /etc/ssl, so a bundle
there would be dead weight that looks like a way to add a CA and is not.

Reproducible: the same binary, tag, revision and SOURCE_DATE_EPOCH always
give the same manifest digest (oci_layout.py says how). `created` is
SOURCE_DATE_EPOCH (default 0).

`--pin DIR` writes DIR/kustomization.yaml, a kustomize Component that pins
ghcr.io/faas-mesh-auth/ext-authz (the name k8s/base uses) to `--repo` at
this digest: push with digests preserved, then add DIR to an overlay's
`components:`.
"""

from __future__ import annotations

import argparse
import gzip
import io
import struct
import sys
import tarfile
from datetime import UTC, datetime
from pathlib import Path

from oci_layout import (
    MT_IMAGE_CONFIG,
    MT_MANIFEST,
    MT_TAR_GZIP,
    TITLE,
    OciError,
    canonical_json,
    check,
    check_archive,
    check_blob_set,
    descriptor,
    gzip_bytes,
    load_json,
    read_blob,
    read_manifest,
    sha256,
    source_date_epoch,
    tar_entry,
    workspace_license,
    workspace_repository,
    workspace_version,
    write_archive,
    write_layout,
)

NAME = "ext-authz"
ENTRYPOINT = "/ext-authz"
# distroless's `nonroot`; k8s/base/deployment.yaml runs as the same ids.
UID = GID = 65532
USER = f"{UID}:{GID}"
# The deployment sets these too; an image run without them logs JSON
# (what log collectors parse) and listens where the Service points.
ENV = ["EXT_AUTHZ_LOG_FORMAT=json"]
PORTS = ["8080/tcp", "9000/tcp"]
# The image name the k8s layouts use; --pin rewrites it.
K8S_IMAGE = "ghcr.io/faas-mesh-auth/ext-authz"
PASSWD = f"root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:{UID}:{GID}:nonroot:/nonexistent:/sbin/nologin\n"
GROUP = f"root:x:0:\nnonroot:x:{GID}:\n"

ELF_MAGIC = b"\x7fELF"
PT_INTERP = 3


def check_static_x86_64(binary: bytes) -> None:
    """An x86-64 ELF executable with no program interpreter (static)."""
    check(binary.startswith(ELF_MAGIC), "the binary is not an ELF file")
    check(len(binary) >= 64, "the binary is truncated")
    ei_class, ei_data = binary[4], binary[5]
    check(ei_class == 2 and ei_data == 1, "the binary is not 64-bit little-endian ELF")
    e_machine = struct.unpack_from("<H", binary, 18)[0]
    check(e_machine == 62, f"the binary is not x86-64 (e_machine {e_machine})")
    e_phoff = struct.unpack_from("<Q", binary, 32)[0]
    e_phentsize, e_phnum = struct.unpack_from("<HH", binary, 54)
    check(e_phoff + e_phentsize * e_phnum <= len(binary), "the binary's program headers are truncated")
    for i in range(e_phnum):
        p_type = struct.unpack_from("<I", binary, e_phoff + i * e_phentsize)[0]
        check(
            p_type != PT_INTERP,
            "the binary is dynamically linked (it has a PT_INTERP): build it for x86_64-unknown-linux-musl",
        )


def rootfs_files(binary: bytes) -> list[tuple[str, int, bytes | None]]:
    """(path, mode, content or None for a directory), in tar order."""
    return [
        ("etc/", 0o755, None),
        ("etc/group", 0o644, GROUP.encode()),
        ("etc/passwd", 0o644, PASSWD.encode()),
        (ENTRYPOINT.lstrip("/"), 0o755, binary),
    ]


def layer_tar(binary: bytes, mtime: int) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for path, mode, data in rootfs_files(binary):
            if data is None:
                tar.addfile(tar_entry(path.rstrip("/"), mtime=mtime, mode=mode, directory=True))
            else:
                tar.addfile(tar_entry(path, mtime=mtime, mode=mode, size=len(data)), io.BytesIO(data))
    return buf.getvalue()


def rfc3339(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def labels(version: str, revision: str, created: str) -> dict[str, str]:
    out = {
        TITLE: NAME,
        "org.opencontainers.image.description": "faas-mesh-auth ext-authz: token exchange, JWKS and the Envoy ext_authz service",
        "org.opencontainers.image.version": version,
        "org.opencontainers.image.created": created,
    }
    for key, value in (
        ("org.opencontainers.image.source", workspace_repository()),
        ("org.opencontainers.image.licenses", workspace_license()),
        ("org.opencontainers.image.revision", revision),
    ):
        if value:
            out[key] = value
    return out


def image_blobs(binary: bytes, *, version: str, revision: str, mtime: int):
    """Returns (manifest bytes, {digest: blob bytes})."""
    check_static_x86_64(binary)
    tar = layer_tar(binary, mtime)
    layer = gzip_bytes(tar)
    created = rfc3339(mtime)
    image_labels = labels(version, revision, created)
    config = canonical_json(
        {
            "architecture": "amd64",
            "os": "linux",
            "created": created,
            "config": {
                "User": USER,
                "Entrypoint": [ENTRYPOINT],
                "Env": ENV,
                "WorkingDir": "/",
                "ExposedPorts": {p: {} for p in PORTS},
                "Labels": image_labels,
            },
            "rootfs": {"type": "layers", "diff_ids": [sha256(tar)]},
            "history": [{"created": created, "created_by": "tools/oci/image_oci.py"}],
        }
    )
    manifest = canonical_json(
        {
            "schemaVersion": 2,
            "mediaType": MT_MANIFEST,
            "config": descriptor(MT_IMAGE_CONFIG, config),
            "layers": [descriptor(MT_TAR_GZIP, layer)],
            "annotations": image_labels,
        }
    )
    return manifest, {sha256(b): b for b in (layer, config, manifest)}


def verify(layout: Path, binary: bytes | None = None, archive: Path | None = None) -> dict:
    """Check a layout as a registry client and a container runtime read it:
    digests and sizes, media types, the config's runtime settings, and a
    layer holding exactly the files this tool writes."""
    mdesc, manifest, config_bytes = read_manifest(layout)
    check(manifest["config"].get("mediaType") == MT_IMAGE_CONFIG, "config media type")
    layers = manifest.get("layers", [])
    check(len(layers) == 1, f"expected 1 layer, found {len(layers)}")
    check(layers[0].get("mediaType") == MT_TAR_GZIP, "layer media type")
    tar_bytes = gzip.decompress(read_blob(layout, layers[0], "layer"))
    config = load_json(config_bytes, "config")
    check(config.get("rootfs", {}).get("diff_ids") == [sha256(tar_bytes)], "config: diff_ids")
    check((config.get("os"), config.get("architecture")) == ("linux", "amd64"), "config: platform")
    run = config.get("config", {})
    check(run.get("User") == USER, f"config: User {run.get('User')!r}, expected {USER}")
    check(run.get("Entrypoint") == [ENTRYPOINT], f"config: Entrypoint {run.get('Entrypoint')!r}")
    with tarfile.open(fileobj=io.BytesIO(tar_bytes)) as tar:
        members = tar.getmembers()
        check(
            [(m.name, m.mode) for m in members]
            == [(p.rstrip("/"), mode) for p, mode, _ in rootfs_files(b"")],
            f"layer holds {[m.name for m in members]}",
        )
        check(all(m.uid == 0 and m.gid == 0 for m in members), "layer: every file owned by 0:0")
        f = tar.extractfile(ENTRYPOINT.lstrip("/"))
        check(f is not None, f"layer: {ENTRYPOINT} is not a regular file")
        packaged = f.read()
    check_static_x86_64(packaged)
    if binary is not None:
        check(packaged == binary, "the packaged binary differs from the input")
    check_blob_set(layout, {mdesc["digest"], manifest["config"]["digest"], layers[0]["digest"]})
    if archive is not None:
        check_archive(layout, archive)
    return {
        "manifest_digest": mdesc["digest"],
        "binary_sha256": sha256(packaged),
        "binary_size": len(packaged),
        "layer_size": layers[0]["size"],
    }


def pin_component(repo: str, digest: str) -> str:
    return f"""# Written by tools/oci/image_oci.py (make image IMAGE_REPO=... IMAGE_PIN=...):
# pins ext-authz's image by digest. Push the layout with digests preserved
# (docs/image.md), then add this folder to your overlay's `components:`.
apiVersion: kustomize.config.k8s.io/v1alpha1
kind: Component
images:
- name: {K8S_IMAGE}
  newName: {repo}
  digest: {digest}
"""


def build(binary_path: Path, out: Path, tag: str, revision: str) -> dict:
    if not binary_path.is_file():
        raise OciError(f"{binary_path} not found: build it with `make image`")
    binary = binary_path.read_bytes()
    mtime = source_date_epoch()
    manifest, blobs = image_blobs(binary, version=tag, revision=revision, mtime=mtime)
    out.mkdir(parents=True, exist_ok=True)
    layout = out / NAME
    write_layout(layout, manifest, blobs, tag)
    archive = out / f"{NAME}.tar"
    write_archive(layout, archive, mtime)
    result = verify(layout, binary=binary, archive=archive)
    (out / f"{NAME}.digest").write_text(result["manifest_digest"] + "\n")
    result.update(layout=str(layout), archive=str(archive), tag=tag)
    return result


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build", help="write the OCI layout, tarball and digest file")
    b.add_argument("--binary", required=True, type=Path, help="the static (musl) ext-authz")
    b.add_argument("--out", required=True, type=Path)
    b.add_argument("--tag", default=None, help="default: the workspace version")
    b.add_argument("--revision", default="", help="the source commit, for the revision label")
    b.add_argument("--repo", default="", help="where you push it, e.g. registry.example.com/ext-authz")
    b.add_argument("--pin", type=Path, help="a folder: write there a kustomize Component pinning --repo at this digest")
    v = sub.add_parser("verify", help="check a layout's digests, sizes, media types and files")
    v.add_argument("--layout", required=True, type=Path)
    v.add_argument("--binary", type=Path)
    args = p.parse_args(argv)
    try:
        if args.cmd == "build":
            if args.pin and not args.repo:
                raise OciError("--pin needs --repo (make image IMAGE_REPO=registry.example.com/ext-authz IMAGE_PIN=DIR)")
            r = build(args.binary, args.out, args.tag or workspace_version(), args.revision)
            digest = r["manifest_digest"]
            repo = args.repo or "REGISTRY/ext-authz"
            print(f"image: {r['layout']} (tag {r['tag']})")
            print(f"image: {r['archive']}")
            print(f"image: binary {r['binary_sha256']} ({r['binary_size']} bytes), layer {r['layer_size']} bytes")
            print(f"image: manifest {digest}")
            print("image: push with its digest preserved, e.g.:")
            print(f"  skopeo copy --preserve-digests oci:{r['layout']}:{r['tag']} docker://{repo}:{r['tag']}")
            print("image: pin it in your overlay's kustomization.yaml:")
            print(f"  images:\n  - name: {K8S_IMAGE}\n    newName: {repo}\n    digest: {digest}")
            if args.pin:
                args.pin.mkdir(parents=True, exist_ok=True)
                (args.pin / "kustomization.yaml").write_text(pin_component(args.repo, digest))
                print(f"image: wrote {args.pin / 'kustomization.yaml'}: add {args.pin} to your overlay's components")
        else:
            binary = args.binary.read_bytes() if args.binary else None
            r = verify(args.layout, binary=binary)
            print(f"image: {args.layout} ok: manifest {r['manifest_digest']}")
    except OciError as e:
        print(f"image: error: {e}", file=sys.stderr)
        return 1
    except OSError as e:
        print(f"image: error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

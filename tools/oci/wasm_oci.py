#!/usr/bin/env python3
"""Package the filter's .wasm as an OCI image that Istio's WasmPlugin can
pull, without Docker: an OCI image layout directory plus the same layout as
a tarball (`oci-archive`). Python 3 standard library only.

    wasm_oci.py build --wasm FILTER.wasm --out target/oci [--name N] [--tag T]
                      [--variant compat|oci]
    wasm_oci.py verify --layout target/oci/NAME [--wasm FILTER.wasm]

What Istio accepts (istio/istio pkg/wasm/imagefetcher.go, which implements
solo-io/wasm spec/spec.md and spec/spec-compat.md):

* compat (the default here): exactly one layer of media type
  `application/vnd.oci.image.layer.v1.tar+gzip` whose tar holds
  `plugin.wasm`; standard media types, so every registry and tool takes it.
  The manifest carries `module.wasm.image/variant: compat`.
* oci: the custom artifact media types. Istio requires exactly two layers,
  one `application/vnd.module.wasm.content.layer.v1+wasm` (the raw module)
  and one `application/vnd.module.wasm.config.v1+json` (runtime config); a
  single-layer image with only the wasm layer is refused ("number of layers
  must be 2"). The manifest's config is the same runtime-config blob.

Output is reproducible: fixed tar metadata, gzip mtime 0, no timestamps in
JSON (SOURCE_DATE_EPOCH sets the tar mtime; default 0). The same .wasm
always gives the same manifest digest, which is what a WasmPlugin's
`sha256` (or an `@sha256:` url) pins.
"""

from __future__ import annotations

import argparse
import gzip
import io
import sys
import tarfile
from pathlib import Path

from oci_layout import (
    MT_IMAGE_CONFIG,
    MT_MANIFEST,
    MT_TAR_GZIP,
    TITLE,
    OciError,
    canonical_json,
    check_archive,
    check_blob_set,
    descriptor,
    gzip_bytes,
    read_blob,
    read_manifest,
    sha256,
    source_date_epoch,
    tar_entry,
    workspace_repository,
    workspace_version,
    write_archive,
    write_layout,
)
from oci_layout import check as _check
from oci_layout import load_json as _json

MT_WASM_CONFIG = "application/vnd.module.wasm.config.v1+json"
MT_WASM_LAYER = "application/vnd.module.wasm.content.layer.v1+wasm"
COMPAT_ANNOTATION = "module.wasm.image/variant"
PLUGIN_FILE = "plugin.wasm"
WASM_MAGIC = b"\0asm"


def layer_tar(wasm: bytes, mtime: int) -> bytes:
    """An uncompressed tar holding only plugin.wasm, with fixed metadata."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        tar.addfile(tar_entry(PLUGIN_FILE, mtime=mtime, mode=0o644, size=len(wasm)), io.BytesIO(wasm))
    return buf.getvalue()


def image_blobs(wasm: bytes, *, variant: str, version: str, source: str, mtime: int):
    """Returns (manifest bytes, {digest: blob bytes})."""
    if not wasm.startswith(WASM_MAGIC):
        raise OciError("input is not a WebAssembly module (no \\0asm magic)")
    blobs: dict[str, bytes] = {}

    def add(data: bytes) -> None:
        blobs[sha256(data)] = data

    annotations = {
        TITLE: "mesh-auth-filter",
        "org.opencontainers.image.description": "faas-mesh-auth proxy-wasm filter for Istio/Envoy",
        "org.opencontainers.image.version": version,
    }
    if source:
        annotations["org.opencontainers.image.source"] = source
    if variant == "compat":
        tar = layer_tar(wasm, mtime)
        layer = gzip_bytes(tar)
        config = canonical_json(
            {
                "architecture": "wasm",
                "os": "wasip1",
                "config": {},
                "rootfs": {"type": "layers", "diff_ids": [sha256(tar)]},
            }
        )
        add(layer)
        add(config)
        manifest = {
            "schemaVersion": 2,
            "mediaType": MT_MANIFEST,
            "config": descriptor(MT_IMAGE_CONFIG, config),
            "layers": [descriptor(MT_TAR_GZIP, layer)],
            "annotations": {COMPAT_ANNOTATION: "compat", **annotations},
        }
    elif variant == "oci":
        runtime = canonical_json(
            {"type": "envoy_proxy", "abiVersions": ["proxy_abi_version_0_2_1"], "config": {"root_ids": []}}
        )
        add(runtime)
        add(wasm)
        manifest = {
            "schemaVersion": 2,
            "mediaType": MT_MANIFEST,
            "config": descriptor(MT_WASM_CONFIG, runtime),
            "layers": [
                descriptor(MT_WASM_CONFIG, runtime, {TITLE: "runtime-config.json"}),
                descriptor(MT_WASM_LAYER, wasm, {TITLE: "filter.wasm"}),
            ],
            "annotations": annotations,
        }
    else:
        raise OciError(f"unknown variant {variant!r}: use compat or oci")
    manifest_bytes = canonical_json(manifest)
    add(manifest_bytes)
    return manifest_bytes, blobs


def build(wasm_path: Path, out: Path, name: str, tag: str, variant: str) -> dict:
    wasm = wasm_path.read_bytes()
    mtime = source_date_epoch()
    manifest, blobs = image_blobs(
        wasm, variant=variant, version=tag, source=workspace_repository(), mtime=mtime
    )
    out.mkdir(parents=True, exist_ok=True)
    layout = out / name
    write_layout(layout, manifest, blobs, tag)
    archive = out / f"{name}.tar"
    write_archive(layout, archive, mtime)
    result = verify(layout, wasm=wasm, archive=archive)
    result.update(layout=str(layout), archive=str(archive), tag=tag)
    return result


def verify(layout: Path, wasm: bytes | None = None, archive: Path | None = None) -> dict:
    """Check a layout the way a registry client and Istio would read it.
    Returns the manifest digest, variant and module bytes' digest."""
    mdesc, manifest, config = read_manifest(layout)
    layers = manifest.get("layers", [])
    module: bytes
    if manifest.get("annotations", {}).get(COMPAT_ANNOTATION) == "compat":
        variant = "compat"
        _check(manifest["config"]["mediaType"] == MT_IMAGE_CONFIG, "compat: config media type")
        _check(len(layers) == 1, f"compat: expected 1 layer, found {len(layers)}")
        _check(layers[0]["mediaType"] == MT_TAR_GZIP, "compat: layer media type")
        layer = read_blob(layout, layers[0], "layer")
        tar_bytes = gzip.decompress(layer)
        cfg = _json(config, "config")
        _check(cfg.get("rootfs", {}).get("diff_ids") == [sha256(tar_bytes)], "compat: diff_ids")
        with tarfile.open(fileobj=io.BytesIO(tar_bytes)) as tar:
            members = tar.getmembers()
            _check([m.name for m in members] == [PLUGIN_FILE], f"compat: layer must hold only {PLUGIN_FILE}")
            f = tar.extractfile(members[0])
            _check(f is not None, "compat: plugin.wasm is not a regular file")
            module = f.read()
    else:
        variant = "oci"
        _check(manifest["config"]["mediaType"] == MT_WASM_CONFIG, "oci: config media type")
        # Istio's extractOCIArtifactImage requires exactly two layers.
        _check(len(layers) == 2, f"oci: Istio needs exactly 2 layers, found {len(layers)}")
        wasm_layers = [d for d in layers if d["mediaType"] == MT_WASM_LAYER]
        _check(len(wasm_layers) == 1, "oci: expected one wasm content layer")
        for d in layers:
            read_blob(layout, d, "layer")
        runtime = _json(config, "runtime config")
        _check(runtime.get("type") == "envoy_proxy", "oci: runtime config type")
        module = read_blob(layout, wasm_layers[0], "wasm layer")
    _check(module.startswith(WASM_MAGIC), "the packaged module is not WebAssembly")
    if wasm is not None:
        _check(module == wasm, "the packaged module differs from the input .wasm")
    referenced = {mdesc["digest"], manifest["config"]["digest"]} | {d["digest"] for d in layers}
    check_blob_set(layout, referenced)
    if archive is not None:
        check_archive(layout, archive)
    return {
        "manifest_digest": mdesc["digest"],
        "variant": variant,
        "module_sha256": sha256(module),
        "module_size": len(module),
    }


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build", help="write the OCI layout and tarball")
    b.add_argument("--wasm", required=True, type=Path)
    b.add_argument("--out", required=True, type=Path)
    b.add_argument("--name", default="mesh-auth-filter")
    b.add_argument("--tag", default=None, help="default: the workspace version")
    b.add_argument("--variant", choices=["compat", "oci"], default="compat")
    v = sub.add_parser("verify", help="check a layout's digests, sizes and media types")
    v.add_argument("--layout", required=True, type=Path)
    v.add_argument("--wasm", type=Path)
    args = p.parse_args(argv)
    try:
        if args.cmd == "build":
            if not args.wasm.is_file():
                raise OciError(f"{args.wasm} not found: run `make wasm` first")
            r = build(args.wasm, args.out, args.name, args.tag or workspace_version(), args.variant)
            digest = r["manifest_digest"]
            print(f"oci: {r['layout']} ({r['variant']} variant, tag {r['tag']})")
            print(f"oci: {r['archive']}")
            print(f"oci: manifest {digest}; module {r['module_sha256']} ({r['module_size']} bytes)")
            print(f"oci: WasmPlugin sha256: {digest.removeprefix('sha256:')}")
            print("oci: push, e.g.:")
            print(f"  skopeo copy --preserve-digests oci:{r['layout']}:{r['tag']} docker://REGISTRY/mesh-auth-filter:{r['tag']}")
            print(f"  oras cp --from-oci-layout {r['layout']}:{r['tag']} REGISTRY/mesh-auth-filter:{r['tag']}")
        else:
            wasm = args.wasm.read_bytes() if args.wasm else None
            r = verify(args.layout, wasm=wasm)
            print(f"oci: {args.layout} ok: {r['variant']} variant, manifest {r['manifest_digest']}")
    except OciError as e:
        print(f"oci: error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

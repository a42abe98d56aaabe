"""Extract the OpenAPI v3 schema of a CustomResourceDefinition into a JSON file.

Used once to produce the vendored KEDA schemas under ``tests/schemas/keda/``
(see ``tests/schemas/README.md``); kept so the files can be regenerated for a
newer KEDA release. It needs no network: pass it the CRD YAML files of the
release (``config/crd/bases/keda.sh_*.yaml`` in the KEDA source tree, or the
CRD documents of the release's ``keda-X.Y.Z-crds.yaml`` asset)::

    python tests/schemas/extract_crd_schema.py --source "KEDA v2.20.2" \
        --out tests/schemas/keda keda.sh_scaledobjects.yaml keda.sh_triggerauthentications.yaml

One file per served version is written, named ``<kind>-<group>-<version>.json``
(e.g. ``scaledobject-keda.sh-v1alpha1.json``). The schema is copied unchanged;
only ``$comment`` (provenance) and ``x-crd`` (group/kind/version) are added.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import yaml


def extract(crd: dict, source: str) -> dict[str, dict]:
    if crd.get("kind") != "CustomResourceDefinition":
        raise SystemExit(f"not a CustomResourceDefinition: {crd.get('kind')!r}")
    group = crd["spec"]["group"]
    kind = crd["spec"]["names"]["kind"]
    out: dict[str, dict] = {}
    for version in crd["spec"]["versions"]:
        if not version.get("served", True):
            continue
        schema = dict(version["schema"]["openAPIV3Schema"])
        schema["$comment"] = (
            f"openAPIV3Schema of CRD {crd['metadata']['name']} version {version['name']}, "
            f"copied unchanged from {source} by tests/schemas/extract_crd_schema.py"
        )
        schema["x-crd"] = {"group": group, "kind": kind, "version": version["name"]}
        out[f"{kind.lower()}-{group}-{version['name']}.json"] = schema
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", required=True, help="where the CRDs came from (release)")
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("crds", nargs="+", type=Path)
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    for path in args.crds:
        for doc in yaml.safe_load_all(path.read_text()):
            if not doc:
                continue
            for name, schema in extract(doc, args.source).items():
                target = args.out / name
                target.write_text(json.dumps(schema, indent=1, sort_keys=True) + "\n")
                print(f"wrote {target}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Writes the Kubernetes JSON schemas that the kubernetes-validate package ships for one
Kubernetes version into a folder kubeconform reads offline: <out>/v<version>-local-strict/.

The package's schemas carry an https $id and root-relative $refs ("/api/_definitions.json"),
which kubeconform would resolve over the network; without the $id and with relative refs they
resolve to the file beside them.

Usage: python kubeconform-schemas.py <kubernetes version, e.g. 1.30.0> <out folder>
"""

import json
import pathlib
import sys

import kubernetes_validate

version, out = sys.argv[1], pathlib.Path(sys.argv[2])
source = pathlib.Path(kubernetes_validate.__file__).parent / "kubernetes-json-schema" / f"v{version}-local-strict"
if not source.is_dir():
    sys.exit(f"kubernetes-validate ships no schemas for Kubernetes {version} ({source})")
target = out / f"v{version}-local-strict"
target.mkdir(parents=True, exist_ok=True)


def relative(node):
    if isinstance(node, dict):
        return {
            key: value.replace("/api/_definitions.json", "_definitions.json")
            if key == "$ref" and isinstance(value, str)
            else relative(value)
            for key, value in node.items()
            if key != "$id"
        }
    if isinstance(node, list):
        return [relative(item) for item in node]
    return node


for path in source.glob("*.json"):
    (target / path.name).write_text(json.dumps(relative(json.loads(path.read_text()))))
print(f"{target}: {len(list(target.glob('*.json')))} schemas")

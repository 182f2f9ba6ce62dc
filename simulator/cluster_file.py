"""Cluster specifications a user writes: YAML or JSON, read into a :class:`ClusterSpec`.

```yaml
model: Llama-3.1-70B
prefill_pools:
  - {gpu_type: L20, tp: 4, count: 15}
decode_pools:
  - {gpu_type: H20, tp: 4, count: 3}
prefill_token_budget: 8192      # optional knobs: any other ClusterSpec field
decode_max_num_seqs: 256
kv_transfer_gbps: 25.0
```
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import yaml

from simulator.cluster import DECODE, PREFILL, ClusterSpec, PoolSpec

_POOL_KEYS = {"gpu_type", "tp", "count"}
#: Fields a file may set; ``efficiency`` stays the calibrated default.
_KNOBS = {f.name for f in dataclasses.fields(ClusterSpec)} - {
    "model",
    "prefill_pools",
    "decode_pools",
    "efficiency",
}


class ClusterFileError(ValueError):
    """A cluster file is malformed; the message names the file and the offending entry."""


def load_cluster(path: str | Path) -> ClusterSpec:
    """Read a cluster file (YAML, of which JSON is a subset).

    Raises
    ------
    ClusterFileError
        On unreadable YAML, unknown or missing keys, or values ``ClusterSpec`` rejects.
    """
    path = Path(path)
    try:
        doc = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ClusterFileError(f"{path}: cannot read a cluster: {exc}") from exc
    if not isinstance(doc, dict):
        raise ClusterFileError(f"{path}: expected a mapping with model and pools")
    unknown = set(doc) - _KNOBS - {"model", "prefill_pools", "decode_pools"}
    if unknown:
        raise ClusterFileError(f"{path}: unknown keys {sorted(unknown)}; allowed: {sorted(_KNOBS)}")
    try:
        return ClusterSpec(
            model=doc["model"],
            prefill_pools=_pools(path, doc, PREFILL),
            decode_pools=_pools(path, doc, DECODE),
            **{knob: doc[knob] for knob in _KNOBS & set(doc)},
        )
    except KeyError as exc:
        raise ClusterFileError(f"{path}: missing key {exc}") from exc
    except (TypeError, ValueError) as exc:
        raise ClusterFileError(f"{path}: {exc}") from exc


def _pools(path: Path, doc: dict, role: str) -> tuple[PoolSpec, ...]:
    entries = doc[f"{role}_pools"]
    if not isinstance(entries, list):
        raise ClusterFileError(f"{path}: {role}_pools must be a list of pools")
    pools = []
    for k, entry in enumerate(entries):
        if not isinstance(entry, dict) or set(entry) != _POOL_KEYS:
            raise ClusterFileError(
                f"{path}: {role}_pools[{k}] must have exactly the keys {sorted(_POOL_KEYS)}"
            )
        pools.append(PoolSpec(role, **entry))
    return tuple(pools)

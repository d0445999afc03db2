"""Check a finished input's results folder against the output contract (:mod:`helpers.results`)
and compare the two workflows' labels: what the batch runner writes into ``summary.json``."""
from __future__ import annotations

import csv
from pathlib import Path

from .compare import adjusted_rand
from .results import CSV_SCHEMAS, LABEL_FILES, load_reproducibility


def check_results(results_dir):
    """Check the results files against the output contract and compare the two workflows.

    Parameters
    ----------
    results_dir : str or Path
        ``DIR/<name>/results``.

    Returns
    -------
    dict
        ``files`` (name -> "ok" / "missing" / what is wrong), ``problems``, ``n_clusters`` per
        workflow, ``navigation_shape``; with both labels ``ari`` (workflows' adjusted Rand index,
        noise -1 a label) and ``ari_assigned`` (pixels neither workflow calls noise).
    """
    import numpy as np

    results_dir = Path(results_dir)
    files, problems, labels, info = {}, [], {}, {}
    for wf, name in LABEL_FILES.items():
        path = results_dir / name
        if not path.exists():
            files[name] = "missing"
            continue
        try:
            arr = np.load(path, allow_pickle=False)
        except Exception as exc:  # a corrupt file is reported, not raised
            files[name] = f"unreadable ({exc})"
            continue
        if arr.ndim != 2 or not np.issubdtype(arr.dtype, np.integer) or (arr.size and arr.min() < -1):
            files[name] = (f"must be a 2-D integer array >= -1, got {arr.dtype} "
                           f"shape {arr.shape}")
            continue
        files[name] = "ok"
        labels[name] = arr
        info.setdefault("n_clusters", {})[f"workflow{wf}"] = int(len(np.unique(arr[arr >= 0])))
        info["navigation_shape"] = list(arr.shape)
    for name, columns in CSV_SCHEMAS.items():
        path = results_dir / name
        if not path.exists():
            files[name] = "missing"
            continue
        with open(path, newline="", encoding="utf-8") as f:
            header = next(csv.reader(f), [])
        files[name] = "ok" if header == columns else (
            f"columns {','.join(header)} (expected {','.join(columns)})")
    if len(labels) == 2:
        l1, l2 = (labels[n] for n in LABEL_FILES.values())
        if l1.shape != l2.shape:
            problems.append(f"labels files differ in shape: {l1.shape} vs {l2.shape}")
        else:  # the same function notebook 06 reports, so the numbers agree
            info["ari"] = float(adjusted_rand(l1, l2))
            both = (l1 >= 0) & (l2 >= 0)
            info["ari_assigned"] = (float(adjusted_rand(l1, l2, exclude_noise=True))
                                    if both.any() else None)
    split = load_reproducibility(results_dir.parent)
    if split:
        info["split_half"] = {f"workflow{wf}": v for wf, v in sorted(split.items())}
    problems += [f"{n}: {state}" for n, state in files.items() if state != "ok"]
    return {"files": files, "problems": problems, **info}

"""The split test's log as a text table (:func:`format_split_log`).

One row per test of :func:`helpers.workflows.split.split_mixed_clusters`: a cluster's window
statistic (on its interior; ``k all``: on all of its pixels, mixtures with the clusters it
touches not counted), the pixels no cluster explains (``unexpl.``), a boundary (``border``) or a
cluster's stripes (``stripes``; ``to k``: the stripes are cluster k's phase and were
relabelled; ``again: left``: found again after that, so left as they are).
"""
from __future__ import annotations


def format_split_log(splits):
    """The split test's log (``WorkflowResult.params["splits"]``) as a text table, or its
    reason for not running."""
    if isinstance(splits, str) or splits is None:
        return f"split test: {splits}"
    if not splits:
        return "split test: no cluster large enough to test"
    rows = ["round  cluster  interior px  spatial/null  window  p (other half)  max diff  split"]
    for e in splits:
        name = {-1: "unexpl.", -2: "border", -3: "stripes"}.get(e["cluster"], e["cluster"])
        if e.get("note"):
            rows.append(f"{e['round']:>5}  {name:>7}  {e['pixels']:>11}  {e['note']}")
            continue
        p = "-" if e.get("p") is None else f"{e['p']:.1e}"
        d = "-" if "max_diff" not in e else f"{100 * e['max_diff']:.1f} %"
        if e["cluster"] == -3:   # stripes inside a cluster, at an angle
            verdict = ("no" if not e["split"] else "new" if e.get("joins") is None
                       else f"to {e['joins']}" + (" again: left" if e.get("again") else ""))
            rows.append(f"{e['round']:>5}  {name:>7}  {e['pixels']:>11}  "
                        f"{str(e['compared']) + ' @' + format(e['angle'], '.0f') + ' deg':>12}  "
                        f"{'-':>7}  {p:>14}  {d:>8}  {verdict}")
            continue
        if e["cluster"] < 0:     # unexplained pixels (vs the cluster nearest them), boundaries
            rows.append(f"{e['round']:>5}  {name:>7}  {e['pixels']:>11}  "
                        f"{_versus(e['compared']):>12}  {'-':>7}  {p:>14}  {d:>8}  "
                        f"{'new' if e['split'] else 'no'}")
            continue
        name = f"{e['cluster']} all" if e.get("whole") else e["cluster"]
        rows.append(f"{e['round']:>5}  {name:>7}  {e['pixels']:>11}  {e['ratio']:>12.2f}"
                    f"  {_window(e['window']):>7}  {p:>14}  {d:>8}  "
                    f"{'yes' if e['split'] else 'no'}")
    return "\n".join(rows)


def _versus(compared):
    """'vs 3' (unexplained pixels against cluster 3) or '1|2' (the boundary of 1 and 2)."""
    return "|".join(map(str, compared)) if isinstance(compared, (tuple, list)) else f"vs {compared}"


def _window(window):
    """'13 px' for a square window, 'pieces' for a cluster's separate pieces."""
    return window if isinstance(window, str) else f"{window} px"

"""The run report: ``index.html`` at the root of a batch run folder, for people to open.

:func:`write_report` lists every input of ``run_summary.json`` with its status, and for each
one the key figures its notebooks saved (both workflows' cluster maps with the clusters' names,
compositions with error bars, entropies), the compositions table (one row per cluster and
element), links to each executed notebook exported to HTML (nbconvert's ``HTMLExporter``), and
the parameters and package versions of ``summary.json``.

Everything is viewable offline: figures are embedded as base64 PNG, the notebooks' HTML files
sit beside the notebooks inside the run folder, and neither file loads a script or a style from
the network (the notebook export drops nbconvert's CDN scripts: require.js, MathJax, the widget
renderer, mermaid; formulas show as their TeX source).
"""
from __future__ import annotations

import base64
import html
import json
from datetime import datetime
from pathlib import Path

from .results import load_cluster_names, results_dir

REPORT_FILE = "index.html"
#: Figures shown per input, in order: (file stem in figures/, caption). The first existing
#: file of each tuple of stems is used.
KEY_FIGURES = [
    (("05_cluster_names", "05_cluster_maps"),
     "Cluster maps of both workflows (workflow 1: PCA + Gaussian mixture; workflow 2: UMAP + "
     "HDBSCAN). Numbers and colours belong to each workflow: cluster 0 (blue) of workflow 1 "
     "need not be the phase of cluster 0 of workflow 2; compare the clusters by their names. "
     "Grey: unassigned pixels (noise, and vacuum/support where the map is drawn without its "
     "mask; the legend says which); black, where shown: vacuum/support."),
    (("05_compositions",),
     "Composition of each cluster, at% with ±1σ error bars (counting, k-factor and "
     "segmentation uncertainty)."),
    (("06_entropy",),
     "Configurational entropy of each cluster (±1σ), in units of R, with the ideal maximum "
     "for the number of cations."),
    (("06_metal_to_sulfur",), "Metal : anion ratio of each cluster (±1σ); 1 = stoichiometric."),
]
_EXIT = {0: "every input complete", 1: "something unexpected stopped an input",
         2: "bad input stopped an input before any notebook finished",
         3: "bad input stopped an input part-way (earlier results kept)"}
_OFFLINE_TEMPLATE = """{%- extends 'index.html.j2' -%}
{%- block html_head_js -%}{%- endblock html_head_js -%}
{%- block jupyter_widgets -%}{%- endblock jupyter_widgets -%}
{%- block html_head_js_mathjax -%}{%- endblock html_head_js_mathjax -%}
{%- block html_head_js_mermaidjs -%}{%- endblock html_head_js_mermaidjs -%}
{%- block data_widget_view scoped -%}
<div class="jp-RenderedText jp-OutputArea-output"><pre>(interactive widget: open the .ipynb in
JupyterLab to use it; the static figure below shows the same at the notebook's parameters)</pre></div>
{%- endblock data_widget_view -%}
"""
_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:2em auto;
max-width:1150px;padding:0 1em;color:#222;line-height:1.4}
h1{margin-bottom:.2em} h2{border-bottom:2px solid #ddd;padding-bottom:.2em;margin-top:2em}
table{border-collapse:collapse;margin:.6em 0;font-size:.92em}
th,td{border:1px solid #ccc;padding:.25em .6em;text-align:left;vertical-align:top}
th{background:#f3f3f3} td.num{text-align:right;font-variant-numeric:tabular-nums}
.status{font-weight:600;padding:.1em .5em;border-radius:.3em;color:#fff}
.ok{background:#2e7d32}.partial{background:#ef6c00}.failed{background:#c62828}
figure{margin:1em 0} figure img{max-width:100%;border:1px solid #eee}
figcaption{font-size:.9em;color:#555;max-width:60em}
.note{background:#fff8e1;border-left:4px solid #ffb300;padding:.5em 1em}
code{background:#f5f5f5;padding:0 .2em}
table.compositions tr.first td{border-top:2px solid #666}
.swatch{display:inline-block;width:.8em;height:.8em;margin-right:.4em;border:1px solid #555;
vertical-align:-.05em}
"""


def _esc(value):
    return html.escape(str(value), quote=True)


def export_notebook(notebook):
    """Write ``<notebook>.html`` beside an executed notebook with nbconvert's ``HTMLExporter``
    (lab template, no network scripts); returns its path."""
    import jinja2
    import nbformat
    from nbconvert import HTMLExporter

    exporter = HTMLExporter(template_name="lab", template_file="offline.html.j2",
                            extra_loaders=[jinja2.DictLoader({"offline.html.j2":
                                                              _OFFLINE_TEMPLATE})])
    body, _ = exporter.from_notebook_node(nbformat.read(str(notebook), as_version=4))
    target = Path(notebook).with_suffix(".html")
    target.write_text(body, encoding="utf-8")
    return target


def _figure(folder, stems, caption):
    for stem in stems:
        path = Path(folder) / "figures" / f"{stem}.png"
        if path.exists():
            data = base64.b64encode(path.read_bytes()).decode("ascii")
            return (f'<figure><img src="data:image/png;base64,{data}" alt="{_esc(stem)}">'
                    f"<figcaption>{_esc(caption)} <small>({_esc(path.name)})</small>"
                    "</figcaption></figure>")
    return ""


def _compositions_table(folder):
    """HTML table of ``compositions.csv``: one row per cluster and element, with names."""
    import pandas as pd

    res = results_dir(folder)
    path = res / "compositions.csv"
    if not path.exists():
        return ""
    df = pd.read_csv(path)
    names = load_cluster_names(folder)
    df["name"] = [names.get(int(w), {}).get(int(c), "") for w, c in zip(df.workflow, df.cluster)]
    from matplotlib.colors import to_hex

    from .plotting.core import cluster_color

    rows, previous = [], None
    for r in df.itertuples(index=False):
        quantified = pd.notna(r.at_percent)
        value = f"{r.at_percent:.2f} ± {r.at_percent_err:.2f}" if quantified else "n/a"
        first = (r.workflow, r.cluster) != previous   # a line above each new cluster
        previous = (r.workflow, r.cluster)
        swatch = (f'<span class="swatch" style="background:{to_hex(cluster_color(int(r.cluster)))}"'
                  "></span>")
        rows.append(f'<tr{" class=first" if first else ""}><td class="num">{int(r.workflow)}'
                    f'</td><td class="num">{int(r.cluster)}'
                    f'</td><td>{swatch}{_esc(r.name)}</td>'
                    f'<td class="num">{float(r.n_pixels):.0f}</td><td>{_esc(r.element)}</td>'
                    f'<td class="num">{value}</td></tr>')
    head = ("<tr><th>workflow</th><th>cluster</th><th>name</th><th>pixels</th><th>element</th>"
            "<th>at% ± 1σ</th></tr>")
    return (f'<table class="compositions"><thead>{head}</thead><tbody>{"".join(rows)}'
            "</tbody></table>")


def _parameters_table(summary):
    """One row per parameter; a value that differs between notebooks lists each notebook's."""
    merged = {}
    for nb, params in (summary.get("parameters") or {}).items():
        for key, value in params.items():
            merged.setdefault(key, {}).setdefault(json.dumps(value, default=str), []).append(nb)
    rows = []
    for key in sorted(merged):
        values = merged[key]
        if len(values) == 1:
            text = _esc(next(iter(values)))
        else:
            text = "<br>".join(f"{_esc(v)} <small>({_esc(', '.join(nbs))})</small>"
                               for v, nbs in values.items())
        rows.append(f"<tr><th>{_esc(key)}</th><td><code>{text}</code></td></tr>")
    versions = "".join(f"<tr><th>{_esc(k)}</th><td>{_esc(v)}</td></tr>"
                       for k, v in (summary.get("versions") or {}).items())
    return (f'<div style="display:flex;gap:2em;flex-wrap:wrap"><table class="parameters">'
            f'<thead><tr><th>parameter</th><th>value</th></tr></thead>{"".join(rows)}</table>'
            f'<table class="versions"><thead><tr><th>package</th><th>version</th></tr></thead>'
            f"{versions}</table></div>")


def _notebook_links(out, folder):
    items = []
    for nb in sorted((Path(folder) / "notebooks").glob("*.ipynb")):
        try:
            page = export_notebook(nb)
        except Exception as exc:  # noqa: BLE001 - a notebook that cannot be exported is named
            items.append(f"<li>{_esc(nb.name)}: not exported ({_esc(type(exc).__name__)})</li>")
            continue
        href = page.relative_to(out).as_posix()
        items.append(f'<li><a class="notebook" href="{_esc(href)}">{_esc(nb.stem)}</a> '
                     f'<small>(<a href="{_esc(nb.relative_to(out).as_posix())}">.ipynb</a>)'
                     "</small></li>")
    return f'<ul class="notebooks">{"".join(items)}</ul>' if items else "<p>No notebooks.</p>"


def _load_json(path):
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def _folder_of(out, entry, name):
    folder = Path(entry.get("folder") or out / name)
    if not folder.is_absolute():
        folder = out / folder
    return folder if folder.exists() else None


def _status(status):
    status = status or "failed"
    return f'<span class="status {_esc(status)}">{_esc(status)}</span>'


def _input_section(out, name, entry):
    """The report section of one input."""
    folder = _folder_of(out, entry, name)
    summary = _load_json(results_dir(folder) / "summary.json") if folder else {}
    parts = [f'<section class="input" id="{_esc(name)}"><h2>{_esc(name)} '
             f'{_status(entry.get("status"))}</h2>',
             f"<p>Input <code>{_esc(entry.get('input', ''))}</code>"]
    if folder is not None:
        rel = folder.relative_to(out).as_posix() if folder.is_relative_to(out) else folder
        parts.append(f" · folder <code>{_esc(rel)}/</code>")
    clusters = summary.get("n_clusters") or {}
    if clusters:
        parts.append(" · clusters: " + ", ".join(f"{k.replace('workflow', 'workflow ')}: {v}"
                                                 for k, v in sorted(clusters.items())))
    if summary.get("ari") is not None:
        parts.append(f" · agreement of the workflows (adjusted Rand index, 1 = identical): "
                     f"{summary['ari']:.3f}")
    parts.append("</p>")
    if entry.get("status") != "ok":
        parts.append(f'<p class="note">{_esc(entry.get("message") or "did not finish")}'
                     + (" — the notebooks that finished kept their results, shown below."
                        if entry.get("status") == "partial" else "") + "</p>")
    if folder is None:
        return "".join(parts) + "<p>Nothing was kept for this input.</p></section>"
    figures = [_figure(folder, stems, caption) for stems, caption in KEY_FIGURES]
    parts += [f for f in figures if f] or ["<p>No figures (the notebooks did not get that far)."
                                           "</p>"]
    table = _compositions_table(folder)
    if table:
        parts.append("<h3>Compositions</h3><p>Cliff-Lorimer at% of each cluster (one row per "
                     "cluster and element, the colour of the cluster in the figures), ±1σ total "
                     "error. Names are short labels from the composition, relative to this map: "
                     "the elements most above the map's mean composition, or near-equimolar / "
                     "near map mean when none stands out (<code>results/cluster_names.csv</code>"
                     "; the rule is in the README).</p>" + table)
    parts.append("<h3>Executed notebooks</h3>" + _notebook_links(out, folder))
    if summary:
        parts.append("<details><summary>Parameters and package versions</summary>"
                     + _parameters_table(summary) + "</details>")
    return "".join(parts) + "</section>"


def _inputs_table(run):
    rows = []
    for name, e in run.get("inputs", {}).items():
        ari = "" if e.get("ari") is None else f"{e['ari']:.3f}"
        note = e.get("message") or "; ".join(e.get("problems") or [])
        rows.append(f'<tr><td><a href="#{_esc(name)}">{_esc(name)}</a></td>'
                    f"<td><code>{_esc(e.get('input', ''))}</code></td>"
                    f"<td>{_status(e.get('status'))}</td>"
                    f'<td class="num">{float(e.get("seconds") or 0):.0f}</td>'
                    f'<td class="num">{ari}</td><td>{_esc(note)}</td></tr>')
    return ('<table class="inputs"><thead><tr><th>input</th><th>given as</th><th>status</th>'
            "<th>seconds</th><th>ARI W1 vs W2</th><th>message</th></tr></thead><tbody>"
            + "".join(rows) + "</tbody></table>")


def write_report(out):
    """Write ``out/index.html`` for the batch run folder ``out`` (see the module docstring).

    Parameters
    ----------
    out : str or Path
        A run folder holding ``run_summary.json`` (:func:`helpers.runner.write_run_summary`).

    Returns
    -------
    Path of ``index.html``.
    """
    out = Path(out).resolve()
    run = _load_json(out / "run_summary.json")
    code = run.get("exit_status")
    when = run.get("finished", "")
    try:
        when = datetime.fromisoformat(when).astimezone().strftime("%Y-%m-%d %H:%M")
    except ValueError:
        pass
    sections = "".join(_input_section(out, name, e) for name, e in run.get("inputs", {}).items())
    page = (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
            f"<title>STEM-EDX run {_esc(out.name)}</title><style>{_CSS}</style></head><body>"
            f"<h1>STEM-EDX run <code>{_esc(out.name)}</code></h1>"
            f"<p>Finished {_esc(when)} · exit status {_esc(code)}"
            f"{' (' + _esc(_EXIT[code]) + ')' if code in _EXIT else ''}. "
            "Phase maps by two clustering workflows, Cliff-Lorimer compositions and "
            "configurational entropies (Eggeman <i>et al.</i>, Faraday Discuss. 2025). "
            "Every number comes from the executed notebooks linked under each input; the "
            "files are in each input's <code>results/</code> folder.</p>"
            f"<h2>Inputs</h2>{_inputs_table(run)}{sections}</body></html>")
    path = out / REPORT_FILE
    tmp = path.with_name(f".{REPORT_FILE}.tmp")
    tmp.write_text(page, encoding="utf-8")
    tmp.replace(path)
    return path

#!/usr/bin/env python
"""Benchmark: a large simulated map processed end to end on a 2-worker dask LocalCluster.

    .venv/bin/python benchmarks/on_cluster.py                # 1024x1024x2048 uint16 (4 GiB)
    .venv/bin/python benchmarks/on_cluster.py --size 128     # the same harness, small (~2 min)

Writes the map lazily (``helpers.simulate.write_simulated_map``, uint16, blocks of 8 rows) to
``benchmarks/_work/``, then, in a fresh process, starts a ``LocalCluster`` of two one-thread
worker processes (``memory_limit`` 4 GiB each), makes its ``Client`` the default scheduler and
runs the notebooks' own calls on ``load_spectrum_image(path, lazy=True)`` (``workflow1``,
``workflow2``, ``quantify_clusters``, ``entropy_table``, via ``run.py``'s ``_pipeline_ours``):
the chunked stages (binning, cluster sums, element maps) run as tasks on the workers, the
in-memory stages (PCA, GMM, UMAP, HDBSCAN on the binned matrix) in the client process. Peak
memory is each process's ``ru_maxrss`` (the client, which also holds the LocalCluster's
nannies, and each worker). The result is the section "On a dask.distributed LocalCluster" of ``benchmarks/results.md`` (run.py keeps it).
"""
from __future__ import annotations

import argparse
import json
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import run as bench  # noqa: E402  (benchmarks/run.py: timers, the pipeline, machine info)

BEGIN, END = "<!-- distributed-benchmark -->", "<!-- /distributed-benchmark -->"
LIMIT_MB = 4096


def _peak_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def case_write(args):
    import numpy as np

    from helpers.simulate import large

    t0 = time.perf_counter()
    info = large.write_simulated_map(args.path, size=args.size, n_channels=args.channels,
                                     dtype=np.uint16, overwrite=True, seed=bench.SEED)
    return dict(seconds=time.perf_counter() - t0, shape=list(info["shape"]),
                nbytes=info["nbytes"], file_bytes=os.path.getsize(args.path),
                peak_rss_mb=_peak_mb())


def case_process(args):
    from distributed import get_task_stream

    from helpers import cache
    from helpers import distributed as hd
    from helpers.demo import get_truth

    os.environ["HEA_CACHE_DIR"] = tempfile.mkdtemp(prefix="hea-bench-cache-")
    cache.clear_cache()
    compile_s = bench.warm_up_numba()
    client, cluster = hd.connect(f"local:{args.workers}", memory_limit=f"{LIMIT_MB}MiB",
                                 silence_logs=40)
    try:
        assert hd.active_client() is client
        T = bench.Timer()
        t0 = time.perf_counter()
        with get_task_stream(client) as ts:
            with T.stage("load"):
                sig = bench.load(args.path, lazy=True)
                truth = get_truth(sig)
            out = bench._pipeline_ours(sig, T)
        total = time.perf_counter() - t0
        workers = client.run(_peak_mb)
        tasks = len(ts.data)
    finally:
        client.close()
        cluster.close()
    a1, _ = bench.truth_and_ari(truth.labels, out["w1"].labels)
    a2, _ = bench.truth_and_ari(truth.labels, out["w2"].labels)
    return dict(T.as_dict(), total=total, numba_warmup=compile_s, ari_w1=a1, ari_w2=a2,
                chunks=str(sig.data.chunksize), n_clusters_w1=int(out["w1"].n_clusters),
                n_clusters_w2=int(out["w2"].n_clusters), binned_shape=list(out["w1"].binned_shape),
                client_peak_mb=_peak_mb(), worker_peak_mb=workers,
                tasks=tasks)


def _child(case, **kw):
    out = Path(tempfile.mkstemp(prefix=f"dist-{case}-", suffix=".json", dir=bench.WORK)[1])
    cmd = [sys.executable, str(Path(__file__).resolve()), "--case", case, "--json", str(out)]
    for k, v in kw.items():
        cmd += [f"--{k}", str(v)]
    print(f"  running {case} {kw} ...", flush=True)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=bench.ROOT, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        out.unlink(missing_ok=True)
        raise SystemExit(f"{case} failed after {wall:.0f} s:\n{proc.stderr[-3000:]}")
    res = json.loads(out.read_text())
    out.unlink(missing_ok=True)
    res["process_wall"] = wall
    print(f"  done {case} in {wall:.1f} s", flush=True)
    return res


def section(w, p, args, info, load):
    """The markdown section of results.md."""
    peaks = {"client (runs PCA/GMM/UMAP/HDBSCAN)": p["client_peak_mb"]}
    peaks.update({f"worker {k}": v for k, v in p["worker_peak_mb"].items()})
    # a LocalCluster's nannies live in the client process (its row covers them)
    ok = all(v <= LIMIT_MB for v in peaks.values())
    gib = w["nbytes"] / 2 ** 30
    L = [BEGIN, f"## On a dask.distributed LocalCluster: {args.size}×{args.size}×{args.channels} "
         f"uint16 ({gib:.2f} GiB)\n",
         f"`benchmarks/on_cluster.py --size {args.size}` on {info['cpu']} "
         f"({info['affinity']} cores, load {load[0]:.2f} before / {load[1]:.2f} after). The map "
         f"is written block by block ({w['seconds']:.0f} s, file {w['file_bytes'] / 2 ** 20:.0f} "
         f"MiB, compressed) and processed from a lazy load through the notebooks' calls with a 2-worker "
         f"`LocalCluster` (one thread each, memory limit {LIMIT_MB} MiB) as the default "
         f"scheduler: chunks {p['chunks']}, binned to {p['binned_shape']}; {p['tasks']} tasks ran "
         "on the workers.\n",
         "| stage | wall s | peak RSS MiB (this process) |", "|---|---|---|"]
    for name, sec in p["wall"].items():
        L.append(f"| {name} | {sec:.1f} | {p['peak_mb'].get(name, float('nan')):.0f} |")
    L += [f"| **end to end** | **{p['total']:.1f}** | |\n",
          "| process | peak RSS MiB |", "|---|---|"]
    L += [f"| {k} | {v:.0f} |" for k, v in peaks.items()]
    L += ["", f"Every process ≤ {LIMIT_MB} MiB: **{'yes' if ok else 'NO'}**. Clusters: "
          f"{p['n_clusters_w1']} (W1), {p['n_clusters_w2']} (W2); ARI vs truth "
          f"{p['ari_w1']:.3f} (W1), {p['ari_w2']:.3f} (W2). numba warm-up "
          f"{p['numba_warmup']:.0f} s, not included.", END]
    return "\n".join(L)


def write_section(text):
    old = bench.RESULTS.read_text(encoding="utf-8") if bench.RESULTS.exists() else ""
    pattern = re.compile(re.escape(BEGIN) + ".*?" + re.escape(END), re.S)
    new = pattern.sub(lambda m: text, old) if pattern.search(old) else old.rstrip() + "\n\n" + text
    bench.RESULTS.write_text(new.rstrip() + "\n", encoding="utf-8")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size", type=int, default=1024)
    ap.add_argument("--channels", type=int, default=2048)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--keep", action="store_true", help="keep the map file afterwards")
    ap.add_argument("--case", help=argparse.SUPPRESS)
    ap.add_argument("--json", help=argparse.SUPPRESS)
    ap.add_argument("--path", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.case:
        res = {"write": case_write, "process": case_process}[args.case](args)
        Path(args.json).write_text(json.dumps(res, default=float))
        return 0
    bench.WORK.mkdir(parents=True, exist_ok=True)
    path = bench.WORK / f"hea6_{args.size}x{args.size}x{args.channels}_uint16.hspy"
    info, before = bench.machine_info(), bench.load_average()
    w = _child("write", size=args.size, channels=args.channels, path=path)
    p = _child("process", size=args.size, channels=args.channels, path=path,
               workers=args.workers)
    text = section(w, p, args, info, (before[0], bench.load_average()[0]))
    write_section(text)
    if not args.keep:
        path.unlink(missing_ok=True)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())

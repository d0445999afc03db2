"""Counting statistics of clusters: is a split real, and which cluster explains a noise pixel?

Each cluster is described by its spectral shape ``p_k`` (its pixels' summed counts, normalised);
a pixel's counts ``y`` are then multinomial given its total, with log-likelihood
``sum_c y_c log p_kc``: the exact noise model of X-ray counts, independent of thickness. Two
questions workflow 2 asks of the clusters HDBSCAN proposes:

**Is a split real?** Merging clusters ``a`` and ``b`` loses the log-likelihood
``G / 2``, where ``G = 2 [L(S_a) + L(S_b) - L(S_a + S_b)]`` (the G statistic of their summed
spectra ``S``, ``L(S) = sum_c S_c log(S_c / sum S)``). A clustering cuts where pixels differ,
partly in their noise, so ``G`` of a split of *one* phase is far above its textbook chi-square
value: the split was chosen to make it large. :func:`null_split_gain` measures what such a
split gains when there is nothing to find: pixels with the same totals are drawn from the
merged spectrum (one phase, Poisson noise only) and split by the best two-cluster
classification EM; a split is kept only when its ``G`` exceeds the largest of these
(:data:`SPLIT_FACTOR` times it). A parametric bootstrap of the one-phase null, calibrated on
each map. The factor is 1, the test itself, chosen on the random-scene benchmark: a margin of 2
merged real phases that differ by a few at% at low dose (workflow 2's median ARI - ceiling
-0.12 with 2, ``benchmarks/generalisation_sf2.md``; -0.07 with 1, both with pynndescent's
neighbour graph and 100 UMAP epochs; -0.06 with 1 and today's defaults,
``benchmarks/generalisation.md``), while a uniform sample (hea7) stays one cluster either way:
HDBSCAN's cut of one phase gains no more than the best split of one phase does.

**Which cluster explains a pixel?** :func:`assign_by_likelihood` gives every pixel the cluster
of highest multinomial likelihood (with the clusters' shares as prior) and its posterior. How
sure that is, is the posterior (the probability map), not a noise label: with
:data:`AMBIGUOUS_POSTERIOR` 0.5, pixels that several clusters explained about equally were
noise, 39 % of the sample on a held-out 6-phase scene at 2.7 counts per pixel (seed 48), and
the benchmark's ARI was the same without it (workflow 2 median ARI - ceiling 0.055 both, 10th
percentile -0.036 both; held-out seeds 34-63: 0.078 and 0.077, -0.032 and -0.047).

**Clusters found on pooled features** (workflow 2's default, each pixel's counts pooled with
its like neighbours): a split is judged against pooled one-phase noise
(:func:`pooled_null_gain`, margin :data:`POOLED_SPLIT_FACTOR`), and a cluster that is only the
boundary between two others (:func:`boundary_mixtures`) is given back to them.

Hand-written: scikit-learn and hdbscan have no multinomial mixture.
"""
from __future__ import annotations

import hashlib

import numpy as np

from .cluster import poisson_mixture_refine, relabel_by_size
from .mixture import PSEUDO_COUNT, classify

#: A split must gain this many times the log-likelihood that the best split of pure noise gains.
SPLIT_FACTOR = 1.0
#: The margin when clusters were found on spatially pooled counts (:func:`pooled_null_gain`):
#: its null pools with a plain Gaussian where the features used edge-preserving weights, and
#: thickness-driven spectral differences (hea7's particles) become significant once pooled;
#: 2 kept every phase that 1 found on the random-scene benchmark and stopped its one-phase
#: over-splits (benchmarks/generalisation_pooled_sf1.md against generalisation_pooled_sf2.md).
POOLED_SPLIT_FACTOR = 2.0
#: The margin a split of an excess-of-mass cluster along its tree must beat
#: (:func:`split_along_tree`): HDBSCAN's choice is overruled only on stronger evidence than a
#: merge needs. On the benchmark scenes the tree's splits of one phase into pieces (their
#: mean thicknesses differ by 2-4 %; the cause is not established) gained 2.0-2.9 times
#: their pooled null, the splits between real phases 3.3-37 (one at 2.95); at the merge's
#: margin of 2, five scenes were over-split (up to 0.35 of the pixels left ambiguous).
TREE_SPLIT_FACTOR = 3.0
#: Bootstrap draws of the one-phase null per tested pair.
NULL_DRAWS = 3
#: Pixels of the subset that first bounds a large pair's null, and the bound's safety margin
#: over linear growth (:func:`_test_null`).
NULL_SUBSET = 500
NULL_SUBSET_MARGIN = 1.5
#: A pixel whose most likely cluster has a lower posterior than this stays noise (0: none;
#: a pixel's ambiguity is its posterior, see the module docstring).
AMBIGUOUS_POSTERIOR = 0.0
#: Share of a cluster's pixels that must border the two clusters it is a mixture of for it
#: to count as their boundary (:func:`boundary_mixtures`).
MIXTURE_TOUCH = 0.7


def _loglik(S):
    """``sum_c S_c log(S_c / sum S)`` of summed counts ``S`` (0 log 0 = 0)."""
    S = np.asarray(S, float)
    T = S.sum()
    m = S > 0
    return float((S[m] * np.log(S[m] / T)).sum()) if T > 0 else 0.0


def split_gain(counts_a, counts_b):
    """G statistic of two groups of pixels (rows of counts): twice the log-likelihood their
    separate spectra gain over one common spectrum."""
    return _gain(np.asarray(counts_a, float).sum(0), np.asarray(counts_b, float).sum(0))


def _gain(Sa, Sb):
    """:func:`split_gain` from the two groups' summed spectra."""
    return 2.0 * (_loglik(Sa) + _loglik(Sb) - _loglik(Sa + Sb))


def _best_two_way_split(c, rng, n_iter=30):
    """G of the two-cluster classification-EM split of count rows ``c`` from a random start."""
    lab = rng.integers(0, 2, len(c))
    total = c.sum(0)
    for _ in range(n_iter):
        n1 = int(lab.sum())
        if n1 in (0, len(lab)):
            return 0.0
        S1 = lab.astype(c.dtype) @ c     # one BLAS product, not two boolean-indexed copies;
        S = np.stack([total - S1, S1]) + PSEUDO_COUNT   # exact: counts are integers
        new = np.argmax(c @ np.log(S / S.sum(1, keepdims=True)).T, axis=1)
        if np.array_equal(new, lab):
            break
        lab = new
    n1 = int(lab.sum())
    if n1 in (0, len(lab)):
        return 0.0
    S1 = lab.astype(c.dtype) @ c
    return 2.0 * (_loglik(total - S1) + _loglik(S1) - _loglik(total))


def null_split_gain(counts, n_draws=NULL_DRAWS, random_state=0):
    """Largest G of the best two-way split of ``n_draws`` one-phase surrogates of ``counts``:
    the same pixel totals, counts drawn from their common spectrum (Poisson noise only)."""
    c = np.asarray(counts, float)
    return _null_gain(c.sum(1).astype(np.int64), c.sum(0), n_draws, random_state)


def _null_gain(totals, spectrum, n_draws=NULL_DRAWS, random_state=0, above=None):
    """:func:`null_split_gain` from what it depends on: the pixels' totals (in map order) and
    their summed spectrum. Remembered for the process by those (exactly: the surrogates are
    drawn from nothing else), so the min_cluster_size slider re-tests known clusters for free.
    ``above``: see :func:`_remembered_null` (then a pair ``(value, exact)`` is returned)."""
    totals = np.ascontiguousarray(totals, dtype=np.int64)
    spectrum = np.ascontiguousarray(spectrum, dtype=float)
    key = (hashlib.blake2b(totals.tobytes() + spectrum.tobytes(), digest_size=16).hexdigest(),
           totals.size, int(n_draws), random_state)
    if not spectrum.sum() > 0:
        return 0.0 if above is None else (0.0, True)
    p = spectrum / spectrum.sum()
    out = _remembered_null(key, lambda rng: rng.multinomial(totals, p).astype(float),
                           n_draws, random_state, above)
    return out[0] if above is None else out


def _remembered_null(key, draw, n_draws, random_state, above=None):
    """Largest best-split G of ``n_draws`` surrogates ``draw(rng)``, remembered under ``key``
    for the process (the null functions' keys hold everything their surrogates depend on).

    Returns ``(value, exact)``. With ``above``, drawing stops as soon as the running maximum
    exceeds it: the null is then known to be larger than ``above`` (``exact`` False, ``value``
    a lower bound), which is all a test that needs a null of at most ``above`` has to know;
    the draws made are remembered and a later call goes on from them with the same random
    stream, so the exact value is the one every draw would have given.
    """
    known = _known_null(key, above)
    if known is not None:
        return known
    best, done, rng = _NULL_MEMO.get(key) or (-np.inf, 0, np.random.default_rng(random_state))
    while done < int(n_draws) and (above is None or not best > above):
        best = max(best, float(_best_two_way_split(draw(rng), rng)))
        done += 1
    exact = done >= int(n_draws)
    if len(_NULL_MEMO) >= 4096:             # a few hundred kB at most
        _NULL_MEMO.clear()
    _NULL_MEMO[key] = best if exact else (best, done, rng)
    return best, exact


def _known_null(key, above):
    """The remembered null under ``key`` when it decides without more draws: ``(value, exact)``
    or None (see :func:`_remembered_null`)."""
    state = _NULL_MEMO.get(key)
    if isinstance(state, float):
        return state, True
    if state is not None and above is not None and state[0] > above:
        return state[0], False
    return None


_NULL_MEMO = {}


def pooled_null_gain(totals, spectrum, rows, cols, sigma, n_draws=NULL_DRAWS, random_state=0,
                     above=None):
    """:func:`null_split_gain` for clusters found on spatially pooled counts: the one-phase
    surrogates (the pixels' totals, counts drawn from their summed spectrum) are pooled with a
    Gaussian of width ``sigma`` among the tested pixels before the best two-way split. Pooling
    averages the noise a split can exploit, so a split of one phase found on pooled features
    gains far less than the best split of raw counts; this is its null, on the pixels tested
    (a fixed rescaling of the raw null, calibrated on large splits, let small fragments of one
    phase through). The pooling is scipy's ``gaussian_filter`` (truncate 2, zero outside,
    normalised by the filtered mask, as the features') restricted to the tested pixels: on
    their bounding box when they fill a third of it, else as a sparse matrix
    (:func:`_gaussian_pooling_matrix`; the box of a scattered fragment cost 10 ms a draw,
    3/4 of a slider move at 256 x 256).

    Parameters
    ----------
    totals : (n,) int, the tested pixels' total counts
    spectrum : (channels,) their summed counts
    rows, cols : (n,) int, their positions on the (binned) grid
    sigma : float, the pooling width in grid pixels
    above : float, optional
        Stop drawing once the null is known to exceed this (:func:`_remembered_null`); a pair
        ``(value, exact)`` is then returned instead of the value.
    """
    totals = np.ascontiguousarray(totals, dtype=np.int64)
    spectrum = np.ascontiguousarray(spectrum, dtype=float)
    rows, cols = np.asarray(rows, np.int64), np.asarray(cols, np.int64)
    key = ("pooled", hashlib.blake2b(totals.tobytes() + spectrum.tobytes() + rows.tobytes()
                                     + cols.tobytes(), digest_size=16).hexdigest(),
           float(sigma), int(n_draws), random_state)
    if not spectrum.sum() > 0 or totals.size < 4:
        return 0.0 if above is None else (0.0, True)
    known = _known_null(key, above)          # before the pooling weights are built
    if known is not None:
        return known[0] if above is None else known
    p = spectrum / spectrum.sum()
    r0, c0 = rows.min(), cols.min()
    shape = (int(rows.max() - r0 + 1), int(cols.max() - c0 + 1))
    if shape[0] * shape[1] <= 3 * rows.size:     # compact: filtering the box is cheaper
        from scipy.ndimage import gaussian_filter
        m = np.zeros(shape, np.float32)
        m[rows - r0, cols - c0] = 1
        den = gaussian_filter(m, sigma, mode="constant", truncate=2.0)[rows - r0, cols - c0]

        def draw(rng):
            cube = np.zeros(shape + (p.size,), np.float32)
            cube[rows - r0, cols - c0] = rng.multinomial(totals, p)
            num = gaussian_filter(cube, (sigma, sigma, 0), mode="constant", truncate=2.0)
            return num[rows - r0, cols - c0] / den[:, None]
    else:
        W = _gaussian_pooling_matrix(rows, cols, sigma)
        den = np.asarray(W.sum(1)).ravel()

        def draw(rng):
            return (W @ rng.multinomial(totals, p).astype(np.float32)) / den[:, None]

    out = _remembered_null(key, draw, n_draws, random_state, above)
    return out[0] if above is None else out


def _gaussian_pooling_matrix(rows, cols, sigma, truncate=2.0):
    """(n, n) sparse weights of scipy's ``gaussian_filter(mode="constant", truncate)`` among
    the pixels at (``rows``, ``cols``): pixel j's weight in pixel i's pooled value."""
    from scipy.sparse import csr_matrix

    radius = int(truncate * float(sigma) + 0.5)
    x = np.arange(-radius, radius + 1)
    w1 = np.exp(-0.5 * x ** 2 / float(sigma) ** 2)
    w1 /= w1.sum()
    r0, c0 = rows.min() - radius, cols.min() - radius
    index = -np.ones((int(rows.max() - r0 + radius + 1), int(cols.max() - c0 + radius + 1)),
                     np.int64)
    index[rows - r0, cols - c0] = np.arange(rows.size)
    I, J, V = [], [], []
    for a, dr in enumerate(x):
        for b, dc in enumerate(x):
            j = index[rows - r0 + dr, cols - c0 + dc]
            ok = j >= 0
            I.append(np.flatnonzero(ok))
            J.append(j[ok])
            V.append(np.full(int(ok.sum()), w1[a] * w1[b], np.float32))
    return csr_matrix((np.concatenate(V), (np.concatenate(I), np.concatenate(J))),
                      shape=(rows.size, rows.size))


def _pair_null(totals, spectrum, pair, pooling, random_state, above=None):
    """The one-phase null of the pixels ``pair`` (bool mask) with summed ``spectrum``: pooled
    (:func:`pooled_null_gain`) when ``pooling`` = (rows, cols, sigma) is given. ``above``:
    as those (then ``(value, exact)``)."""
    if pooling is None:
        return _null_gain(totals[pair], spectrum, random_state=random_state, above=above)
    return pooled_null_gain(totals[pair], spectrum, pooling[0][pair], pooling[1][pair],
                            pooling[2], random_state=random_state, above=above)


def _test_null(totals, spectrum, pair, pooling, random_state, enough, reject_early=False):
    """:func:`_pair_null`, or a bound on it that decides the test: ``(value, is_bound)``.

    ``enough`` is the largest null that still passes the test (``G / factor``). A pair of more
    than ``2 * NULL_SUBSET`` pixels is first bounded from its first ``NULL_SUBSET`` in map
    order: the null grows more slowly than the pixel count (per pixel it falls from 1.2 to
    0.09 pooled, 2.7 to 0.8 raw, from 100 to 10,000 pixels at 3-160 counts), so that subset's
    null times ``NULL_SUBSET_MARGIN * n / NULL_SUBSET`` is above the pair's. A bound below
    ``enough`` passes the test as the exact null would, for a tenth of the draws or less (a
    slider move at 256 x 256 had spent 0.3 s on one 15,000-pixel null).

    With ``reject_early`` the null's draws stop once their largest gain exceeds ``enough``
    (:func:`_remembered_null`): the value is then a lower bound above ``enough``, which fails
    the test as the exact null would (a slider move at 256 x 256 spent 0.06 s of its 0.12 s on
    the three draws of one 2,947-pixel null that its first draw already decided). For a test
    that needs only its verdict; :func:`merge_insignificant` ranks pairs by the exact ratio.
    """
    n = int(pair.sum())
    if n > 2 * NULL_SUBSET:
        sub = pair & (np.cumsum(pair) <= NULL_SUBSET)
        bound = NULL_SUBSET_MARGIN * n / NULL_SUBSET * _pair_null(totals, spectrum, sub,
                                                                   pooling, random_state)
        if bound <= enough:
            return bound, True
    if reject_early:
        value, exact = _pair_null(totals, spectrum, pair, pooling, random_state, above=enough)
        return value, not exact
    return _pair_null(totals, spectrum, pair, pooling, random_state), False


def _ratio(g, null):
    """G over its null; no counts at all (a map whose lines hold nothing): nothing to split."""
    return g / null if null > 0 else (0.0 if g <= 0 else np.inf)


def merge_insignificant(counts, labels, factor=None, random_state=0, pooling=None):
    """Merge clusters whose split is not more than noise can make (see the module docstring).

    Greedy: the pair with the smallest ``G / null`` is merged while that ratio is below
    ``factor``; after each merge the merged cluster's pairs are tested again.

    Parameters
    ----------
    counts : (n, channels) raw (binned) counts of the clustered pixels
    labels : (n,) int, -1 = noise (left as it is)
    factor : float, optional
        The margin a split must beat; None = :data:`SPLIT_FACTOR`, or
        :data:`POOLED_SPLIT_FACTOR` with ``pooling``.
    pooling : (rows, cols, sigma), optional
        For clusters found on spatially pooled features: the pixels' grid positions and the
        pooling width; the null is then :func:`pooled_null_gain`.

    Returns
    -------
    labels : (n,) int, renumbered by size
    merges : list of (kept, merged, G, null) in the order they were made (old numbers)
    """
    if factor is None:
        factor = SPLIT_FACTOR if pooling is None else POOLED_SPLIT_FACTOR
    factor = float(factor)
    c = np.asarray(counts, float)
    lab = np.asarray(labels).copy()
    totals = c.sum(1).astype(np.int64)
    own, sums, _ = _group_sums(c, lab)
    spec = dict(zip(own.tolist(), sums))
    merges, ratio = [], {}
    while True:
        ks = [int(k) for k in np.unique(lab) if k >= 0]
        if len(ks) < 2:
            break
        for i, a in enumerate(ks):
            for b in ks[i + 1:]:
                if (a, b) not in ratio:
                    g = _gain(spec[a], spec[b])
                    # the pair's pixels in map order: the null does not depend on the numbering
                    pair = (lab == a) | (lab == b)
                    null, _ = _test_null(totals, spec[a] + spec[b], pair, pooling, random_state,
                                         g / factor)
                    ratio[(a, b)] = (_ratio(g, null), g, null)
        (a, b), (r, g, null) = min(((p, v) for p, v in ratio.items()
                                    if p[0] in ks and p[1] in ks), key=lambda pv: pv[1][0])
        if r >= factor:
            break
        lab[lab == b] = a
        spec[a] = spec[a] + spec.pop(b)
        merges.append((a, b, g, null))
        ratio = {p: v for p, v in ratio.items() if a not in p and b not in p}
    new, _ = relabel_by_size(lab)
    return new, merges


def split_along_tree(counts, labels, tree, factor=None, random_state=0, pooling=None):
    """Clusters split along HDBSCAN's condensed tree wherever the counts demand it.

    Excess of mass keeps a parent when its children are small or split late, and so can hold
    several phases as one cluster (benchmark scenes 25 and 32: 2 clusters for 6 and 5 phases).
    In each cluster's subtree a node is replaced by its two children when their split gains
    ``factor`` times its one-phase null (as :func:`merge_insignificant` judges) or when a node
    below it is split. The split is tested at every depth because a tree often first sheds a
    small fragment of one phase (no real split) and divides two phases only below it (scene
    32: 341 against 8,739 pixels G/null 1.4, then 3,917 against 4,632 G/null 37). Points that
    left a split node before its split stay noise (-1), for the likelihood assignment to place.

    Nulls are measured smallest node first, and a node whose ``G`` is below ``factor`` times
    the largest null measured so far in its cluster is taken as no split without measuring
    its own: the null grows with the pixels tested (the best split of more one-phase noise
    gains more), so in a one-phase subtree a handful of nulls decide hundreds of nodes (hea6
    at 256 x 256, slider at min_cluster_size 6: 2.4 s with every null measured).

    Parameters
    ----------
    counts : (n, channels) raw counts of the clustered pixels
    labels : (n,) int, excess-of-mass labels, -1 = noise
    tree : :class:`helpers.cluster.CondensedTree` of the same points
    factor : float, optional; None = :data:`TREE_SPLIT_FACTOR`
    pooling : (rows, cols, sigma), optional, as :func:`merge_insignificant`

    Returns
    -------
    labels : (n,) int, the same where nothing was split, renumbered by size
    splits : list of (node, size_a, size_b, G, null) of every split made (null: for a
        large pair, possibly the bound that decided it, :func:`_test_null`: an upper bound
        for a split node, a lower bound for a node listed because a node below it split)
    """
    factor = TREE_SPLIT_FACTOR if factor is None else float(factor)
    c = np.asarray(counts, float)
    lab = np.asarray(labels)
    totals = c.sum(1).astype(np.int64)
    S, N = _node_sums(c, tree)
    out = np.full(lab.size, -1)
    splits = []
    nxt = 0
    for k in [int(k) for k in np.unique(lab) if k >= 0]:
        sel = lab == k
        top = tree.node_of(sel)
        order = tree.subtree(top)
        split, tested = {}, {}       # node -> (size_a, size_b, G, null or NaN: not measured)
        bound = 0.0
        for v in sorted((v for v in order if len(tree.children.get(v, [])) == 2),
                        key=lambda v: N[v]):
            a, b = tree.children[v]
            g = _gain(S[a], S[b])
            tested[v] = (int(N[a]), int(N[b]), float(g), np.nan)
            if g < factor * bound:
                continue
            pair = tree.members(a) | tree.members(b)
            null, is_bound = _test_null(totals, S[a] + S[b], pair, pooling, random_state,
                                        g / factor, reject_early=True)
            if not is_bound or null > g / factor:      # exact, or a lower bound of it
                bound = max(bound, null)
            tested[v] = (int(N[a]), int(N[b]), float(g), float(null))
            if _ratio(g, null) >= factor:
                split[v] = tested[v]
        below = {}
        for v in order:                       # children first: is anything below split?
            below[v] = any(below[ch] or ch in split for ch in tree.children.get(v, []))
        leaves, stack = [], [top]
        while stack:
            v = stack.pop()
            if v in split or below[v]:
                splits.append((v, *tested[v]))
                stack.extend(tree.children[v])
            else:
                leaves.append(v)
        for v in leaves:
            out[tree.members(v) if len(leaves) > 1 else sel] = nxt
            nxt += 1
    new, _ = relabel_by_size(out)
    return new, splits


def _group_sums(c, groups):
    """Summed rows of ``c`` per value of ``groups`` >= 0: (values, (k, channels) sums, sizes).

    One sparse product, in row order (exact for counts): no boolean-indexed or sorted copy of
    ``c``, each a fresh 20 MB allocation at 256 x 256 that cost up to 0.1 s of page faults per
    slider move on our virtual machines.
    """
    from scipy.sparse import csr_matrix
    groups = np.asarray(groups)
    ok = np.flatnonzero(groups >= 0)
    g = groups[ok]
    # the values present and each row's index among them by counting, not sorting (labels
    # and tree nodes are small integers; np.unique's argsort was a third of a slider move)
    size = np.bincount(g) if g.size else np.zeros(0, np.int64)
    own = np.flatnonzero(size)
    index = np.zeros(size.size, np.int64)
    index[own] = np.arange(own.size)
    row = index[g]
    ind = csr_matrix((np.ones(ok.size), (row, ok)), shape=(own.size, len(groups)))
    return own, np.asarray(ind @ c), size[own]


def _node_sums(c, tree):
    """Summed counts and pixel numbers of every node's points (its own and its children's)."""
    nodes = sorted(set(tree.children) | set(np.unique(tree.direct[tree.direct >= 0]).tolist()))
    S = {v: np.zeros(c.shape[1]) for v in nodes}
    N = dict.fromkeys(nodes, 0)
    own, sums, sizes = _group_sums(c, tree.direct)
    for i, v in enumerate(own.tolist()):
        S[v], N[v] = sums[i], int(sizes[i])
    for v in _post_order(tree, nodes):
        for ch in tree.children.get(v, []):
            S[v] = S[v] + S[ch]
            N[v] += N[ch]
    return S, N


def _post_order(tree, nodes):
    """Every node after its children."""
    roots = [v for v in nodes if v not in tree.parent]
    return [v for r in roots for v in tree.subtree(r)]


def mixture_gain(S, pa, pb):
    """G statistic of summed counts ``S`` under their own spectrum against the best mixture
    ``alpha pa + (1 - alpha) pb`` of two other spectra (alpha in [0, 1]). Returns (G, alpha).
    Pixels that straddle the boundary of phases a and b sum to exactly such a mixture."""
    from scipy.optimize import minimize_scalar

    S = np.asarray(S, float)

    def nll(alpha):
        return -float(S @ np.log(np.maximum(alpha * pa + (1 - alpha) * pb, 1e-300)))

    r = minimize_scalar(nll, bounds=(0.0, 1.0), method="bounded")
    return 2.0 * (_loglik(S) + r.fun), float(r.x)


def boundary_mixtures(counts, labels, shape_rows, shape_cols, touch=MIXTURE_TOUCH,
                      random_state=0):
    """Clusters that are only the boundary between two others: their summed counts are a
    mixture of the two clusters' spectra (the mixture misfits them by less than the best split
    of one-phase noise of their own pixels gains, :func:`null_split_gain`) and at least
    ``touch`` of their pixels border one of the two. Pooled features gather the mixed pixels
    along a grain boundary into a cluster of their own (hea6 at 256 x 256: 103 binned pixels
    between two phases, G 184 against a null of 299, where every real phase misfits any
    mixture by 2.3 to 60 times its null); a phase whose composition merely lies between two
    others fills grains of its own and is kept.

    Parameters
    ----------
    counts : (n, channels) raw counts of the clustered pixels
    labels : (n,) int, -1 = noise
    shape_rows, shape_cols : (n,) int, the pixels' grid positions

    Returns
    -------
    list of (cluster, a, b, G, null) of the boundary clusters
    """
    c = np.asarray(counts, float)
    lab = np.asarray(labels)
    own, sums, _ = _group_sums(c, lab)
    ks = own.tolist()
    if len(ks) < 3:
        return []
    S = dict(zip(ks, sums))
    P = {k: (S[k] + PSEUDO_COUNT) / (S[k] + PSEUDO_COUNT).sum() for k in ks}
    grid = -np.ones((int(shape_rows.max()) + 3, int(shape_cols.max()) + 3), int)
    grid[shape_rows + 1, shape_cols + 1] = lab
    out = []
    for k in ks:
        fits = [(mixture_gain(S[k], P[a], P[b])[0], a, b) for i, a in enumerate(ks)
                for b in ks[i + 1:] if k not in (a, b)]
        g, a, b = min(fits)
        sel = lab == k
        r, q = shape_rows[sel] + 1, shape_cols[sel] + 1
        near = np.zeros(r.size, bool)
        for dr in (-1, 0, 1):
            for dc in (-1, 0, 1):
                near |= np.isin(grid[r + dr, q + dc], (a, b))
        if near.mean() < touch:
            continue
        null = null_split_gain(c[sel], random_state=random_state)
        if g <= null:
            out.append((k, a, b, float(g), float(null)))
    return out


def assign_by_likelihood(counts, labels, refine=True, ambiguous=AMBIGUOUS_POSTERIOR):
    """Every pixel to the cluster that explains its counts best; noise only where none does.

    Cluster spectra come from the pixels already labelled (noise excluded); every pixel, noise
    included, is then classified by its multinomial log-likelihood plus the log of the
    clusters' shares, iterated to convergence when ``refine`` (classification EM, as
    :func:`helpers.cluster.poisson_mixture_refine`). Pixels whose best posterior stays below
    ``ambiguous`` are noise (-1).

    Returns
    -------
    labels : (n,) int, renumbered by size; posteriors : (n, k)
    """
    c = np.asarray(counts, float)
    lab = np.asarray(labels)
    own, S, size = _group_sums(c, lab)
    if not own.size:
        return lab.copy(), np.zeros((len(lab), 0))
    S, size = S + PSEUDO_COUNT, size.astype(float)
    spectra, weights = S / S.sum(1, keepdims=True), size / size.sum()
    if refine and own.size > 1:
        start = np.argmax(c @ np.log(spectra).T + np.log(weights), axis=1)
        out, post, _ = poisson_mixture_refine(c, start)
    else:
        out, post = classify(c, spectra, weights)
    out = np.where(post.max(axis=1) >= ambiguous, out, -1)
    return out, post

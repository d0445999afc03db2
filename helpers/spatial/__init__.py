"""Spatial prior for cluster labels: a Potts Markov random field on the pixel grid.

The clustering workflows label every (binned) pixel on its own. At tens of counts per pixel
even a classifier that knows the true phase spectra mislabels a tenth of the pixels
(``tests/ceiling.py``), yet neighbouring pixels almost always belong to the same phase. This
module adds that knowledge as a hidden Markov random field (HMRF; Zhang, Brady & Smith,
IEEE TMI 20, 2001) on the ORIGINAL pixel grid, starting from any labelling (workflow 1 or 2).

Model
-----
Data term. Each cluster k has a spectral shape p_k: the summed raw counts of its pixels plus
a pseudo-count, normalised. A pixel x with counts y_x has the multinomial log-likelihood

    D[x, k] = sum_c y_xc log p_kc

(the multinomial coefficient is the same for every k and is dropped). It conditions on the
pixel's total, so it does not depend on thickness; it is the likelihood that
:func:`helpers.cluster.poisson_mixture_refine` maximises, without that function's mixing
proportions: the spatial prior takes their place, and a non-spatial class prior would push
small phases away.

Prior. A Potts model on the 4- or 8-neighbourhood (diagonal pairs weighted 1/sqrt 2):

    E(l) = -sum_x D[x, l_x] + beta * sum_{x~y} w_xy [l_x != l_y]

Pixels outside the sample mask are not in the graph (no edges) and stay -1.

With ``anisotropy=True`` the weights w_xy also depend on the pair's direction: rows, columns
and the two diagonals get factors 1 + c, 1 - c, 1 + s, 1 - s, read off the input labels by
Besag's pseudo-likelihood (:func:`helpers.spatial.potts.direction_weights`). In lamellae,
neighbours along a stripe share a label far more often than across it, and an isotropic prior
rounds a 3-px stripe off into blobs of the matrix; grains and particles read below the floor
and stay isotropic.

beta. Estimated from the data by the mean-field EM of Celeux, Forbes & Peyrard (Pattern
Recognition 36, 2003): mean-field posterior marginals q at the current beta (E-step), then
the beta maximising the mean-field pseudo-likelihood sum_x sum_k q_xk log softmax_k(beta
m_x)_k, m_x the weighted neighbour sum of q (M-step: 1-D, concave, Newton). It starts from
Besag's pseudo-likelihood estimate on the input labels. A salt-and-pepper map gives beta ~ 0,
large grains a large beta. It is estimated once, with the input clusters' spectra: estimated
again after each relabelling it fed on its own smoothing (0.5, 0.9, 2.2 over three rounds on
a benchmark scene, 1, 470, 1080 on another). Where the data term is weak, the mean-field
solution itself orders (all marginals near one label) and the EM runs away: on a lamellae
scene whose true map has a pseudo-likelihood beta of 1.04 (the input labels' 1.02), it
returned 7.5. The coupling used is therefore at most the input labels' own pseudo-likelihood
estimate: ``map_scale`` x min(EM estimate, Besag estimate) (``cap``).

Labels. The MAP labelling at that coupling (:data:`MAP_SCALE`) by iterated conditional modes
(ICM, Besag 1986) with a four-colour schedule (no two pixels of a colour are 8-neighbours, so a
whole colour is updated at once, exactly like sequential ICM), started from the modes of
mean-field marginals at that coupling, themselves started from the input labels (mean field has
several fixed points: started from the ordered marginals of a larger beta it stays ordered).
On the simulated maps of ``benchmarks/spatial_prior.py --graphcut`` it ends within 0.1 %
(hea6: 5e-5) of the energy that alpha-expansion graph cuts (gco-wrapper) gain over the
per-pixel labels, with >= 99.6 % (hea6: 99.98 %) of the labels equal, so no graph-cut
package is needed. With ``n_iter`` > 1 the spectra are re-estimated from the new labels and
the labelling repeated (HMRF-EM); the default, 1, keeps the workflow's clusters and only
decides which pixels belong to them (:data:`N_ITER`). With beta = 0 the labels are the
per-pixel argmax of D.

Noise label. For HDBSCAN's workflow 2, "unassigned" should mean that no cluster explains the
counts, not that they are noisy. After the HMRF-EM, each pixel's counts, pooled with those of
its same-label neighbours (one multinomial draw from p_k if the label is right), are grouped
into contiguous energy windows of equal probability under p_k and tested with the G
(likelihood-ratio) statistic against chi-square; the pixels rejected by the
Benjamini-Hochberg procedure at false-discovery rate ``noise_fdr`` become -1, are left out
of the spectra, and the labels are recomputed once. On a map the clusters explain, nothing
is flagged (with probability ~ 1 - noise_fdr); a region of a phase that is not among the
clusters is flagged as a whole, with a rim of a pixel or two around it.

Everything works on NumPy arrays; no HyperSpy object is needed.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


from ..errors import ParameterError
from .counts import (PreparedCounts, check_labels, cluster_log_spectra, data_term,  # noqa: F401
                     encode, one_blas_thread, prepare_counts)
from .noise import benjamini_hochberg, goodness_of_fit  # noqa: F401
from .potts import (Grid, beta_hard, direction_weights, estimate_beta,  # noqa: F401
                    estimate_beta_mf, icm, init_marginals, mean_field, onehot_padded,
                    potts_energy, total_energy)

#: The labels are the MAP at this fraction of the estimated coupling. The MAP at the prior's
#: own coupling over-smooths structures finer than the counts resolve (3-px layers at a few
#: counts per pixel became blobs; Marroquin, Mitter & Poggio, JASA 82, 1987, on why the MAP of
#: a Markov field is not the labelling that gets most pixels right). Chosen on
#: ``benchmarks/generalisation.py``: scenes more than 0.01 of ARI worse with the prior than
#: without, (W1, W2), on the 34-scene suite / 30 lamellae scenes (``--kind lamellae``):
#: 0.6: (0, 0) / (1, 0); 0.7: (0, 0) / (0, 0); 0.8: (0, 0) / (0, 1); 1.0: (1, 0) / (0, 4).
#: On held-out seeds 34-63 at 0.7: (0, 1), the one a scene no per-pixel method separates
#: (ceiling ARI 0.05; -0.063 -> -0.087).
MAP_SCALE = 0.7
#: Spectra re-estimated from the labels this many times (1: the workflow's clusters as they
#: are). Re-estimating let a cluster drift onto another phase: on held-out scene 38 a cluster
#: that mixed two phases became one of them, the other joined a third, ARI 0.75 -> 0.28.
N_ITER = 1



@dataclass
class SpatialResult:
    """Output of :func:`regularise_labels`.

    Attributes
    ----------
    labels : (rows, cols) int
        Regularised labels: the input's cluster values, -1 for noise and outside the mask.
    beta : float
        Potts interaction of the labels (given, or ``map_scale`` x the capped estimate), per
        neighbour pair of weight 1.
    n_changed : int
        Sample pixels whose label differs from the input's.
    energy_trace : list of float
        Potts energy after each HMRF-EM iteration (each with that iteration's spectra).
    noise : (rows, cols) bool
        Pixels labelled noise (no cluster explains them).
    clusters : (k,) int
        Cluster values; column j of ``data`` is cluster ``clusters[j]``.
    beta_trace : list of float
        The interaction used at each iteration.
    n_iter : int
        HMRF-EM iterations run.
    data : (rows, cols, k) float, optional
        Data term of the last labelling (log-likelihood under each cluster's spectrum);
        NaN outside the mask.
    beta_estimate : float
        The mean-field EM estimate of the prior's interaction, before cap and scale (the
        given beta when fixed).
    beta_input : float or None
        Besag's pseudo-likelihood beta of the input labels (the cap; None when fixed).
    prepared : PreparedCounts
        The counts as the prior read them (pass them back as ``counts`` to skip preparing).
    marginals : (rows, cols, k) float32
        Each pixel's probability of each cluster under the model (column j: ``clusters[j]``):
        the mean-field posterior marginals at the coupling used, the last spectra's data term
        (beta = 0: the per-pixel posterior, equal priors); 0 outside the mask. The labels are
        the MAP (ICM from the marginals' modes), so a pixel's own label is almost always, not
        always, its most probable one.
    anisotropy : bool or (4,) float
        The setting given (:func:`regularise_labels`); pass it back to relabel alike.
    weights : (4,) float
        The direction factors used (rows, columns, (1, 1) and (1, -1) diagonals; all 1:
        isotropic).
    """
    labels: np.ndarray
    beta: float
    n_changed: int
    energy_trace: list
    noise: np.ndarray
    clusters: np.ndarray
    beta_trace: list = field(default_factory=list)
    n_iter: int = 0
    data: np.ndarray = field(default=None, repr=False)
    beta_estimate: float = None
    beta_input: float = None
    prepared: PreparedCounts = field(default=None, repr=False)
    marginals: np.ndarray = field(default=None, repr=False)
    anisotropy: object = False
    weights: np.ndarray = field(default=None, repr=False)


def regularise_labels(counts, labels, mask=None, beta="auto", neighbourhood=8, n_iter=N_ITER,
                      energy_bin=1, channels=None, noise_test=True, noise_fdr=0.01, min_counts=10,
                      pseudo_count=0.5, tol=1e-3, map_scale=MAP_SCALE, cap=True,
                      anisotropy=False):
    """Regularise per-pixel cluster labels with a Potts prior (HMRF-EM).

    Parameters
    ----------
    counts : (rows, cols, channels) raw counts (NumPy array, e.g. ``signal.data``; uint8 ok)
        or :class:`PreparedCounts` (:func:`prepare_counts`, reused across calls on one map;
        ``energy_bin`` and ``channels`` are then ignored; ``SpatialResult.prepared`` holds it)
    labels : (rows, cols) int
        Starting labels on the same grid, e.g. ``WorkflowResult.labels``; -1 = unassigned
        (HDBSCAN noise is relabelled when a cluster explains it). They define the clusters
        and their first spectra.
    mask : (rows, cols) bool, optional
        Sample pixels (e.g. ``WorkflowResult.mask``); pixels outside stay -1 and are not in
        the graph. None: every pixel is sample.
    beta : "auto" or float >= 0
        Potts interaction per neighbour pair; "auto" estimates it by mean-field EM
        (:func:`estimate_beta`), once, and labels at ``map_scale`` x the estimate (see
        ``cap``). 0 gives the per-pixel argmax of the data term (with ``noise_test``, pixels
        failing the unpooled test become -1).
    neighbourhood : {4, 8}
    n_iter : int
        HMRF-EM iterations at most (spectra re-estimated from the labels before each but
        the first; :data:`N_ITER`).
    tol : float
        Stop early when at most this fraction of the sample pixels changed label.
    energy_bin, channels : see :func:`prepare_counts`
        ``energy_bin`` about half the detector FWHM (e.g.
        ``helpers.preprocess.auto_energy_bin(signal)``) gives the same labels several times
        faster.
    noise_test : bool
        Label -1 the pixels whose counts (pooled with their same-label neighbours unless
        beta = 0) fail the goodness-of-fit test against their cluster
        (:func:`goodness_of_fit`, :func:`benjamini_hochberg`); they are left out of the
        spectra. False: every sample
        pixel gets a cluster.
    noise_fdr : float
        False-discovery rate of the noise test (Benjamini-Hochberg over the sample pixels):
        on a map that the clusters explain, no pixel is flagged with probability about
        1 - noise_fdr.
    min_counts : int
        Pixels (pooled) with fewer counts are never noise.
    pseudo_count : float
        Added to every feature of every cluster spectrum.
    map_scale : float in (0, 1]
        With ``beta="auto"``, the labels are the MAP at ``map_scale`` times the estimated
        coupling (see :data:`MAP_SCALE`); ignored for a fixed ``beta``.
    cap : bool
        With ``beta="auto"``, the estimate is at most Besag's pseudo-likelihood beta of the
        input labels (it stops the EM running away where the data term is weak). Right for
        clustering output, whose labels are clean; labels with salt-and-pepper errors
        understate beta: pass False.
    anisotropy : bool or (4,) float
        False: every direction alike (diagonal pairs 1/sqrt 2). True: neighbours along one
        direction count more than across it, as much as the input labels say
        (:func:`helpers.spatial.potts.direction_weights`: lamellae keep a 3-px stripe that an
        isotropic prior erodes; grains and particles stay isotropic). Four numbers: the
        factors on rows, columns, and the (1, 1) and (1, -1) diagonals.

    Returns
    -------
    SpatialResult
    """
    with one_blas_thread():
        return _regularise(counts, labels, mask, beta, neighbourhood, n_iter, energy_bin,
                           channels, noise_test, noise_fdr, min_counts, pseudo_count, tol,
                           map_scale, cap, anisotropy)


def _regularise(counts, labels, mask, beta, neighbourhood, n_iter, energy_bin, channels,
                noise_test, noise_fdr, min_counts, pseudo_count, tol, map_scale, cap, anisotropy):
    prep = _prepared(counts, mask, energy_bin, channels)
    lab0 = check_labels(labels, prep.shape)
    m = prep.mask
    if not m.any():
        raise ParameterError("The mask holds no sample pixel.")
    g = Grid(m, neighbourhood)
    auto = _check_settings(beta, n_iter, noise_fdr, tol, map_scale)
    clusters, cur = encode(lab0[m])
    K = clusters.size
    R, C = prep.shape
    lab_img = np.zeros((R, C), np.int64)
    lab_img0 = np.full((R, C), -1, np.int64)
    lab_img0[m] = cur
    g = _anisotropic(g, anisotropy, lab_img0, K)
    state = dict(beta=0.0 if auto else float(beta), used=0.0 if auto else float(beta), P=None,
                 anisotropy=anisotropy, weights=g.weights)
    pool = auto or float(beta) > 0           # beta = 0: no spatial information anywhere
    energy_trace, beta_trace = [], []
    DL = np.zeros((K, R, C), np.float32)

    def fit(cur):
        """Spectra from ``cur`` (-1 left out), data term, and the mean-field marginals at the
        coupling of the labels; beta is estimated once, on the input's clusters."""
        logp = cluster_log_spectra(prep, cur, K, pseudo_count)
        DL[:, m] = prep.dot(logp.T).T                             # (K, n_sample)
        P = state["P"]
        if P is None and auto:               # from the input labels' own pseudo-likelihood beta
            b0 = b = beta_hard(g, onehot_padded(g, lab_img0, K))
            b, _, _ = estimate_beta_mf(g, DL, b, P=init_marginals(g, DL, lab_img0, b))
            state["beta"], state["hard"] = b, b0
            state["used"] = map_scale * (min(b, b0) if cap else b)
        if state["used"] > 0:
            if P is None:   # from the input labels, not a larger beta's marginals (hysteresis)
                P = init_marginals(g, DL, lab_img0, state["used"])
            mean_field(g, DL, state["used"], P, n_sweeps=10)
        state["P"] = P
        return logp

    def label():
        """MAP labels at the coupling used, by ICM from the mean-field marginal modes."""
        bm = state["used"]
        if bm > 0:
            lab_img[m] = np.argmax(g.interior(state["P"])[:, m], axis=0)
            icm(g, DL, lab_img, bm)
        else:
            lab_img[m] = np.argmax(DL[:, m], axis=0)     # exactly the per-pixel argmax
        beta_trace.append(bm)
        energy_trace.append(total_energy(DL, lab_img, bm, m, neighbourhood, g.weights))
        return lab_img[m].copy()

    def test(new, logp):
        pval, _, _ = goodness_of_fit(prep, new, logp, pool=pool, neighbourhood=neighbourhood,
                                     min_counts=min_counts)
        return benjamini_hochberg(pval, noise_fdr)

    # HMRF-EM on all pixels, then the noise test with the converged spectra; when it flags
    # pixels, one more round with them left out of the spectra (an unknown phase must not
    # pull a cluster's spectrum towards itself)
    it = 0
    for it in range(1, n_iter + 1):
        logp = fit(cur)
        new = label()
        done = np.count_nonzero(new != cur) <= tol * new.size
        cur = new
        if done:
            break
    if noise_test:
        flags = test(cur, logp)
        if flags.any():
            cur[flags] = -1
            logp = fit(cur)
            new = label()
            it += 1
            flags = test(new, logp)
            new[flags] = -1
            cur = new
    return _result(cur, clusters, m, lab0, DL, state, energy_trace, beta_trace, it, prep)


def _anisotropic(g, anisotropy, lab_img0, K):
    """The grid ``g`` with the direction factors ``anisotropy`` asks for (see
    :func:`regularise_labels`)."""
    if anisotropy is False or anisotropy is None:
        return g
    if anisotropy is True:
        w = direction_weights(g, onehot_padded(g, lab_img0, K))
    else:
        try:
            w = np.asarray(anisotropy, float).ravel()
        except (TypeError, ValueError):
            w = np.full(1, np.nan)
        if w.shape != (4,) or not np.all(np.isfinite(w)) or np.any(w < 0):
            raise ParameterError(f"anisotropy must be True, False or 4 factors >= 0, got "
                                 f"{anisotropy!r}.")
    return Grid(g.mask, g.neighbourhood, w)


def _prepared(counts, mask, energy_bin, channels):
    """``counts`` prepared (:func:`prepare_counts`), or as given when already prepared (once
    for many calls on one map, e.g. a slider), its mask checked against ``mask``."""
    if not isinstance(counts, PreparedCounts):
        return prepare_counts(counts, mask, energy_bin, channels)
    if mask is not None and not np.array_equal(np.asarray(mask, bool), counts.mask):
        raise ParameterError("mask differs from the prepared counts' mask: prepare the counts "
                             "with this mask (prepare_counts).")
    return counts


def _check_settings(beta, n_iter, noise_fdr, tol, map_scale):
    """Refuse impossible settings; True when beta is to be estimated ("auto")."""
    auto = isinstance(beta, str)
    if auto and beta != "auto":
        raise ParameterError(f"beta={beta!r}: use 'auto' or a number >= 0.")
    if not auto and not (isinstance(beta, (int, float, np.integer, np.floating))
                         and np.isfinite(beta) and beta >= 0):
        raise ParameterError(f"beta must be 'auto' or a number >= 0, got {beta!r}.")
    if isinstance(n_iter, (bool, np.bool_)) or not isinstance(n_iter, (int, np.integer)) \
            or n_iter < 1:
        raise ParameterError(f"n_iter must be a positive integer, got {n_iter!r}.")
    if not (0 < noise_fdr < 1) or not tol >= 0:
        raise ParameterError(f"noise_fdr must be in (0, 1) and tol >= 0, got {noise_fdr!r}, "
                             f"{tol!r}.")
    if not (isinstance(map_scale, (int, float, np.integer, np.floating))
            and 0 < map_scale <= 1):
        raise ParameterError(f"map_scale must be in (0, 1], got {map_scale!r}.")
    return auto


def _result(cur, clusters, m, lab0, DL, state, energy_trace, beta_trace, n_iter, prep):
    """The :class:`SpatialResult` of the final sample labels ``cur`` (codes into ``clusters``)."""
    out = np.full(m.shape, -1, np.int64)
    vals = np.full(cur.shape, -1, np.int64)
    vals[cur >= 0] = clusters[cur[cur >= 0]]
    out[m] = vals
    noise = np.zeros(m.shape, bool)
    noise[m] = cur < 0
    Dout = np.where(m[..., None], np.moveaxis(DL, 0, -1).astype(np.float64), np.nan)
    n_changed = int(np.count_nonzero(out[m] != lab0[m]))
    return SpatialResult(labels=out, beta=float(state["used"]), n_changed=n_changed,
                         energy_trace=energy_trace, noise=noise, clusters=clusters,
                         beta_trace=beta_trace, n_iter=n_iter, data=Dout,
                         beta_estimate=float(state["beta"]), beta_input=state.get("hard"),
                         prepared=prep, marginals=_marginals(DL, state.get("P"), m),
                         anisotropy=state["anisotropy"], weights=state["weights"])


def _marginals(DL, P, m):
    """(rows, cols, k) float32 posterior marginals: the mean-field ones from the padded ``P``
    (the last fit's, at the coupling used), or the per-pixel softmax of the data term ``DL``
    when no coupling was used; 0 outside the sample mask ``m``."""
    if P is not None:
        q = P[:, 1:-1, 1:-1]
    else:
        q = DL - DL.max(axis=0)
        np.exp(q, out=q)
        q /= q.sum(axis=0)
    return np.ascontiguousarray(np.moveaxis(np.where(m, q, 0), 0, -1), dtype=np.float32)

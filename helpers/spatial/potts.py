"""The Potts model on the pixel grid: neighbourhoods, energy, mean-field marginals, the
estimate of beta (mean-field EM) and iterated conditional modes."""
from __future__ import annotations


import numpy as np

from ..errors import ParameterError
from .counts import check_labels, check_mask


_DIAG = 1.0 / np.sqrt(2.0)
#: The undirected neighbour directions, in the order of a ``weights`` vector.
DIRECTIONS = ((0, 1), (1, 0), (1, 1), (1, -1))


def offsets(neighbourhood, weights=None):
    """Directed neighbour offsets (dr, dc, weight): each undirected pair appears twice.
    ``weights``: one factor per direction of :data:`DIRECTIONS` (the first 2 for the
    4-neighbourhood) multiplying its weight (an anisotropic prior); None: all 1."""
    if isinstance(neighbourhood, (bool, np.bool_)) or neighbourhood not in (4, 8):
        raise ParameterError(f"neighbourhood must be 4 or 8, got {neighbourhood!r}.")
    a = np.ones(4) if weights is None else np.asarray(weights, float)
    off = [(0, 1, a[0]), (0, -1, a[0]), (1, 0, a[1]), (-1, 0, a[1])]
    if neighbourhood == 8:
        off += [(1, 1, _DIAG * a[2]), (-1, -1, _DIAG * a[2]), (1, -1, _DIAG * a[3]),
                (-1, 1, _DIAG * a[3])]
    return [(dr, dc, float(w)) for dr, dc, w in off]


class Grid:
    """Label-first arrays (L, rows+2, cols+2), zero-padded, zero outside the mask.

    The four colours (row parity, column parity) are updated one at a time: no two pixels of a
    colour are 8-neighbours, so a colour-wide update is exactly a sequential one.
    """

    def __init__(self, mask, neighbourhood, weights=None):
        self.mask = mask
        self.R, self.C = mask.shape
        self.neighbourhood = neighbourhood
        self.weights = np.ones(4) if weights is None else np.asarray(weights, float)
        self.offsets = offsets(neighbourhood, self.weights)
        self.colours = [(a, b) for a in (0, 1) for b in (0, 1)]
        self.cmask = {c: mask[c[0]::2, c[1]::2] for c in self.colours}

    def padded(self, L, dtype=np.float32):
        return np.zeros((L, self.R + 2, self.C + 2), dtype)

    def interior(self, P):
        return P[:, 1:self.R + 1, 1:self.C + 1]

    def colour_view(self, P, c, dr=0, dc=0):
        a, b = c
        return P[:, 1 + a + dr:1 + self.R + dr:2, 1 + b + dc:1 + self.C + dc:2]

    def colour_sum(self, P, c):
        """sum_y w_xy P[y] for the pixels x of colour c: (L, rows_c, cols_c)."""
        S = None
        for dr, dc, w in self.offsets:
            v = self.colour_view(P, c, dr, dc)
            if S is None:
                S = v.copy() if w == 1.0 else w * v
            elif w == 1.0:
                S += v
            else:
                S += np.float32(w) * v
        return S

    def full_sum(self, P):
        """sum_y w_xy P[y] for every pixel: (L, rows, cols)."""
        S = np.zeros((P.shape[0], self.R, self.C), P.dtype)
        for dr, dc, w in self.offsets:
            v = P[:, 1 + dr:1 + self.R + dr, 1 + dc:1 + self.C + dc]
            if w == 1.0:
                S += v
            else:
                S += np.float32(w) * v
        return S


def potts_energy(D, labels, beta, mask, neighbourhood=8, weights=None):
    """E = -sum_x D[x, l_x] + beta sum_{x~y} w_xy [l_x != l_y] over the sample pixels.

    Parameters
    ----------
    D : (rows, cols, L) scores (log-likelihoods); values outside ``mask`` are ignored
    labels : (rows, cols) int in 0..L-1 inside ``mask``
    beta : float
    mask : (rows, cols) bool
    neighbourhood : {4, 8}
        Diagonal pairs (8) weigh 1/sqrt(2).

    Returns
    -------
    float
    """
    mask = np.asarray(mask, bool)
    lab = np.where(mask, labels, 0)
    e = -np.take_along_axis(np.asarray(D), lab[..., None], axis=2)[..., 0][mask].sum(
        dtype=np.float64)
    R, C = mask.shape
    pair = 0.0
    for dr, dc, w in offsets(neighbourhood, weights):
        if (dr, dc) not in DIRECTIONS:
            continue                          # each undirected pair once
        ra = slice(0, R - dr)
        rb = slice(dr, R)
        ca, cb = (slice(0, C - dc), slice(dc, C)) if dc >= 0 else (slice(-dc, C),
                                                                    slice(0, C + dc))
        both = mask[ra, ca] & mask[rb, cb]
        pair += w * np.count_nonzero(both & (lab[ra, ca] != lab[rb, cb]))
    return float(e + beta * pair)


def total_energy(DL, lab, beta, mask, neighbourhood, weights=None):
    return potts_energy(np.moveaxis(DL, 0, -1), lab, beta, mask, neighbourhood, weights)


def _softmax0(z):
    """In-place softmax over axis 0 (the label axis) of an (L, ...) array."""
    z -= z.max(axis=0)
    np.exp(z, out=z)
    z /= z.sum(axis=0)
    return z


def mean_field(g, DL, beta, P, n_sweeps=2, tol=1e-3):
    """Mean-field sweeps in place on the padded marginals P; returns the largest change."""
    b = np.float32(beta)
    delta = 0.0
    for _ in range(n_sweeps):
        delta = 0.0
        for c in g.colours:
            z = g.colour_sum(P, c)
            z *= b
            z += DL[:, c[0]::2, c[1]::2]
            _softmax0(z)
            z *= g.cmask[c]
            view = g.colour_view(P, c)
            if z.size:
                delta = max(delta, float(np.abs(z - view).max()))
            view[...] = z
        if delta < tol:
            break
    return delta


def _beta_newton(qs, ms, beta0, max_iter=3):
    """argmax_beta sum_x sum_k q_xk log softmax(beta m_x)_k; q, m are (L, n). Concave."""
    qs = np.ascontiguousarray(qs, np.float32)
    ms = np.ascontiguousarray(ms, np.float32)
    a = float((qs * ms).sum(dtype=np.float64))
    ms2 = ms * ms
    b = max(float(beta0), 0.0)
    for _ in range(max_iter):
        p = _softmax0(np.float32(b) * ms)
        em = (p * ms).sum(axis=0)
        g = a - float(em.sum(dtype=np.float64))
        h = -float((p * ms2).sum(dtype=np.float64) - (em * em).sum(dtype=np.float64))
        if h >= -1e-9:
            break
        nb = b - g / h
        if nb < 0:
            nb = b / 2.0
        done = abs(nb - b) < 1e-5 * max(1.0, b)
        b = nb
        if done:
            break
    return max(b, 0.0)


def onehot_padded(g, lab_img, L):
    """Padded one-hot (L, rows+2, cols+2) of labels 0..L-1 inside the mask (-1: all zero)."""
    P = g.padded(L)
    rr, cc = np.nonzero(g.mask & (lab_img >= 0))
    g.interior(P)[lab_img[rr, cc], rr, cc] = 1.0
    return P


def beta_hard(g, P):
    """Besag's maximum pseudo-likelihood beta of a hard labelling given as one-hot P."""
    keep = g.mask & (g.interior(P).sum(axis=0) > 0)
    q = g.interior(P)[:, keep]
    m = g.full_sum(P)[:, keep]
    return _beta_newton(q, m, 0.0, max_iter=50)


def init_marginals(g, DL, lab_img, beta):
    """Starting marginals: one mean-field step from the hard labels ``lab_img``."""
    P1 = onehot_padded(g, lab_img, DL.shape[0])
    P = g.padded(DL.shape[0])
    z = np.float32(beta) * g.full_sum(P1)
    z += DL
    g.interior(P)[...] = _softmax0(z) * g.mask
    return P


def estimate_beta_mf(g, DL, beta0, P=None, max_iter=100, tol=1e-3):
    """Mean-field EM for beta on the label-first data term; returns (beta, P, iterations)."""
    mask = g.mask
    if P is None:
        P = g.padded(DL.shape[0])
        g.interior(P)[...] = _softmax0(DL.copy()) * mask
    beta = float(beta0)
    it = 0
    for it in range(1, max_iter + 1):
        mean_field(g, DL, beta, P, n_sweeps=1)
        q = g.interior(P)[:, mask]
        m = g.full_sum(P)[:, mask]
        nb = _beta_newton(q, m, beta, max_iter=1)
        done = abs(nb - beta) <= tol * max(beta, 1e-2)
        beta = nb
        if done:
            break
    mean_field(g, DL, beta, P, n_sweeps=5)
    return beta, P, it


def estimate_beta(D, mask=None, labels=None, neighbourhood=8, beta0=0.5, max_iter=100,
                  tol=1e-3):
    """Potts interaction beta by mean-field EM (Celeux, Forbes & Peyrard 2003).

    Alternates mean-field sweeps for the posterior marginals q at the current beta (E-step)
    with the beta maximising the mean-field pseudo-likelihood
    sum_x sum_k q_xk log softmax_k(beta m_x)_k, m_x the weighted neighbour sum of q (M-step,
    1-D and concave: Newton). The data enter through q, so label noise, which
    pseudo-likelihood on hard labels would read as a weak interaction, is accounted for.

    Parameters
    ----------
    D : (rows, cols, L) data term, e.g. from :func:`data_term` (NaN outside the mask is fine)
    mask : (rows, cols) bool, optional
        Sample pixels; None: every pixel.
    labels : (rows, cols) int, optional
        A starting labelling in 0..L-1 (-1: none), as :func:`regularise_labels` uses: beta
        starts from Besag's pseudo-likelihood estimate on it and q from one mean-field step
        from it. None: beta starts at ``beta0`` and q at the per-pixel posteriors.
    neighbourhood : {4, 8}
    beta0 : float
        Starting value when ``labels`` is None.
    max_iter : int
        Maximum EM iterations.
    tol : float
        Relative change of beta that stops the iteration.

    Returns
    -------
    beta : float
    q : (rows, cols, L) mean-field posterior marginals at that beta (0 outside the mask)
    """
    D = np.asarray(D, float)
    mask = check_mask(mask, D.shape[:2])
    g = Grid(mask, neighbourhood)
    DL = np.ascontiguousarray(np.moveaxis(np.where(mask[..., None], D, 0.0), -1, 0),
                              dtype=np.float32)
    P = None
    if labels is not None:
        lab = np.where(mask, check_labels(labels, mask.shape), -1)
        beta0 = beta_hard(g, onehot_padded(g, lab, DL.shape[0]))
        P = init_marginals(g, DL, lab, beta0)
    beta, P, _ = estimate_beta_mf(g, DL, beta0, P=P, max_iter=max_iter, tol=tol)
    return float(beta), np.moveaxis(g.interior(P), 0, -1).astype(np.float64)


def icm(g, DL, lab, beta, max_sweeps=50):
    """Iterated conditional modes, four-colour schedule; lab (rows, cols) in place."""
    L = DL.shape[0]
    mask = g.mask
    P = g.padded(L)
    inner = g.interior(P)
    rr, cc = np.nonzero(mask)
    inner[lab[rr, cc], rr, cc] = 1.0
    b = np.float32(beta)
    sweeps = 0
    for sweeps in range(1, max_sweeps + 1):
        changed = 0
        for c in g.colours:
            z = g.colour_sum(P, c)
            z *= b
            z += DL[:, c[0]::2, c[1]::2]
            new = np.argmax(z, axis=0)
            sub = lab[c[0]::2, c[1]::2]
            diff = (new != sub) & g.cmask[c]
            n = int(np.count_nonzero(diff))
            if n:
                changed += n
                view = g.colour_view(P, c)
                i, j = np.nonzero(diff)
                view[sub[i, j], i, j] = 0.0
                view[new[i, j], i, j] = 1.0
                sub[i, j] = new[i, j]
        if changed == 0:
            break
    return lab, sweeps


#: Largest anisotropy: a direction's factor stays within 1 -/+ this.
MAX_ANISOTROPY = 0.6
#: Anisotropy up to this is not used (subtracted from the estimate): read off the workflows'
#: own starting labels of random scenes, grains and particles stay below it (at most 0.34),
#: boundary networks but one (0.45), and half the lamellae scenes are above it (up to 1.5).
ANISOTROPY_FLOOR = 0.35
#: Pixels the direction fit reads at most (evenly spaced; a 128 x 128 map is read whole): three
#: numbers need no more, and a fit costs 0.035 s at 256 x 256 (0.13 s reading every pixel).
ANISOTROPY_PIXELS = 16384


def _shrunk(r, floor, limit):
    """``r`` moved ``floor`` towards 0 (not past it), then clipped to +/- ``limit``."""
    return float(np.sign(r) * np.clip(abs(r) - floor, 0.0, limit))


def direction_weights(g, P, max_iter=30, limit=None, floor=None):
    """How much more alike neighbours along one direction are than across it, as factors on
    the isotropic weights, from Besag's pseudo-likelihood of a hard labelling (one-hot,
    padded ``P``): lamellae along rows give rows a factor above 1, columns one below.

    Two parameters, not one coupling per direction (axial and diagonal neighbours carry
    nearly the same information, so four free couplings are not identified): the factors are
    ``[1 + c, 1 - c, 1 + s, 1 - s]`` for rows, columns and the two diagonals, so each pair
    of opposite directions keeps its isotropic total. ``c`` and ``s`` are fitted with the
    overall coupling (the pseudo-likelihood is linear in the three, hence concave; Newton),
    then moved ``floor`` towards 0 (:data:`ANISOTROPY_FLOOR`) and clipped to ``limit``
    (:data:`MAX_ANISOTROPY`).

    Returns
    -------
    weights : (4,) float (1 for the diagonals in the 4-neighbourhood)
    """
    limit = MAX_ANISOTROPY if limit is None else float(limit)
    floor = ANISOTROPY_FLOOR if floor is None else float(floor)
    keep = np.flatnonzero(g.mask & (g.interior(P).sum(axis=0) > 0))
    if keep.size > ANISOTROPY_PIXELS:
        keep = keep[np.linspace(0, keep.size - 1, ANISOTROPY_PIXELS).astype(np.int64)]
    rr, cc = np.unravel_index(keep, (g.R, g.C))
    q = P[:, rr + 1, cc + 1].astype(np.float64)
    m = [P[:, rr + 1 + dr, cc + 1 + dc] + P[:, rr + 1 - dr, cc + 1 - dc]
         for dr, dc in DIRECTIONS]
    diag = g.neighbourhood == 8
    feats = [m[0] + m[1] + (_DIAG * (m[2] + m[3]) if diag else 0.0), m[0] - m[1]]
    if diag:
        feats.append(_DIAG * (m[2] - m[3]))
    X = np.stack(feats).astype(np.float64)                       # (D, L, n)
    b = np.zeros(len(feats))
    b[0] = 0.5
    for _ in range(max_iter):
        z = np.einsum("d,dln->ln", b, X)
        p = np.exp(z - z.max(axis=0))
        p /= p.sum(axis=0)
        ex = np.einsum("ln,dln->dn", p, X)
        grad = np.einsum("ln,dln->d", q - p, X)
        h = np.einsum("dn,en->de", ex, ex) - np.einsum("ln,dln,eln->de", p, X, X)
        try:
            step = np.linalg.solve(h - 1e-9 * np.eye(len(b)), grad)
        except np.linalg.LinAlgError:
            break
        if not np.all(np.isfinite(step)):
            break
        b = b - step
        if np.abs(step).max() < 1e-5:
            break
    out = np.ones(4)
    if not np.all(np.isfinite(b)) or b[0] <= 1e-6:
        return out                                # no coupling: no direction either
    c = _shrunk(b[1] / b[0], floor, limit)
    out[:2] = 1 + c, 1 - c
    if diag:
        s = _shrunk(b[2] / b[0], floor, limit)
        out[2:] = 1 + s, 1 - s
    return out

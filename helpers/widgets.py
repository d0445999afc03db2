"""Sliders for the interactive notebooks: thin wrappers around the plotting/cluster functions.

Each slider is a :class:`SliderView`: an ipywidgets ``IntSlider`` plus an ``Output`` area. Its
callback, :meth:`SliderView.update`, recomputes only what the slider changes and redraws the
same figure the notebook then draws statically. The callback is plain Python, so tests call it
headless (``view.update(5)`` or ``view.slider.value = 5``).

* :func:`component_slider` (02): number of PCA components → score maps and loadings (no
  recomputation: the PCA is truncated).
* :func:`n_clusters_slider` (03): number of GMM clusters → cluster map (GMM only is re-run).
* :func:`min_cluster_size_slider` (04): HDBSCAN min_cluster_size → cluster map, re-condensed
  from the stored single-linkage tree (no UMAP, no spanning tree).
"""
from __future__ import annotations

import numpy as np

from .plotting import plot_clusters, plot_pca_components, plot_spatial_prior
from .workflows import recluster_workflow2, regularised_at, workflow1


def settle_heap():
    """Collect garbage once, then freeze what is left out of the cyclic collector's reach.

    A kernel holding HyperSpy, dask, numba and a workflow result tracks about 400,000 objects;
    each full pass of Python's cyclic garbage collector walks all of them (0.2-0.5 s on our
    2-core machines) and falls at random into a slider move, where the re-clustering itself
    takes 0.05 s. ``gc.freeze`` (standard library) keeps later passes to the objects made
    after it. Each call first unfreezes and collects everything, so cyclic garbage among frozen
    objects lives at most until the next slider is built.
    """
    import gc
    gc.unfreeze()
    gc.collect()
    gc.freeze()


class SliderView:
    """An integer slider whose callback redraws a figure.

    Attributes
    ----------
    slider : ipywidgets.IntSlider
    output : ipywidgets.Output
    widget : ipywidgets.VBox (display this)
    last : whatever the callback returned last (e.g. the new result)
    calls : number of times the callback ran
    """

    def __init__(self, description, value, lo, hi, callback, step=1):
        import ipywidgets as w
        settle_heap()
        self._callback = callback
        self.slider = w.IntSlider(value=int(value), min=int(lo), max=int(hi), step=step,
                                  description=description, continuous_update=False,
                                  style={"description_width": "initial"},
                                  layout=w.Layout(width="480px"))
        self.output = w.Output()
        self.widget = w.VBox([self.slider, self.output])
        self.last = None
        self.calls = 0
        self.slider.observe(lambda change: self.update(change["new"]), names="value")
        self.update(self.slider.value)

    def update(self, value):
        """Run the callback for ``value`` and redraw (works without a browser)."""
        import matplotlib.pyplot as plt
        value = int(value)
        if self.slider.value != value:      # keeps slider and figure in step when called directly
            self.slider.value = value        # (the observer then calls update again)
            return self.last
        self.output.clear_output(wait=True)
        with self.output:
            self.last = self._callback(value)
            plt.show()
        self.calls += 1
        return self.last

    def _ipython_display_(self):
        from IPython.display import display
        display(self.widget)


def component_slider(pca_result, binned_shape, energy=None, mask=None, scale=None,
                     max_value=None):
    """Slider for the number of PCA components: redraws score maps and loadings.

    Parameters
    ----------
    pca_result : helpers.decompose.PCAResult
    binned_shape : (rows, cols) of the binned grid
    energy : keV of the feature channels (for the loading plots)
    mask : binned sample mask (vacuum blank in the score maps)
    """
    hi = max_value or min(12, pca_result.all_scores.shape[1])

    def draw(n):
        axes = plot_pca_components(pca_result, n, binned_shape, energy, mask, scale)
        print(f"{n} components")
        return {"n_components": n, "axes": axes, "result": pca_result.with_components(n)}

    return SliderView("PCA components", pca_result.n_components, 1, hi, draw)


def n_clusters_slider(signal, params=None, scale=None, lo=1, hi=8, value=None):
    """Slider for the number of GMM clusters: re-runs the mixture, redraws the cluster map.

    ``params`` (:class:`helpers.workflows.WorkflowParams`) are the other settings of
    :func:`helpers.workflows.workflow1` (the PCA is cached); ``value`` defaults to
    ``params.n_clusters``.
    """
    value = (params.n_clusters if params is not None else 4) if value is None else value

    def draw(k):
        r = workflow1(signal, params, n_clusters=k)
        plot_clusters(r, scale=scale)
        print(f"{r.n_clusters} clusters")
        return r

    return SliderView("N_CLUSTERS", value, lo, hi, draw)


def min_cluster_size_slider(result, scale=None, lo=None, hi=None):
    """Slider for HDBSCAN's min_cluster_size, re-clustering from the cached tree.

    Parameters
    ----------
    result : WorkflowResult of :func:`helpers.workflows.workflow2`
    lo, hi : slider range in binned pixels (default 5 .. 20 % of the sample pixels)
    """
    n = int(result.mask_binned.sum())
    lo = lo or min(5, n)
    hi = hi or max(lo + 1, int(0.2 * n))
    value = int(np.clip(result.params.get("min_cluster_size", lo), lo, hi))

    def draw(mcs):
        r = recluster_workflow2(result, mcs)
        plot_clusters(r, scale=scale)
        print(f"{r.n_clusters} clusters, noise {100 * r.noise_fraction:.0f} %")
        return r

    return SliderView("min_cluster_size (binned px)", value, lo, hi, draw)


def spatial_prior_slider(signal, result, scale=None, hi=6.0):
    """Slider for the Potts coupling beta of the spatial prior: redraws the per-pixel and the
    regularised cluster maps side by side (:func:`helpers.plotting.plot_spatial_prior`).

    ``result`` is a workflow result (its per-pixel labels are the starting point); the slider
    starts at the coupling estimated from the data (or 1.0 when the prior was off) and moves in
    steps of 0.25; 0 gives the per-pixel labels back.
    """
    import ipywidgets as w

    start = result.spatial.beta if result.spatial is not None else 1.0
    slider = w.FloatSlider(value=round(float(start) * 4) / 4, min=0.0, max=float(hi), step=0.25,
                           description="beta (coupling)", continuous_update=False,
                           style={"description_width": "initial"},
                           layout=w.Layout(width="480px"))
    out = w.Output()

    def draw(change=None):
        import matplotlib.pyplot as plt
        out.clear_output(wait=True)
        with out:
            reg = regularised_at(signal, result, slider.value)
            plot_spatial_prior(result, reg, scale=scale)
            print(f"beta = {slider.value:.2f}: {int(reg.n_clusters)} clusters")
            plt.show()

    slider.observe(draw, names="value")
    draw()
    return w.VBox([slider, out])

"""X-ray physics data: line energies and families (:mod:`.lines`) and Cliff-Lorimer k-factors
with the choice of each element's quantification line (:mod:`.kfactors`).

The lowest layer above :mod:`helpers.errors`: the simulator, the loader, the maps, the
preprocessing and the quantification all read lines and k-factors from here.
"""
from .kfactors import (DEFAULT_TABLE, K_LINE_MAX_KEV, KFactor, choose_line,  # noqa: F401
                       defaulted_elements, load_kfactors, read_kfactor_csv)
from .lines import (at_to_wt, family_lines, line_energy,  # noqa: F401
                    xray_line_positions)

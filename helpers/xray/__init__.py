"""X-ray physics data: line energies and families (:mod:`.lines`), Cliff-Lorimer k-factor
tables (:mod:`.kfactors`), the standardless k-factor model (:mod:`.model`, built on
:mod:`.ionisation`, :mod:`.atomic` and :mod:`.detector`), and the choice of each element's
line and k-factor at any beam energy (:mod:`.choice`).

The lowest layer above :mod:`helpers.errors`: the simulator, the loader, the maps, the
preprocessing and the quantification all read lines and k-factors from here.
"""
from .choice import choose_line, resolve_kfactor  # noqa: F401
from .kfactors import (DEFAULT_TABLE, K_LINE_MAX_KEV, KFactor, defaulted_elements,  # noqa: F401
                       load_kfactors, read_kfactor_csv)
from .lines import (at_to_wt, family_lines, line_energy,  # noqa: F401
                    xray_line_positions)

"""The nowcast's expanding percentiles, taken for many prefixes at once, are numpy's own."""

from __future__ import annotations

import numpy as np
import pytest

from lookback_gui.core.nowcast import _prefix_percentiles


@pytest.mark.parametrize("seed", range(20))
def test_prefix_percentiles_are_numpys_to_the_last_bit(seed):
    rng = np.random.default_rng(seed)
    values = rng.standard_normal(int(rng.integers(1, 400))) * 10.0 ** rng.integers(-3, 4)
    if seed % 3 == 0:
        values = np.round(values, 1)  # ties
    lengths = np.unique(rng.integers(1, len(values) + 1, size=10))
    edges = ((1 - 0.8) / 2 * 100, (1 + 0.8) / 2 * 100)
    ours = _prefix_percentiles(values, lengths, edges)
    for row, m in enumerate(lengths):
        assert ours[row].tolist() == np.percentile(values[:m], edges).tolist()

"""The advisor as it was before its reads became set-based: every revision and every value read
into numpy (copied from lookback_gui/core, unchanged but for imports). The oracle of
tests/test_advisor_oracle.py: on small stores the set-based advisor must answer the same."""

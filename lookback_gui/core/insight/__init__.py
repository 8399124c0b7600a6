"""What the product infers from the store's facts, and how far to trust it (DESIGN).

- ``settling``: each value's versions read as a revision triangle;
- ``development``: the development model (chain ladder, Mack's intervals) built on it;
- ``backtest``: the development model replayed on the stored history;
- ``nowcast``: the value a provisional bucket is expected to settle at, with its interval;
- ``advisor`` and ``policies``: how late a metric's data arrives, and pull policies tried on its
  history; ``recommendation``: the lookback (and audit) the advisor recommends;
- ``vintages``: every bucket's value as it was known on each date;
- ``alerts``: alert rules judged after every run (thresholds on values or on the nowcast);
- ``additivity``: whether a measure's series may be summed.

Reads the store and the project; never pulls, never schedules (``pull`` and ``schedule`` call it).
"""

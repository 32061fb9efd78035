"""Small real data sets shipped with gamstore (from R's ``datasets`` package).

* :func:`airquality` - New York air quality, May to September 1973 (153 rows, 44 with a
  missing ``Ozone`` or ``Solar.R``); ``Month`` is a string column (``"May"`` ...).
* :func:`co2` - CO2 uptake of 12 grass plants (84 rows); ``Type`` and ``Treatment`` are
  categories in R's level order, ``Plant`` is the subject.

The CSV files are written by R (``write.csv``, missing values as empty cells).
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import pandas as pd

__all__ = ["airquality", "co2", "path"]


def path(name: str) -> Path:
    """Path of a shipped CSV file (``"airquality"`` or ``"co2"``)."""
    if name not in ("airquality", "co2"):
        raise ValueError(f"name: expected 'airquality' or 'co2', got {name!r}")
    return Path(str(resources.files(__name__).joinpath(f"{name}.csv")))


def airquality() -> pd.DataFrame:
    """R's ``airquality`` with ``Month`` as its abbreviation (a string, so a factor).

    Returns
    -------
    pandas.DataFrame
        Columns Ozone, Solar.R, Wind, Temp (float, NaN where R has NA), Month, Day.
    """
    frame = pd.read_csv(path("airquality"))
    for col in ("Ozone", "Solar.R", "Wind", "Temp"):
        frame[col] = frame[col].astype("float64")
    return frame


def co2() -> pd.DataFrame:
    """R's ``CO2`` with ``Type`` and ``Treatment`` as categories in R's level order.

    Returns
    -------
    pandas.DataFrame
        Columns Plant (str), Type (Quebec, Mississippi), Treatment (nonchilled, chilled),
        conc, uptake.
    """
    frame = pd.read_csv(path("co2"))
    frame["Type"] = pd.Categorical(frame["Type"], categories=["Quebec", "Mississippi"])
    frame["Treatment"] = pd.Categorical(frame["Treatment"], categories=["nonchilled", "chilled"])
    return frame

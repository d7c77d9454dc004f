"""A table's columns as a fit takes them, or one error naming the column, the row and the
value that is wrong (by its line in the CSV file, where the table came from one)."""

from __future__ import annotations

import csv
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

Line = Callable[[int], str]  # a row's position in the table -> where it is, in words

TRUE = frozenset({"true"})  # besides the number 1
FALSE = frozenset({"false"})  # besides the number 0


def rows_of_frame(position: int) -> str:
    return f"row {position}"


def lines_of_csv(path: str | Path) -> Line:
    """Where each row of ``pandas.read_csv(path)`` is in the file: ``line N`` (the line
    its record starts on; the header is line 1). The file is read again, only when a
    row must be named."""
    starts: list[int] = []

    def line(position: int) -> str:
        if not starts:
            try:
                with open(path, newline="", encoding="utf-8-sig", errors="replace") as f:
                    reader = csv.reader(f)
                    previous = 0
                    for record in reader:
                        # pandas skips blank lines, and lines of only spaces, as rows
                        if record and not (len(record) == 1 and not record[0].strip()):
                            starts.append(previous + 1)
                        previous = reader.line_num
            except (OSError, csv.Error):
                starts.append(-1)
        if starts[0] == -1 or position + 1 >= len(starts):
            return f"row {position + 1} after the header"  # the file changed or is unusual
        return f"line {starts[position + 1]}"  # starts[0] is the header

    return line


@dataclass(frozen=True)
class Columns:
    x: np.ndarray  # (rows,) for one column of x, else (rows, columns)
    y: np.ndarray
    fitted: np.ndarray | None  # rows to fit (True) or hold out (False), from a column
    groups: np.ndarray | None


def _bad(frame: pd.DataFrame, column: str, position: int, line: Line,
         wanted: str) -> ValueError:
    value: Any = frame[column].iloc[position]
    value = value.item() if isinstance(value, np.generic) else value
    shown = "a missing value (an empty, NaN or NA cell)" if pd.isna(value) else repr(value)
    return ValueError(f"column {column!r}, {line(position)}: {wanted}, got {shown}")


def _positive(frame: pd.DataFrame, column: str, line: Line, role: str) -> np.ndarray:
    """The column as floats, each finite and > 0 (a scaling law is fitted in log space)."""
    values = pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype=float)
    bad = ~(np.isfinite(values) & (values > 0))  # NaN compares False
    if np.any(bad):
        raise _bad(frame, column, int(np.flatnonzero(bad)[0]), line,
                   f"{role} must be a finite number > 0 (scaling laws are fitted in log "
                   "space)")
    return values


def _flags(frame: pd.DataFrame, column: str, line: Line) -> np.ndarray:
    """The holdout column as booleans: 1/true fits the row, 0/false holds it out."""
    raw = frame[column]
    if pd.api.types.is_bool_dtype(raw) and not raw.isna().any():
        return raw.to_numpy(dtype=bool)
    words = raw.astype(str).str.strip().str.lower()
    numbers = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=float)  # True is 1
    fit = words.isin(TRUE).to_numpy() | (numbers == 1)
    hold = words.isin(FALSE).to_numpy() | (numbers == 0)
    bad = ~(fit | hold) | raw.isna().to_numpy()
    if np.any(bad):
        raise _bad(frame, column, int(np.flatnonzero(bad)[0]), line,
                   "a holdout column holds 1 or true (fit the row) or 0 or false "
                   "(hold it out)")
    return fit


def columns(frame: pd.DataFrame, x: Sequence[str], y: str, *,
            holdout_column: str | None = None, group: str | None = None,
            line: Line = rows_of_frame) -> Columns:
    """x, y, the rows to fit and the groups, from ``frame``'s columns; every row checked
    alike (whatever the form, and whichever rows the fit will see), or a ValueError
    naming the column, where the row is (``line``) and the value."""
    for column in [*x, y, *(c for c in (holdout_column, group) if c)]:
        if column not in frame.columns:
            raise ValueError(f"no column {column!r}; the table has {list(frame.columns)}")
    xs = np.column_stack([_positive(frame, c, line, "x") for c in x])
    ys = _positive(frame, y, line, "y")
    fitted = None if holdout_column is None else _flags(frame, holdout_column, line)
    groups = None
    if group is not None:
        missing = frame[group].isna().to_numpy()
        if np.any(missing):
            raise _bad(frame, group, int(np.flatnonzero(missing)[0]), line,
                       "every row needs a group label")
        groups = frame[group].to_numpy()
    return Columns(xs[:, 0] if len(x) == 1 else xs, ys, fitted, groups)

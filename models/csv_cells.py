"""CSV plumbing shared by the contract readers: open a table, check cells, name the bad one.

Rows are counted as a spreadsheet shows them (the header is row 1); blank lines are skipped but
still counted, so an ``InputError`` names the right line of the file.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from models.errors import InputError

HOUR = pd.Timedelta(hours=1)
ISO_DATE = r"\d{4}-?\d{1,2}-?\d{1,2}"  # pandas' ISO8601 parser also takes "now" and "today"


# --------------------------------------------------------------------------- files and tables


@dataclass
class CsvTable:
    """The wanted columns of a CSV file, with the file line of each row still in play."""

    path: Path
    names: dict[str, str]  # stripped column name -> name as written in the header
    frame: pd.DataFrame  # every data line, blank ones included, columns by stripped name
    lines: np.ndarray  # file line (1-based) of each row still in play
    kept: np.ndarray  # position in ``frame`` of each row still in play

    @property
    def file(self) -> str:
        return str(self.path)

    def error(self, i: int, column: str | None, message: str) -> InputError:
        return InputError(self.file, message, row=int(self.lines[i]), column=column)

    def drop_blank(self, blank: np.ndarray) -> np.ndarray:
        """Forget the blank rows; returns the mask of rows kept (the file must keep one)."""
        keep = ~blank
        self.lines, self.kept = self.lines[keep], self.kept[keep]
        if len(self.lines) == 0:
            raise InputError(self.file, "the file has a header but no data rows")
        return keep

    def texts(self, column: str) -> np.ndarray:
        """The stripped cells of ``column`` as text, for the rows in play (read again if needed)."""
        series = self.frame[column]
        if not pd.api.types.is_string_dtype(series) or isinstance(series.dtype, pd.CategoricalDtype):
            raw = self.names[column]
            series = read(self.path, usecols=[raw], dtype={raw: str}, keep_default_na=False)[raw]
        return series.fillna("").astype(str).str.strip().to_numpy(dtype=object)[self.kept]


def existing_file(path: str | Path) -> Path:
    file = Path(path)
    if not file.exists():
        raise InputError(str(path), "the file does not exist")
    if not file.is_file():
        raise InputError(str(path), "the path is not a file")
    if file.stat().st_size == 0:
        raise InputError(str(path), "the file is empty")
    return file


def read(path: Path, **options: Any) -> pd.DataFrame:
    """``pd.read_csv`` with blank lines kept (so row i is file line i + 2) and errors as InputError."""
    try:
        return pd.read_csv(path, skip_blank_lines=False, encoding="utf-8-sig", compression="infer", **options)
    except pd.errors.EmptyDataError:
        raise InputError(str(path), "the file is empty") from None
    except pd.errors.ParserError as exc:
        raise csv_syntax_error(str(path), str(exc)) from None
    except UnicodeDecodeError:
        raise InputError(str(path), "the file is not UTF-8 text") from None
    except (OSError, EOFError) as exc:  # a damaged .gz file
        raise InputError(str(path), f"the file could not be read ({exc})") from None


def csv_syntax_error(file: str, text: str) -> InputError:
    unclosed = re.search(r"EOF inside string starting at row (\d+)", text)
    if unclosed:  # pandas counts this row from 0
        return InputError(file, "a quoted cell is never closed", row=int(unclosed.group(1)) + 1)
    line = re.search(r"line (\d+)", text)
    detail = text.split("error: ")[-1].strip()
    return InputError(file, f"the file is not valid CSV ({detail})", row=int(line.group(1)) if line else None)


def open_csv(path: str | Path, required: tuple[str, ...], optional: tuple[str, ...] = (), **options: Any) -> CsvTable:
    """Read the required and optional columns (options keyed by stripped column name)."""
    file = existing_file(path)
    names: dict[str, str] = {}
    for raw in read(file, nrows=0).columns:
        names.setdefault(str(raw).strip(), raw)
    for column in required:
        if column not in names:
            found = ", ".join(repr(n) for n in names) or "no columns"
            message = f"the required column '{column}' is missing (the header has {found})"
            raise InputError(str(path), message, row=1, column=column)
    wanted = [c for c in (*required, *optional) if c in names]
    by_raw = {
        key: {names[c]: v for c, v in value.items() if c in names} if isinstance(value, dict) else value
        for key, value in options.items()
    }
    frame = read(file, usecols=[names[c] for c in wanted], **by_raw)
    frame = frame.rename(columns={names[c]: c for c in wanted})
    positions = np.arange(len(frame))
    return CsvTable(file, names, frame, positions + 2, positions)


def open_text_csv(
    path: str | Path, required: tuple[str, ...], optional: tuple[str, ...] = ()
) -> tuple[CsvTable, dict[str, np.ndarray]]:
    """A small CSV as stripped text cells, blank rows dropped."""
    csv = open_csv(path, required, optional, dtype={c: str for c in (*required, *optional)}, keep_default_na=False)
    cells = {c: csv.texts(c) for c in csv.frame.columns}
    keep = csv.drop_blank(np.logical_and.reduce([cells[c] == "" for c in cells]))
    return csv, {c: v[keep] for c, v in cells.items()}


# --------------------------------------------------------------------------- cell checks


def raise_first(csv: CsvTable, column: str | None, bad: np.ndarray, message: Callable[[int], str]) -> None:
    if bad.any():
        i = int(np.argmax(bad))
        raise csv.error(i, column, message(i))


def require_text(csv: CsvTable, column: str, texts: np.ndarray) -> None:
    raise_first(csv, column, texts == "", lambda i: f"{column} is empty")


def parse_numbers(
    csv: CsvTable,
    column: str,
    texts: np.ndarray,
    *,
    strict: bool = False,
    whole: bool = False,
    rows: np.ndarray | None = None,
) -> np.ndarray:
    """Parse texts as finite numbers >= 0 (> 0 if ``strict``); only ``rows`` are checked."""
    values = pd.to_numeric(pd.Series(texts, dtype=object), errors="coerce").to_numpy(dtype=float)
    with np.errstate(invalid="ignore"):
        ok = np.isfinite(values) & ((values > 0) if strict else (values >= 0))
        if whole:
            ok &= values == np.round(values)
    if rows is not None:
        ok |= ~rows
    raise_first(csv, column, ~ok, lambda i: number_problem(column, texts[i], strict, whole))
    return values


def number_problem(column: str, text: str, strict: bool, whole: bool) -> str:
    if text == "":
        return f"{column} is empty"
    value = pd.to_numeric(pd.Series([text], dtype=object), errors="coerce").iloc[0]
    if np.isnan(value) and text.lstrip("+-").lower() != "nan":
        return f"{column} '{text}' is not a number"
    if not np.isfinite(value):
        return f"{column} must be a finite number, got '{text}'"
    if whole and value != round(value):
        return f"{column} must be a whole number, got {text}"
    return f"{column} must be {'>' if strict else '>='} 0, got {text}"


def parse_hours(texts: np.ndarray) -> tuple[pd.DatetimeIndex, np.ndarray]:
    """Parse ISO 8601 texts as UTC (naive means UTC, offsets are converted).

    Returns the times and the mask of texts that are not the start of an hour in UTC.
    """
    index = pd.Index(texts, dtype=object)
    iso = np.asarray(pd.Series(texts, dtype=object).str.match(ISO_DATE), dtype=bool)
    times = pd.to_datetime(index.where(iso, ""), format="ISO8601", utc=True, errors="coerce")
    bad = np.asarray(times.isna() | (times != times.floor("h")), dtype=bool)
    return times, bad


def hour_problem(column: str, text: str) -> str:
    if text == "":
        return f"{column} is empty"
    times, _ = parse_hours(np.array([text], dtype=object))
    if pd.isna(times[0]):
        return f"{column} '{text}' is not an ISO 8601 timestamp"
    return f"{column} '{text}' is not the start of an hour in UTC"


def parse_times(csv: CsvTable, column: str, texts: np.ndarray) -> pd.DatetimeIndex:
    times, bad = parse_hours(texts)
    raise_first(csv, column, bad, lambda i: hour_problem(column, texts[i]))
    return times


def category_codes(csv: CsvTable, column: str) -> tuple[np.ndarray, np.ndarray]:
    """Codes and distinct stripped texts of a column read as categorical (missing cells read as "").

    read_csv turns categories that all look numeric or boolean ("00", "true") into numbers or
    booleans; such a column is read again as text, the slow path.
    """
    series = csv.frame[column]
    if not pd.api.types.is_string_dtype(series.cat.categories.dtype):
        codes, uniques = pd.factorize(pd.Series(csv.texts(column), dtype=object))
        return codes, np.asarray(uniques, dtype=object)
    categories = [str(c).strip() for c in series.cat.categories] + [""]
    codes = series.cat.codes.to_numpy().astype(np.int64)
    codes[codes < 0] = len(categories) - 1
    remap, uniques = pd.factorize(pd.Series(categories, dtype=object))
    return remap[codes], np.asarray(uniques, dtype=object)


def normalized(text: str) -> str:
    return re.sub(r"[\s\-]+", "_", text.strip().lower())



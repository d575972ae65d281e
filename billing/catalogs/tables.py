"""Reading provider CSV files as text cells, with the file line of every row kept for error messages.

Rows are counted as a spreadsheet shows them (line 1 is the first line of the file, preamble
included), so an ``InputError`` names the line a user finds in an editor.
"""

from __future__ import annotations

import csv
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from models.csv_cells import csv_syntax_error, existing_file
from models.errors import InputError

CHUNK_ROWS = 200_000  # full offer files run to millions of rows: filter them chunk by chunk


@dataclass
class Table:
    """The wanted columns of the kept rows of a CSV file, as stripped text."""

    path: Path
    frame: pd.DataFrame
    lines: np.ndarray  # file line of each row of ``frame``

    @property
    def file(self) -> str:
        return str(self.path)

    def error(self, i: int, column: str | None, message: str) -> InputError:
        return InputError(self.file, message, row=int(self.lines[i]), column=column)

    def numbers(self, column: str, rows: np.ndarray | None = None, what: str | None = None) -> np.ndarray:
        """Cells of ``column`` as finite numbers >= 0; the first bad cell among ``rows`` raises."""
        texts = self.frame[column].to_numpy(dtype=object)
        values = pd.to_numeric(pd.Series(texts, dtype=object), errors="coerce").to_numpy(dtype=float)
        with np.errstate(invalid="ignore"):
            bad = ~(np.isfinite(values) & (values >= 0))
        if rows is not None:
            bad &= rows
        if bad.any():
            i = int(np.argmax(bad))
            text = texts[i]
            problem = "is empty" if text == "" else f"'{text}' is not a number >= 0"
            raise self.error(i, column, f"{what or column} {problem}")
        return values


def first_lines(path: Path, count: int) -> list[list[str]]:
    """The first ``count`` lines parsed as CSV (fewer when the file is shorter)."""
    try:
        with open(path, encoding="utf-8-sig", newline="") as handle:
            reader = csv.reader(handle)
            return [row for _, row in zip(range(count), reader)]
    except UnicodeDecodeError:
        raise InputError(str(path), "the file is not UTF-8 text") from None
    except csv.Error as exc:
        raise InputError(str(path), f"the file is not valid CSV ({exc})") from None


def find_header(path: Path, first_cell: str, within: int = 20) -> tuple[int, dict[str, str]]:
    """Line of the header row (whose first cell is ``first_cell``) and the preamble's key-value pairs."""
    rows = first_lines(path, within)
    for k, row in enumerate(rows):
        if row and row[0].strip() == first_cell:
            preamble = {r[0].strip(): r[1].strip() for r in rows[:k] if len(r) >= 2}
            return k + 1, preamble
    raise InputError(str(path), f"no header row starting with '{first_cell}' in the first {within} lines", row=1)


def read_table(
    path: str | Path,
    required: tuple[str, ...],
    optional: tuple[str, ...] = (),
    header: int = 1,
    keep: Callable[[pd.DataFrame], np.ndarray] | None = None,
) -> Table:
    """Read the columns wanted from a CSV whose header is on line ``header``.

    ``keep`` filters each chunk as it is read (it sees the cells unstripped); the rows kept are
    returned stripped, with their file lines.
    """
    file = existing_file(path)
    names = [c.strip() for c in first_lines(file, header)[header - 1]] if header else []
    for column in required:
        if column not in names:
            raise InputError(str(path), f"the required column '{column}' is missing", row=header, column=column)
    positions = sorted({names.index(c) for c in (*required, *optional) if c in names})
    wanted = [names[p] for p in positions]  # read_csv returns usecols in file order
    parts, lines, offset = [], [], 0
    try:
        chunks = pd.read_csv(
            file, skiprows=header - 1, header=0, usecols=positions, dtype=str, keep_default_na=False,
            skip_blank_lines=False, encoding="utf-8-sig", chunksize=CHUNK_ROWS,
        )
        for chunk in chunks:
            chunk = chunk.set_axis(wanted, axis=1) if list(chunk.columns) != wanted else chunk
            chunk = chunk.fillna("")
            mask = np.ones(len(chunk), dtype=bool) if keep is None else np.asarray(keep(chunk), dtype=bool)
            parts.append(chunk[mask])
            lines.append(header + 1 + offset + np.flatnonzero(mask))
            offset += len(chunk)
    except pd.errors.ParserError as exc:
        raise csv_syntax_error(str(path), str(exc)) from None
    except UnicodeDecodeError:
        raise InputError(str(path), "the file is not UTF-8 text") from None
    frame = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=wanted)
    frame = frame.apply(lambda s: s.str.strip()) if len(frame) else frame
    return Table(file, frame.reset_index(drop=True), np.concatenate(lines) if lines else np.zeros(0, dtype=int))

"""Errors about user input that say where the problem is and what to do."""

from __future__ import annotations


class InputError(ValueError):
    """Bad input in a file: names the file, the 1-based data row and the column.

    ``row`` counts lines of the file as a spreadsheet shows them (the header is row 1,
    the first data row is row 2); ``None`` when the problem is the whole file or column.
    """

    def __init__(self, file: str, message: str, row: int | None = None, column: str | None = None):
        self.file = str(file)
        self.row = row
        self.column = column
        self.message = message
        super().__init__(str(self))

    def __str__(self) -> str:
        where = self.file
        if self.row is not None:
            where += f", row {self.row}"
        if self.column is not None:
            where += f", column '{self.column}'"
        return f"{where}: {self.message}"


class PlanningError(RuntimeError):
    """The planner could not produce a plan (solver failure, inconsistent data)."""

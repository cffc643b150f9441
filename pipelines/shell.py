"""Interactive SQL stage: a read-only shell on the warehouse, on `cdr sql`'s confined connection and checks.

Every statement goes through `pipelines.sql.run_query`, so the shell refuses and reads exactly
what `cdr sql` does. Piped input runs every statement and exits with the worst error's code.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import suppress
from pathlib import Path
from typing import TextIO

import duckdb

from pipelines.errors import CdrError, UsageError, clip, one_line, one_of
from pipelines.masking import Masking, mask_numbers
from pipelines.sql import FORMATS, WRITERS, connect_read_only, run_query, write_table

PROMPT = "cdr> "
CONTINUATION = "...> "
HELP = """\
SQL statements end with ; and may span lines (read-only, as with `cdr sql`);
a dot command runs to the end of its line, also after statements (select 1; .tables).
.tables              list the warehouse's tables and views
.schema [NAME]       show the CREATE statement of every table and view, or of NAME
.mode [table|csv|json]  set (or show) how results print
.help                this text
.quit, .exit         leave (or Ctrl-D); Ctrl-C drops the statement being typed or stops a running one"""
_TABLE_SEE_ALL = "use .mode csv or json"
_STOPPED = "interrupted: the statement stopped"
_RELATIONS = (
    "select name, sql from ("
    " select table_name as name, sql from duckdb_tables() where database_name = current_database()"
    " union all"
    " select view_name, sql from duckdb_views() where database_name = current_database() and not internal"
    ") order by name"
)


class Shell:
    """One session on a confined connection: statements and dot commands in, results and one-line errors out."""

    def __init__(
        self, con: duckdb.DuckDBPyConnection, *, masking: Masking | None, stdout: TextIO, stderr: TextIO
    ) -> None:
        self.con, self.masking, self.stdout, self.stderr = con, masking, stdout, stderr
        self.mode = "table"
        self.buffer = ""
        self.worst = 0

    @property
    def prompt(self) -> str:
        """The prompt for the next line: a fresh statement's, or a continuation's."""
        return CONTINUATION if self.buffer else PROMPT

    def feed(self, line: str) -> bool:
        """One input line -> handled (statements once their `;` is typed, then any dot command) -> False on .quit."""
        sql, dot = split_dot_command(self.buffer + (line if line.endswith("\n") else line + "\n"))
        if dot is None and not statement_complete(sql):
            self.buffer = sql if sql.strip() else ""
            return True
        self.buffer = ""
        self._run_all(sql)
        return True if dot is None else self._dot(dot.strip())

    def finish(self) -> None:
        """The end of piped input: a statement left without its `;` is an error, not silently dropped."""
        if self.buffer.strip():
            self._fail(UsageError("the input ended inside a statement: end it with ;"))
        self.buffer = ""

    def cancel(self) -> None:
        """Ctrl-C at the prompt: the statement being typed is dropped."""
        self.buffer = ""

    def _run_all(self, text: str) -> None:
        """Whole statements (or none: comments, blanks), each run in turn."""
        try:
            statements = duckdb.extract_statements(text)
        except duckdb.Error as exc:
            self._fail(CdrError(one_line(exc)))
            return
        for statement in statements:
            self._run(statement.query)

    def _run(self, query: str) -> None:
        """One statement, run and printed on a worker thread: the main thread stays free to take Ctrl-C
        and interrupt DuckDB at once (DuckDB's own check of the signal misses one that comes early)."""
        outcome: list[BaseException] = []

        def work() -> None:
            try:
                result = run_query(self.con, query, masking=self.masking)
                if self.mode == "table":
                    write_table(result, self.stdout, see_all=_TABLE_SEE_ALL)
                else:
                    WRITERS[self.mode](result, self.stdout)
            except BaseException as exc:  # handed to the main thread, which reports it
                outcome.append(exc)

        worker = threading.Thread(target=work, name="cdr-shell-query", daemon=True)
        worker.start()
        try:
            while worker.is_alive():
                worker.join(0.1)
        except KeyboardInterrupt:
            self.con.interrupt()
            worker.join()
            outcome.clear()
            self._wait_until_free()
            self._fail(CdrError(_STOPPED))
            return
        if outcome and isinstance(outcome[0], CdrError):
            self._fail(outcome[0])
        elif outcome:
            raise outcome[0]

    def _wait_until_free(self, timeout: float = 30.0) -> None:
        """After an interrupt, DuckDB may still hold the connection while the stopped query unwinds, and
        it refuses a call meanwhile rather than waiting: wait here, so the next statement runs."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.con.execute("select 1").fetchall()
                return
            except duckdb.Error as exc:
                if "busy" not in str(exc) or time.monotonic() > deadline:
                    return
                time.sleep(0.05)

    def _dot(self, line: str) -> bool:
        command, _, argument = line.partition(" ")
        argument = argument.strip()
        if command in (".quit", ".exit"):
            return False
        if command == ".help":
            print(HELP, file=self.stdout)
        elif command == ".mode":
            self._mode(argument)
        elif command == ".tables":
            self._tables()
        elif command == ".schema":
            self._schema(argument)
        else:
            self._fail(UsageError(f"unknown command {clip(command)}: see .help"))
        return True

    def _mode(self, argument: str) -> None:
        if not argument:
            print(self.mode, file=self.stdout)
        else:
            try:
                self.mode = one_of(argument, FORMATS, ".mode")
            except UsageError as exc:
                self._fail(exc)

    def _relations(self) -> list[tuple[str, str]]:
        return [(str(name), str(sql)) for name, sql in self.con.execute(_RELATIONS).fetchall()]

    def _tables(self) -> None:
        names = [name for name, _ in self._relations()]
        width = max(map(len, names), default=0) + 2
        per_row = max(1, 100 // width) if width else 1
        for start in range(0, len(names), per_row):
            print("".join(name.ljust(width) for name in names[start : start + per_row]).rstrip(), file=self.stdout)

    def _schema(self, name: str) -> None:
        chosen = [sql for relation, sql in self._relations() if not name or relation.lower() == name.lower()]
        if not chosen:
            self._fail(UsageError(f"no table or view named {clip(name)}: see .tables"))
        for sql in chosen:
            print(sql.rstrip().rstrip(";") + ";", file=self.stdout)

    def _fail(self, exc: CdrError) -> None:
        print(f"error: {exc}", file=self.stderr)
        self.stderr.flush()
        self.worst = max(self.worst, exc.exit_code)


def split_dot_command(text: str) -> tuple[str, str | None]:
    """Input text -> (the SQL before its dot command, the dot command to the end of its line, or None).

    A dot command stands where a statement may begin, comments aside: at the start of the input or
    after a `;` (`select 1; .tables` runs the query, then lists the tables). Anywhere else a `.` is SQL's.
    """
    try:
        tokens = duckdb.tokenize(text)
    except duckdb.Error:
        return text, None
    ends = [offset for offset, _ in tokens[1:]] + [len(text)]
    may_begin = True
    for (offset, kind), end in zip(tokens, ends):
        if kind == duckdb.token_type.comment:
            continue
        if may_begin and text.startswith(".", offset):
            return text[:offset], text[offset:]
        may_begin = kind == duckdb.token_type.operator and text[offset:end].strip().endswith(";")
    return text, None


def statement_complete(text: str) -> bool:
    """SQL text -> whether it ends a statement: its last token, comments aside, is a `;` (not one in a string)."""
    try:
        tokens = duckdb.tokenize(text)
    except duckdb.Error:
        return False
    ends = [offset for offset, _ in tokens[1:]] + [len(text)]
    for (offset, kind), end in reversed(list(zip(tokens, ends))):
        if kind == duckdb.token_type.comment:
            continue
        return kind == duckdb.token_type.operator and text[offset:end].strip().endswith(";")
    return False


def run_shell(
    warehouse: Path,
    *,
    masked: bool = False,
    stdin: TextIO | None = None,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
    read_line: Callable[[str], str] | None = None,
) -> int:
    """A warehouse -> an interactive read-only session on it until .quit or end of input -> the exit code.

    At a terminal (or with `read_line`, which takes a prompt like `input`), errors only
    print and the code is 0; from a pipe, it is the worst error's code.
    """
    stdin, stdout, stderr = stdin or sys.stdin, stdout or sys.stdout, stderr or sys.stderr
    con = connect_read_only(warehouse)
    try:
        shell = Shell(con, masking=mask_numbers(con) if masked else None, stdout=stdout, stderr=stderr)
        interactive = read_line is not None or stdin.isatty()
        if not interactive:
            for line in stdin:
                if not shell.feed(line):
                    break
            shell.finish()
            return shell.worst
        if read_line is None:
            read_line = _terminal_reader()
        masking = "; phone numbers masked" if masked else ""
        print(f"cdr shell on {warehouse} (read-only{masking}). .help for help, .quit or Ctrl-D to leave.", file=stdout)
        for line in _lines(shell, read_line, stdout):
            if not shell.feed(line):
                break
        return 0
    finally:
        con.close()


def _lines(shell: Shell, read_line: Callable[[str], str], stdout: TextIO) -> Iterator[str]:
    """Lines typed at the prompt until Ctrl-D; Ctrl-C drops the statement being typed."""
    while True:
        try:
            yield read_line(shell.prompt)
        except KeyboardInterrupt:
            print("^C", file=stdout)
            shell.cancel()
        except EOFError:
            print(file=stdout)
            return


def _terminal_reader() -> Callable[[str], str]:
    """`input`, with line editing and history from readline where Python has it."""
    with suppress(ImportError):
        import readline  # noqa: F401  (importing it is what gives input() editing and history)
    return input

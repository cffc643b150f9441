"""README.md says what the code does: the configuration (and .env.example) is the one pipelines/settings.py
reads, every `cdr` command it shows is one the `cdr` parser accepts, and the files, fields and paths it
names are the code's."""

from __future__ import annotations

import functools
import re
import shlex
from pathlib import Path

import pytest
import typer

from pipelines.settings import Settings

ROOT = Path(__file__).resolve().parents[1]


def _alias_defaults() -> dict[str, object]:
    """Each setting's environment variable -> its default value."""
    return {field.alias: field.default for field in Settings.model_fields.values() if field.alias}


def _same(documented: str, default: object) -> bool:
    if default is None:
        return documented in ("", "—")
    if isinstance(default, bool):
        return documented.lower() == str(default).lower()
    if isinstance(default, float):
        return float(documented) == default
    if isinstance(default, Path):
        return Path(documented) == default
    return documented == str(default)


def _readme_rows() -> dict[str, str]:
    """The README's configuration table: variable -> documented default."""
    text = (ROOT / "README.md").read_text()
    section = text.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    rows: dict[str, str] = {}
    for line in section.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) < 3 or not cells[0].startswith("`"):
            continue
        names = re.findall(r"`([A-Z][A-Z0-9_]+)`", cells[0])
        defaults = re.findall(r"`([^`]*)`", cells[1]) or [cells[1].split(" ")[0]]
        if len(defaults) == 1:
            defaults *= len(names)
        rows.update(zip(names, defaults, strict=True))
    return rows


def _readme_ranges() -> dict[str, str]:
    """The README's "Allowed ranges" paragraph: variable -> its range as written (`1–64`, `above 0 to 3600`)."""
    text = (ROOT / "README.md").read_text()
    paragraph = " ".join(text.split("Allowed ranges:", 1)[1].split("\n`OPENTACT_API_KEY` must", 1)[0].split())
    ranges: dict[str, str] = {}
    for names, bounds in re.findall(r"((?:`[A-Z0-9_]+`(?: and )?)+) ((?:above )?\d+(?:–| to )\d+)", paragraph):
        ranges.update(dict.fromkeys(re.findall(r"`([A-Z0-9_]+)`", names), bounds))
    return ranges


def _env_example() -> dict[str, str]:
    values = {}
    for line in (ROOT / ".env.example").read_text().splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.partition("=")
            values[name.strip()] = value.strip()
    return values


@pytest.mark.parametrize("alias", sorted(_alias_defaults()))
def test_every_setting_is_documented_with_its_default(alias: str) -> None:
    default = _alias_defaults()[alias]
    readme, example = _readme_rows(), _env_example()
    assert alias in readme, f"{alias} missing from the README's configuration table"
    assert _same(readme[alias], default), f"README says {alias} defaults to {readme[alias]!r}, settings say {default!r}"
    assert alias in example, f"{alias} missing from .env.example"
    assert _same(example[alias], default), f".env.example sets {alias}={example[alias]!r}, settings default to {default!r}"


def test_nothing_documented_that_settings_do_not_read() -> None:
    known = set(_alias_defaults())
    assert set(_readme_rows()) <= known
    assert set(_env_example()) <= known


# -- the README's commands are the ones the `cdr` parser accepts ---------------------------------

_PLACEHOLDERS = ("…", "...")
_SEPARATORS = ("&&", "||", ";", "|", "&")
_REDIRECTS = ("<", ">", ">>")


def _readme() -> str:
    return (ROOT / "README.md").read_text()


def _section(title: str) -> str:
    """A `## title` section of the README, up to the next `## `."""
    return _readme().split(f"\n{title}\n", 1)[1].split("\n## ", 1)[0]


@functools.cache
def _cdr():
    """The `cdr` console script's click command."""
    from typer.main import get_command

    from cdr_app.cli import app

    return get_command(app)


@functools.cache
def _leaf_paths() -> tuple[tuple[str, ...], ...]:
    """Every runnable `cdr` command -> its words after `cdr`."""
    def walk(command, path: tuple[str, ...]):
        commands = getattr(command, "commands", None)
        if not commands:
            yield path
        for name, sub in (commands or {}).items():
            yield from walk(sub, (*path, name))
    return tuple(walk(_cdr(), ()))


def _resolve(argv: list[str]):
    """argv after `cdr` -> (the command it names, its name, the parent context `cdr` gives it, its arguments)."""
    command, context, rest, name = _cdr(), None, list(argv), "cdr"
    while True:
        commands = getattr(command, "commands", None)
        if not commands or not rest or rest[0].startswith("-"):
            return command, name, context, rest
        # The parents' context settings (`-h` for `--help`) reach the subcommand as they do when `cdr` runs.
        context = command.context_class(command, info_name=name, parent=context, **command.context_settings)
        name = rest.pop(0)
        assert name in commands, f"`{context.command_path} {name}`: no such command (it has {', '.join(commands)})"
        command = commands[name]


def _parse(argv: list[str]) -> None:
    """Parse argv as `cdr` does, without running the command: a usage error (unknown option, missing
    value or required option, extra argument, a value of the wrong type) raises."""
    command, name, parent, rest = _resolve(argv)
    try:
        command.make_context(name, rest, parent=parent, resilient_parsing=False)
    except typer.Exit as exc:  # --version and --help print and leave
        assert exc.exit_code == 0


def _options(path: tuple[str, ...]) -> set[str]:
    """A command's long options (both names of an on/off pair), `--help` left out."""
    command = _resolve(list(path))[0]
    return {name for param in command.params for name in (*param.opts, *param.secondary_opts) if name.startswith("--")}


def _named_options(text: str) -> set[str]:
    return set(re.findall(r"(?<![\w-])--[a-z][a-z0-9-]*", text))


def _span_commands(span: str) -> list[tuple[str, ...]]:
    """A `cdr ...` text -> the command paths it names (`cdr sandbox serve|export …` names two)."""
    words, paths = span.split()[1:], [()]
    groups = {path[:i] for path in _leaf_paths() for i in range(len(path))}
    while words and any(path in groups for path in paths) and not words[0].startswith("-"):
        names = words.pop(0).split("|")
        paths = [(*path, name) for path in paths for name in names]
    return paths


def _words(line: str) -> list[str]:
    """A shell line -> its words as sh splits them (operators and redirections their own words), no comment."""
    lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    lexer.commenters = "#"
    return list(lexer)


def _commands(words: list[str]) -> list[list[str]]:
    """A shell line's words -> the argv after `cdr` of each `cdr` command in it (variables set before it
    and redirections left out)."""
    found, command = [], []
    for word in [*words, ";"]:
        if word not in _SEPARATORS:
            command.append(word)
            continue
        while command and re.fullmatch(r"[A-Z_][A-Z0-9_]*=.*", command[0]):
            del command[0]
        if command and command[0] in ("cdr", ".venv/bin/cdr"):
            pairs = zip(command, command[1:])
            found.append([word for before, word in pairs if word not in _REDIRECTS and before not in _REDIRECTS])
        command = []
    return found


def _code_lines() -> list[tuple[int, str]]:
    """Each line of the README's ```sh blocks, continuation lines joined -> (its first line number, text)."""
    lines, fence, pending, start = [], None, "", 0
    for number, line in enumerate(_readme().splitlines(), 1):
        if line.startswith("```"):
            fence = line[3:].strip() if fence is None else None
        elif fence == "sh":
            start = start if pending else number
            if line.endswith("\\"):
                pending += line[:-1]
            else:
                lines.append((start, pending + line))
                pending = ""
    return lines


def _inline_spans() -> list[tuple[int, str]]:
    """Each inline `cdr ...` code span of the README (outside code blocks) -> (line number, text)."""
    text = re.sub(r"```.*?```", lambda block: "\n" * block.group().count("\n"), _readme(), flags=re.S)
    spans = re.finditer(r"`(cdr [^`]*)`", text)
    return [(text.count("\n", 0, span.start()) + 1, span.group(1)) for span in spans]


def _is_example(span: str) -> bool:
    """An inline span that is a whole command as typed: not a command's name (`cdr sql`), a synopsis
    (`[--opt X]`, `a\\|b`) or an excerpt (`…`)."""
    words = span.split()
    return any(len(path) + 1 < len(words) for path in _span_commands(span)) and not any(
        word in _PLACEHOLDERS or word.startswith("[") or "|" in word for word in words
    )


def _readme_examples() -> list[tuple[int, list[str]]]:
    """Every `cdr` command the README shows as typed -> (line number, its argv after `cdr`)."""
    examples = [(number, argv) for number, line in _code_lines() for argv in _commands(_words(line))]
    return examples + [
        (number, argv) for number, span in _inline_spans() if _is_example(span) for argv in _commands(_words(span))
    ]


def _example_id(example: tuple[int, list[str]]) -> str:
    number, argv = example
    return f"L{number}: cdr {' '.join(argv)}"[:80]


@pytest.mark.parametrize("example", _readme_examples(), ids=_example_id)
def test_every_readme_example_is_a_command_cdr_accepts(example: tuple[int, list[str]]) -> None:
    number, argv = example
    try:
        _parse(argv)
    except Exception as exc:
        message = exc.format_message() if hasattr(exc, "format_message") else str(exc)
        pytest.fail(f"README line {number}: `cdr {shlex.join(argv)}` is refused: {message}")


def _help_examples() -> list[tuple[str, list[str]]]:
    """Every `cdr` example in a command's --help -> (the command, its argv after `cdr`)."""
    examples = []
    for path in _leaf_paths():
        epilog = _resolve(list(path))[0].epilog or ""
        for line in epilog.splitlines():
            examples += [(" ".join(path), argv) for argv in _commands(_words(line.strip()))]
    return examples


@pytest.mark.parametrize("example", _help_examples(), ids=lambda example: f"cdr {' '.join(example[1])}"[:80])
def test_every_help_example_is_a_command_cdr_accepts(example: tuple[str, list[str]]) -> None:
    _parse(example[1])


def test_the_readme_shows_an_example_of_each_first_hour_command() -> None:
    shown = {tuple(argv[: len(path)]) for _, argv in _readme_examples() for path in _leaf_paths()}
    # `serve`, `demo` (as make demo) and `sandbox export` are shown in prose, as synopses.
    for path in (("sync",), ("build",), ("status",), ("alerts",), ("report", "finance"), ("dashboards",),
                 ("sql",), ("shell",), ("dates",), ("sandbox", "serve")):
        assert path in shown, f"no example of `cdr {' '.join(path)}` in the README"


def test_every_option_the_readme_names_is_one_its_command_has() -> None:
    leaves, wrong = set(_leaf_paths()), []
    for number, text in [*_inline_spans(), *_code_lines()]:
        for part in re.split(r"&&|\|\||;", text):
            part = re.sub(r"^\s*([A-Z_][A-Z0-9_]*=\S*\s+)*", "", part).split(" #", 1)[0]
            if not part.startswith("cdr "):
                continue
            named = _named_options(part)
            for path in _span_commands(part):
                known = _options(path) if path in leaves else {"--version"}
                wrong += [
                    f"README line {number}: `cdr {' '.join(path)}` has no {option}"
                    for option in sorted(named - known - {"--help"})
                ]
    assert not wrong, "\n".join(wrong)


def _synopses() -> dict[tuple[str, ...], str]:
    """The Commands table's synopses that spell out every option -> their text, by command path."""
    rows = {}
    for line in _section("## Commands").splitlines():
        if line.startswith("| `cdr "):
            for span in re.findall(r"`(cdr [^`]*)`", line.split(" | ", 1)[0]):
                if not any(word in _PLACEHOLDERS for word in span.split()):
                    rows.update(dict.fromkeys(_span_commands(span), span))
    return rows


@pytest.mark.parametrize("path", _leaf_paths(), ids=" ".join)
def test_every_option_of_every_command_is_documented(path: tuple[str, ...]) -> None:
    for param in _resolve(list(path))[0].params:
        long = next((name for name in param.opts if name.startswith("--")), "")
        for short in (name for name in param.opts if re.fullmatch(r"-\w", name)):
            # Said once, naming the commands it applies to: "`-f` is `--format` (`cdr sql`, `cdr alerts`)".
            said = f"`{short}` is `{long}`"
            where = _readme().split(said, 1)[1].split("|", 1)[0] if said in _readme() else ""
            assert f"`cdr {' '.join(path)}`" in where, f"the README does not say {said} in `cdr {' '.join(path)}`"
    options, synopsis = _options(path), _synopses().get(path)
    if synopsis is None:
        # The Commands table lists the sandbox's commands with `…`: their options are in their own section.
        assert path[0] == "sandbox", f"`cdr {' '.join(path)}` is missing from the README's Commands table"
        missing = options - _named_options(_section("## The sandbox"))
        assert not missing, f"the README's sandbox section lacks `cdr {' '.join(path)}` {sorted(missing)}"
        return
    named = _named_options(synopsis)
    # An on/off pair is documented by the name that changes the default.
    pairs = [{*param.opts, *param.secondary_opts} for param in _resolve(list(path))[0].params if param.secondary_opts]
    undocumented = {option for option in options - named if not any(option in pair and pair & named for pair in pairs)}
    assert not undocumented, f"the README's synopsis of `cdr {' '.join(path)}` lacks {sorted(undocumented)}"
    unknown = sorted(named - options)
    assert not unknown, f"the README's synopsis of `cdr {' '.join(path)}` names {unknown}, which it lacks"


# -- the files, fields and paths the README names are the code's ------------------------------


def _code_spans(text: str) -> set[str]:
    return set(re.findall(r"`([^`\n]+)`", text))


def test_the_files_the_readme_names_are_the_ones_the_code_writes() -> None:
    from pipelines.accounts import ACCOUNTS_FILE
    from pipelines.alerts import ALERTS_DIR, SENT_FILE
    from pipelines.lake import PARTITION_FILE, QUARANTINE_DIR, STAGING_DIR
    from pipelines.sync_lock import SYNC_LOCK
    from pipelines.models.publish import FAILED_WAREHOUSE_FILE, WAREHOUSE_FILE
    from pipelines.models.thresholds import THRESHOLDS_FILE
    from pipelines.runs import SYNC_LOG
    from pipelines.status import BUILD_RECORD, SITE_DIR, SITE_MARKER

    spans = _code_spans(_readme())
    for name in (
        str(ACCOUNTS_FILE), f"{ALERTS_DIR}/{SENT_FILE}", PARTITION_FILE, f"{QUARANTINE_DIR}/", f"{STAGING_DIR}/",
        SYNC_LOCK, FAILED_WAREHOUSE_FILE, f"<data dir>/{WAREHOUSE_FILE}", f"queries/{THRESHOLDS_FILE.as_posix()}",
        SYNC_LOG, BUILD_RECORD, f"{SITE_DIR}/{SITE_MARKER}", f"<data dir>/{SITE_DIR}/",
    ):
        assert any(name in span for span in spans), f"README never names {name!r}"


def test_the_finance_columns_the_readme_lists_are_the_exports() -> None:
    from pipelines.reports import FINANCE_COLUMNS

    assert ",".join(FINANCE_COLUMNS) in _code_spans(_readme())


def test_the_alert_fields_the_readme_lists_are_rpt_alerts() -> None:
    from pipelines.alerts import ALERT_COLUMNS, SEVERITIES

    listed = _code_spans(_section("## Alerts"))
    # `account` is every table's first column, said once for all of them under Ad-hoc SQL.
    assert set(ALERT_COLUMNS) - {"account"} <= listed, f"not in the README's Alerts: {set(ALERT_COLUMNS) - listed}"
    assert set(SEVERITIES) <= listed
    synopsis = _synopses()[("alerts",)]
    for option in ("--min-severity", "--fail-on"):
        assert re.search(rf"{option} {re.escape(chr(92) + '|').join(SEVERITIES)}\]", synopsis), option


def test_the_choices_the_synopses_list_are_the_ones_accepted() -> None:
    from pipelines.dates import WEEK_STARTS
    from pipelines.sql import FORMATS

    synopses = _synopses()
    for path, option, choices in (
        (("sql",), "--format", FORMATS), (("alerts",), "--format", FORMATS),
        (("sync",), "--week-start", WEEK_STARTS), (("dates",), "--week-start", WEEK_STARTS),
    ):
        listed = re.search(rf"{option} ([a-z|\\]+)\]", synopses[path]).group(1).split("\\|")
        assert sorted(listed) == sorted(choices), f"`cdr {' '.join(path)} {option}`: README {listed}, code {choices}"


def _keys(document: object, prefix: str = "") -> set[str]:
    """A JSON document -> the dotted names of its objects' fields (items of a list as the list's own)."""
    if isinstance(document, list):
        return set().union(*(_keys(item, prefix) for item in document))
    if not isinstance(document, dict):
        return set()
    return {f"{prefix}{key}" for key in document} | set().union(
        *(_keys(value, f"{prefix}{key}.") for key, value in document.items())
    )


def test_the_status_fields_the_readme_lists_are_the_ones_printed(tmp_path: Path) -> None:
    from datetime import UTC, datetime

    from pipelines.dates import Window
    from pipelines.lake import DATASETS
    from pipelines.runs import RUN_STATUSES, AccountRun, SyncFailure, accounts_json, failed_slices_json
    from pipelines.status import read_status, status_document

    document = status_document(read_status(tmp_path))
    window = Window(datetime(2026, 10, 1, tzinfo=UTC), datetime(2026, 10, 2, tzinfo=UTC))
    document["last_sync"]["failed_slices"] = failed_slices_json([SyncFailure("cdrs", window, "timed out", "acme")])
    document["last_sync"]["accounts"] = accounts_json([AccountRun("acme", "failed", "rejected key")])
    paragraph = _readme().split("`cdr status --json` prints one object:", 1)[1].split("\n\n", 1)[0]
    listed = _code_spans(paragraph)
    # A field is named by itself, or dotted when the README says whose it is (`last_sync.accounts`).
    missing = sorted(key for key in _keys(document) if key.rsplit(".", 1)[-1] not in listed and key not in listed)
    assert not missing, f"`cdr status --json` fields the README does not name: {missing}"
    assert set(RUN_STATUSES) <= listed
    assert {*DATASETS, "quarantine_cdrs", "quarantine_mdrs"} <= listed


def test_every_path_the_readme_names_exists() -> None:
    text = _readme()
    named = {match.rstrip(".") for match in re.findall(
        r"(?<![\w./<-])((?:pipelines|queries|dashboards|sandbox|tests|bench|cdr_app)/[\w./-]*)", text
    )}
    named |= {span for span in _code_spans(text) if span.endswith(".md")}
    layout = _section("## Layout").split("```")[1]
    folder = ""
    for line in layout.splitlines():
        entry = line.split()[0] if line.strip() else ""
        if line[:1].strip():
            folder = entry if entry.endswith("/") else ""
            named.add(entry)
        elif entry.endswith((".py", "/")) and folder:
            named.add(folder + entry)
    missing = sorted(path for path in named if not (ROOT / path).exists())
    assert not missing, f"README names paths that do not exist: {missing}"


def test_the_layout_names_every_folder() -> None:
    layout = _section("## Layout").split("```")[1]
    tops = {line.split()[0] for line in layout.splitlines() if line[:1].strip()}
    import subprocess

    # The checkout's own folders, not what a run left beside them (./exports, ./data/demo).
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=False).stdout.split()
    if not tracked:
        pytest.skip("not a git checkout")
    folders = {path.split("/", 1)[0] + "/" for path in tracked if "/" in path and not path.startswith(".")}
    assert folders <= tops, f"the README's Layout lacks {sorted(folders - tops)}"
    queries = layout.split("\nqueries/", 1)[1].split("\ndashboards/", 1)[0]
    for path in sorted((ROOT / "queries").iterdir()):
        if path.is_dir():
            assert f"{path.name}/" in queries, f"the README's Layout does not say what queries/{path.name}/ holds"


def test_every_link_in_the_readme_leads_somewhere() -> None:
    text = _readme()
    titles = re.findall(r"^#+ (.+)$", text, flags=re.M)
    headings = {re.sub(r"[^a-z0-9 -]", "", title.lower()).replace(" ", "-") for title in titles}
    for target in re.findall(r"\]\(([^)]+)\)", text):
        if target.startswith("#"):
            assert target[1:] in headings, f"README links to {target}: no such heading"
        elif "://" not in target:
            assert (ROOT / target).exists(), f"README links to {target}: no such file"


def _make_targets() -> set[str]:
    return set(re.findall(r"^([a-z][a-z0-9_-]*):", (ROOT / "Makefile").read_text(), flags=re.M))


def test_every_make_target_the_readme_shows_exists() -> None:
    shown = set(re.findall(r"(?<![\w/-])make ([a-z][a-z0-9_-]*)", _readme()))
    assert {"demo", "test"} <= shown
    assert shown <= _make_targets(), f"README shows make {sorted(shown - _make_targets())}: not in the Makefile"


def test_every_python_module_the_readme_runs_exists() -> None:
    import importlib.util

    modules = set(re.findall(r"python -m ([a-z_][a-z0-9_.]*)", _readme()))
    assert "bench.bench_scale" in modules
    missing = [name for name in sorted(modules) if importlib.util.find_spec(name) is None]
    assert not missing, f"README runs python -m {missing}: no such module"


def test_the_deployments_and_parameters_the_readme_names_are_prefect_yamls() -> None:
    import ast

    import yaml

    deployments = yaml.safe_load((ROOT / "prefect.yaml").read_text())["deployments"]
    parameters = set()
    for deployment in deployments:
        path, name = deployment["entrypoint"].split(":")
        flow = next(
            node for node in ast.walk(ast.parse((ROOT / path).read_text()))
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name == name
        )
        parameters |= {argument.arg for argument in (*flow.args.args, *flow.args.kwonlyargs)}
    section = _section("## Running it nightly (Prefect)")
    assert {deployment["name"] for deployment in deployments} <= _code_spans(section)
    named = set(re.findall(r"`(\w+)` parameter|parameter `(\w+)", _readme()))
    named = {name for pair in named for name in pair if name}
    assert named, "the README names no deployment parameter: has its wording changed?"
    assert named <= parameters, f"README names deployment parameters the flows lack: {sorted(named - parameters)}"


def test_the_readmes_accounts_file_is_one_cdr_reads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from pipelines.accounts import load_accounts
    from pipelines.settings import load_settings

    example = _section("## Several accounts").split("```toml\n", 1)[1].split("```", 1)[0]
    (tmp_path / "accounts.toml").write_text(example)
    monkeypatch.setenv("CDR_ACCOUNTS_FILE", str(tmp_path / "accounts.toml"))
    accounts = load_accounts(load_settings(dotenv=None))
    assert accounts.names == ("acme", "globex")
    assert [account.api_key_env for account in accounts.accounts] == ["ACME_OPENTACT_KEY", None]


@pytest.mark.parametrize(
    "field", [field for field in Settings.model_fields.values() if field.metadata], ids=lambda field: field.alias
)
def test_every_bounded_setting_has_its_range_in_the_readme(field) -> None:
    bounds = {type(bound).__name__.lower(): getattr(bound, type(bound).__name__.lower()) for bound in field.metadata}
    low = f"above {bounds['gt']} to " if "gt" in bounds else f"{bounds['ge']}–"
    assert _readme_ranges().get(field.alias) == f"{low}{bounds['le']}", f"{field.alias}: README's allowed range"

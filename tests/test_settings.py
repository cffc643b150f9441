"""Settings: a bad value is one line naming the variable, the value and what is allowed; the key is never shown."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import SecretStr

from pipelines.errors import UsageError
from pipelines.settings import Settings, load_settings
from tests.fixtures.cli import run_cdr

ZONES = "an IANA time zone name such as UTC, Europe/London, America/New_York or Asia/Kolkata"

BAD_VALUES = [
    ("OPENTACT_CONCURRENCY", "-1", "a whole number from 1 to 64"),
    ("OPENTACT_CONCURRENCY", "0", "a whole number from 1 to 64"),
    ("OPENTACT_CONCURRENCY", "abc", "a whole number from 1 to 64"),
    ("OPENTACT_CONCURRENCY", "100000", "a whole number from 1 to 64"),
    ("OPENTACT_PAGE_SIZE", "0", "a whole number from 1 to 250"),
    ("OPENTACT_PAGE_SIZE", "1000", "a whole number from 1 to 250"),
    ("OPENTACT_PAGE_SIZE", "abc", "a whole number from 1 to 250"),
    ("CDR_LOOKBACK_DAYS", "-1", "a whole number from 0 to 366"),
    ("CDR_LOOKBACK_DAYS", "abc", "a whole number from 0 to 366"),
    ("OPENTACT_SETTLE_LAG_SECS", "inf", "a number from 0 to 86400"),
    ("OPENTACT_SETTLE_LAG_SECS", "1e300", "a number from 0 to 86400"),
    ("OPENTACT_TIMEOUT_SECS", "0", "a number above 0 and at most 3600"),
    ("OPENTACT_RETRY_MAX_SECS", "nan", "a number above 0 and at most 86400"),
    ("OPENTACT_BACKOFF_BASE_SECS", "-inf", "a number above 0 and at most 3600"),
    ("OPENTACT_BACKOFF_MAX_SECS", "x", "a number above 0 and at most 3600"),
    ("OPENTACT_SLICE_MAX_PAGES", "0", "a whole number from 1 to 100000"),
    ("OPENTACT_PREFETCH_SLICES", "-1", "a whole number from 0 to 8"),
    ("OPENTACT_MAX_REJECTED_PERCENT", "101", "a number from 0 to 100"),
    ("OPENTACT_MAX_REJECTED_PERCENT", "nan", "a number from 0 to 100"),
    ("CDR_MAX_SYNC_DAYS", "0", "a whole number from 1 to 3660"),
    ("CDR_MAX_SYNC_DAYS", "99999999999999999999", "a whole number from 1 to 3660"),
    ("CDR_TIMEZONE", "Mars/Olympus", ZONES),
    ("CDR_REPORT_TIMEZONE", "Europe/Nowhere", ZONES),
    ("CDR_WEEK_START", "tuesday", "monday or sunday"),
]

BAD_KEYS = [
    ("sk-live-first\nsk-live-second", "it contains a line break"),
    ("sk-live-0123456789\r", "it has leading or trailing whitespace"),
    (" sk-live-0123456789", "it has leading or trailing whitespace"),
    ("   ", "it has leading or trailing whitespace"),
    ("sk-live\t0123456789", "it contains a space, a control character or a non-ASCII character"),
    ("sk-live-\x1b0123456789", "it contains a space, a control character or a non-ASCII character"),
    ("sk-live-ключ-0123456789", "it contains a space, a control character or a non-ASCII character"),
]


@pytest.mark.parametrize(("name", "value", "allowed"), BAD_VALUES)
def test_a_bad_value_is_one_line_naming_variable_value_and_what_is_allowed(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, name: str, value: str, allowed: str
) -> None:
    monkeypatch.setenv(name, value)
    code, out, err = run_cdr(capsys, monkeypatch, "dates", "today")
    assert (code, out, err) == (2, "", f"error: {name}={value} is not allowed: {allowed}\n")


@pytest.mark.parametrize("command", [("build",), ("sync", "--range", "today"), ("dashboards",), ("sql", "select 1")])
def test_every_command_refuses_a_bad_value_before_touching_the_data_dir(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path, command: tuple[str, ...]
) -> None:
    monkeypatch.setenv("OPENTACT_API_KEY", "sk-live-0123456789")
    monkeypatch.setenv("OPENTACT_BASE_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("OPENTACT_CONCURRENCY", "abc")
    code, out, err = run_cdr(capsys, monkeypatch, *command, "--data-dir", str(tmp_path / "data"))
    assert (code, out) == (2, "")
    assert err == "error: OPENTACT_CONCURRENCY=abc is not allowed: a whole number from 1 to 64\n"
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "command", [("status",), ("sql", "select 1"), ("report", "finance", "--month", "2026-01"), ("alerts",), ("dashboards",)]
)
def test_a_reading_command_refuses_a_bad_calendar_setting_too(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path, command: tuple[str, ...]
) -> None:
    monkeypatch.setenv("CDR_REPORT_TIMEZONE", "Nope/Zone")
    code, out, err = run_cdr(capsys, monkeypatch, *command, "--data-dir", str(tmp_path / "data"))
    assert (code, out, err) == (2, "", f"error: CDR_REPORT_TIMEZONE=Nope/Zone is not allowed: {ZONES}\n")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("args", "env", "dotenv", "named"),
    [
        (("dates", "today", "--tz", "Europe/Berlinn"), {}, "", "bad --tz: Europe/Berlinn"),
        (("sync", "--range", "today", "--tz", "Europe/Berlinn", "--data-dir", "data"), {}, "", "bad --tz: Europe/Berlinn"),
        (("dates", "today"), {"CDR_TIMEZONE": "Europe/Berlinn"}, "", "CDR_TIMEZONE=Europe/Berlinn"),
        (("sync", "--range", "today", "--data-dir", "data"), {"CDR_TIMEZONE": "Europe/Berlinn"}, "",
         "CDR_TIMEZONE=Europe/Berlinn"),
        (("dates", "today"), {}, "CDR_TIMEZONE=Europe/Berlinn\n", "CDR_TIMEZONE=Europe/Berlinn (in .env)"),
        # The option wins over the variable: it alone is named.
        (("dates", "today", "--tz", "Mars/Olympus"), {"CDR_TIMEZONE": "Europe/Berlin"}, "", "bad --tz: Mars/Olympus"),
    ],
)
def test_a_bad_time_zone_is_named_as_the_option_or_variable_it_came_from(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
    args: tuple[str, ...], env: dict[str, str], dotenv: str, named: str,
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("CDR_TIMEZONE", raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    if dotenv:
        (tmp_path / ".env").write_text(dotenv)
    monkeypatch.setenv("OPENTACT_API_KEY", "sk-live-0123456789")
    monkeypatch.setenv("OPENTACT_BASE_URL", "http://127.0.0.1:9")
    code, out, err = run_cdr(capsys, monkeypatch, *args)
    hint = "" if "Mars" in named else " (did you mean 'Europe/Berlin'?)"
    assert (code, out, err) == (2, "", f"error: {named} is not allowed: {ZONES}{hint}\n")
    assert sorted(path.name for path in tmp_path.iterdir()) == ([".env"] if dotenv else [])


def test_bad_options_that_override_settings_read_as_every_bad_option(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    code, out, err = run_cdr(capsys, monkeypatch, "dates", "this_week", "--tz", "Mars/Olympus", "--week-start", "friday")
    assert (code, out) == (2, "")
    assert err == (
        f"error: bad --tz: Mars/Olympus is not allowed: {ZONES}; bad --week-start: friday is not allowed: monday or sunday\n"
    )


URL_REFUSAL = (
    "is not allowed: the data dir must be a local folder or an s3://bucket/prefix URL (for another S3-compatible "
    "store, set AWS_ENDPOINT_URL; mount any other store as a folder)\n"
)


@pytest.mark.parametrize("command", [("build",), ("sync", "--range", "today"), ("status",), ("sql", "select 1")])
def test_an_unsupported_object_store_url_as_data_dir_is_refused_and_nothing_lands_in_a_folder_named_for_it(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path, command: tuple[str, ...]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("OPENTACT_API_KEY", "sk-live-0123456789")
    monkeypatch.setenv("OPENTACT_BASE_URL", "http://127.0.0.1:9")
    code, out, err = run_cdr(capsys, monkeypatch, *command, "--data-dir", "gs://bucket/cdr")
    assert (code, out, err) == (2, "", "error: bad --data-dir: gs://bucket/cdr " + URL_REFUSAL)
    # A URL a path would have collapsed (s3:/...) is no URL and no folder either.
    code, out, err = run_cdr(capsys, monkeypatch, *command, "--data-dir", "s3:/bucket/cdr")
    assert (code, out, err) == (2, "", "error: bad --data-dir: s3:/bucket/cdr " + URL_REFUSAL)
    monkeypatch.setenv("CDR_DATA_DIR", "az://bucket/cdr")
    code, out, err = run_cdr(capsys, monkeypatch, *command)
    assert (code, out, err) == (2, "", "error: CDR_DATA_DIR=az://bucket/cdr " + URL_REFUSAL)
    assert list(tmp_path.iterdir()) == []


def test_an_s3_url_is_kept_as_the_url_and_a_folder_as_a_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CDR_DATA_DIR", raising=False)
    assert load_settings(dotenv=None, data_dir="s3://bucket/cdr/").data_dir == "s3://bucket/cdr"
    assert load_settings(dotenv=None, data_dir="some/folder").data_dir == Path("some/folder")
    monkeypatch.setenv("CDR_DATA_DIR", "s3://bucket/prefix")
    assert load_settings(dotenv=None).data_dir == "s3://bucket/prefix"
    # A scheme is case-insensitive: fsspec knows only the lowercase one.
    assert load_settings(dotenv=None, data_dir="S3://bucket/cdr").data_dir == "s3://bucket/cdr"


FOLDERS_REFUSAL = (
    "is not allowed: an s3:// data dir's folder names cannot be empty, . or .. (as in s3://bucket//prefix): "
    "write it as s3://bucket/prefix\n"
)


@pytest.mark.parametrize("url", ["s3://bucket//cdr", "s3://bucket/./cdr", "s3://bucket/cdr/../other"])
@pytest.mark.parametrize("command", [("build",), ("sync", "--range", "today"), ("status",)])
def test_an_s3_data_dir_with_an_empty_folder_name_is_refused(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path, command: tuple[str, ...],
    url: str,
) -> None:
    # The store writes s3://bucket//cdr's objects under bucket/cdr but lists none there: a build
    # would publish an empty warehouse over the lake's.
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("OPENTACT_API_KEY", "sk-live-0123456789")
    monkeypatch.setenv("OPENTACT_BASE_URL", "http://127.0.0.1:9")
    code, out, err = run_cdr(capsys, monkeypatch, *command, "--data-dir", url)
    assert (code, out, err) == (2, "", f"error: bad --data-dir: {url} " + FOLDERS_REFUSAL)
    monkeypatch.setenv("CDR_DATA_DIR", url)
    code, out, err = run_cdr(capsys, monkeypatch, *command)
    assert (code, out, err) == (2, "", f"error: CDR_DATA_DIR={url} " + FOLDERS_REFUSAL)
    assert list(tmp_path.iterdir()) == []


def test_several_bad_values_share_the_line(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENTACT_PAGE_SIZE", "0")
    monkeypatch.setenv("CDR_LOOKBACK_DAYS", "abc")
    code, _, err = run_cdr(capsys, monkeypatch, "dates", "today")
    assert code == 2 and err.count("\n") == 1
    assert "OPENTACT_PAGE_SIZE=0 is not allowed" in err and "CDR_LOOKBACK_DAYS=abc is not allowed" in err


def test_a_long_or_unprintable_value_is_shown_short_on_one_line(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENTACT_TIMEOUT_SECS", "1\n" + "9" * 10_000)
    code, _, err = run_cdr(capsys, monkeypatch, "dates", "today")
    assert code == 2 and err.count("\n") == 1 and len(err) < 200
    assert err.startswith("error: OPENTACT_TIMEOUT_SECS='1\\n9999")


@pytest.mark.parametrize(("key", "problem"), BAD_KEYS)
@pytest.mark.parametrize("command", [("dates", "today"), ("sync", "--range", "today")])
def test_an_unusable_key_is_refused_at_once_without_showing_it(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
    key: str, problem: str, command: tuple[str, ...],
) -> None:
    monkeypatch.setenv("OPENTACT_API_KEY", key)
    monkeypatch.setenv("OPENTACT_BASE_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("CDR_DATA_DIR", str(tmp_path / "data"))
    code, out, err = run_cdr(capsys, monkeypatch, *command)
    assert (code, out) == (2, "")
    assert err == f"error: OPENTACT_API_KEY is not allowed: {problem}; set it to the key exactly as issued\n"
    assert list(tmp_path.iterdir()) == []


def test_an_empty_variable_means_not_set(monkeypatch: pytest.MonkeyPatch) -> None:
    # As in .env.example: `OPENTACT_API_KEY=` must not break the commands that need no key.
    for name in ("OPENTACT_API_KEY", "OPENTACT_CONCURRENCY", "CDR_DATA_DIR"):
        monkeypatch.setenv(name, "")
    settings = load_settings()
    assert (settings.opentact_api_key, settings.opentact_concurrency, settings.data_dir) == (None, 4, Path("data"))


def test_a_key_from_a_secret_block_is_checked_the_same_way() -> None:
    # flows/sync.py puts a Prefect Secret block's value in with `with_overrides`.
    with pytest.raises(UsageError) as refused:
        Settings().with_overrides(opentact_api_key=SecretStr("sk-live-0123456789\n"))
    assert str(refused.value) == (
        "OPENTACT_API_KEY is not allowed: it has leading or trailing whitespace; set it to the key exactly as issued"
    )
    assert refused.value.__cause__ is None and refused.value.__context__ is None


def test_an_override_is_named_as_the_option_it_came_from() -> None:
    with pytest.raises(UsageError, match=r"^bad --data-dir: 12 is not allowed: Input is not a valid path"):
        load_settings(data_dir=12)


def test_good_values_are_read() -> None:
    settings = Settings(OPENTACT_CONCURRENCY="64", OPENTACT_SETTLE_LAG_SECS="0", OPENTACT_API_KEY="sk-live_0123/+=~")
    assert (settings.opentact_concurrency, settings.opentact_settle_lag_secs) == (64, 0.0)
    assert settings.opentact_api_key == SecretStr("sk-live_0123/+=~")


def _dates_zone(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, *args: str) -> str:
    code, out, err = run_cdr(capsys, monkeypatch, "dates", "today", "--now", "2026-03-10T12:00:00Z", *args)
    assert (code, err) == (0, "")
    return json.loads(out)["timezone"]


def test_an_option_beats_the_environment_which_beats_dotenv_which_beats_the_default(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert _dates_zone(capsys, monkeypatch) == "UTC"
    (tmp_path / ".env").write_text("# local settings\nCDR_TIMEZONE=Europe/London\nexport CDR_WEEK_START='sunday'\n")
    assert _dates_zone(capsys, monkeypatch) == "Europe/London"
    assert load_settings().week_start == "sunday"
    monkeypatch.setenv("CDR_TIMEZONE", "Asia/Tokyo")
    assert _dates_zone(capsys, monkeypatch) == "Asia/Tokyo"
    assert _dates_zone(capsys, monkeypatch, "--tz", "America/New_York") == "America/New_York"
    # An empty variable is unset, so .env's value stands (as for a variable that is absent).
    monkeypatch.setenv("CDR_TIMEZONE", "")
    assert _dates_zone(capsys, monkeypatch) == "Europe/London"


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("OPENTACT_PAGE_SIZE=10\nOPENTACT_API_KEY sk-live-0123456789\n", 2),
        ('OPENTACT_API_KEY="sk-live-0123456789\nCDR_TIMEZONE=UTC\n', 1),
        ("CDR_TIMEZONE=UTC\n\n# a comment\nsk-live-0123456789\n", 4),
    ],
)
def test_a_malformed_dotenv_line_is_one_line_naming_file_and_line_and_never_the_key(
    text: str, line: int, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text(text)
    code, out, err = run_cdr(capsys, monkeypatch, "build", "--data-dir", str(tmp_path / "data"))
    assert (code, out) == (2, "")
    assert err == f"error: .env line {line}: expected NAME=value (a quoted value closes its quotes)\n"
    assert sorted(path.name for path in tmp_path.iterdir()) == [".env"]


@pytest.mark.parametrize("where", [".env", "the environment"])
def test_a_missing_key_names_a_variable_set_under_a_name_close_to_its_never_its_value(
    where: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # OPENTACT_APIKEY=... is read by nothing: the sync would only say the key is not set.
    monkeypatch.chdir(tmp_path)
    if where == ".env":
        (tmp_path / ".env").write_text("OPENTACT_APIKEY=sk-live-0123456789\n")
    else:
        monkeypatch.setenv("Opentact_Api_Kee", "sk-live-0123456789")
    code, out, err = run_cdr(capsys, monkeypatch, "sync", "--range", "yesterday", "--data-dir", str(tmp_path / "data"))
    assert (code, out) == (2, "")
    name = "OPENTACT_APIKEY" if where == ".env" else "Opentact_Api_Kee"
    assert err == (
        "error: OPENTACT_API_KEY is not set (or is empty): export it (the variables are listed in .env.example) to "
        f"read the Opentact API ({where} sets {name}: did you mean OPENTACT_API_KEY?)\n"
    )
    assert not (tmp_path / "data").exists()


def test_a_bad_value_in_dotenv_says_so_and_never_shows_the_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text("OPENTACT_API_KEY=sk-live 0123456789\nOPENTACT_CONCURRENCY=0\n")
    code, out, err = run_cdr(capsys, monkeypatch, "build", "--data-dir", str(tmp_path / "data"))
    assert (code, out) == (2, "")
    assert err == (
        "error: OPENTACT_API_KEY (in .env) is not allowed: it contains a space, a control character or a "
        "non-ASCII character; set it to the key exactly as issued; "
        "OPENTACT_CONCURRENCY=0 (in .env) is not allowed: a whole number from 1 to 64\n"
    )
    assert "0123456789" not in err


def test_a_dotenv_that_is_not_utf8_or_not_a_file_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_bytes(b"CDR_TIMEZONE=\xff\n")
    with pytest.raises(UsageError, match=r"^\.env is not UTF-8 text: write it as NAME=value lines$"):
        load_settings()
    (tmp_path / ".env").unlink()
    (tmp_path / ".env").mkdir()
    with pytest.raises(UsageError, match=r"^cannot read \.env: Is a directory$"):
        load_settings()

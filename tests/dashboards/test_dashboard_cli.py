from datetime import UTC, datetime, timedelta
from pathlib import Path

from typer.testing import CliRunner

from cdr_app.cli import app
from pipelines.dates import Window
from pipelines.accounts import DEFAULT_ACCOUNT
from pipelines.lake import Lake
from pipelines.state import begin_run
from tests.dashboards.dashboard_fixtures import build_warehouse
from tests.fixtures.cli import run_cdr

runner = CliRunner()


def _synced(data_dir: Path, kind: str, end: datetime) -> None:
    window = Window(end - timedelta(days=1), end)
    begin_run(Lake(data_dir).for_account(DEFAULT_ACCOUNT), kind, window, [window], "run-1").complete(end + timedelta(hours=1))


def test_dashboards_render_into_the_data_dirs_site_by_default(tmp_path):
    build_warehouse(tmp_path / "warehouse.duckdb")
    _synced(tmp_path, "cdrs", datetime(2026, 11, 1, 2, 0, tzinfo=UTC))
    _synced(tmp_path, "mdrs", datetime(2026, 11, 1, 3, 0, tzinfo=UTC))
    result = runner.invoke(app, ["dashboards", "--data-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    site = tmp_path / "site"
    assert result.output == f"wrote 7 pages to {site}: open {site / 'index.html'}\n"
    # The data is as fresh as the least recently synced record type.
    assert "Data synced: 2026-11-01 02:00 UTC" in (site / "index.html").read_text("utf-8")


def test_dashboards_write_where_out_says_and_say_never_synced(tmp_path, monkeypatch):
    build_warehouse(tmp_path / "warehouse.duckdb")
    monkeypatch.setenv("CDR_DATA_DIR", str(tmp_path))
    result = runner.invoke(app, ["dashboards", "--out", str(tmp_path / "elsewhere")])
    assert result.exit_code == 0, result.output
    assert "Data synced: never" in (tmp_path / "elsewhere" / "overview.html").read_text("utf-8")
    assert not (tmp_path / "site").exists()


def test_a_missing_warehouse_is_one_line_and_exit_1(tmp_path, monkeypatch, capsys):
    assert run_cdr(capsys, monkeypatch, "dashboards", "--data-dir", str(tmp_path)) == (
        1, "", f"error: no warehouse at {tmp_path / 'warehouse.duckdb'}: run `cdr build` first\n"
    )


def test_a_missing_data_dir_is_named_as_such_and_exit_2(tmp_path, monkeypatch, capsys):
    missing = tmp_path / "nope"
    assert run_cdr(capsys, monkeypatch, "dashboards", "--data-dir", str(missing)) == (
        2, "", f"error: data dir {missing} does not exist: sync first (`cdr sync`) or pass --data-dir\n"
    )


def test_an_out_inside_the_lake_is_refused(tmp_path, monkeypatch, capsys):
    build_warehouse(tmp_path / "warehouse.duckdb")
    (tmp_path / "lake" / "cdrs").mkdir(parents=True)
    out = tmp_path / "lake" / "cdrs"
    assert run_cdr(capsys, monkeypatch, "dashboards", "--data-dir", str(tmp_path), "--out", str(out)) == (
        2, "", f"error: --out {out} is inside {tmp_path / 'lake'}, which the sync writes: pass a folder outside it\n"
    )
    assert list(out.iterdir()) == []


def test_a_missing_report_table_is_one_line_and_exit_1(tmp_path, monkeypatch, capsys):
    import duckdb

    build_warehouse(tmp_path / "warehouse.duckdb")
    con = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    con.execute("drop table rpt_reconciliation_daily")
    con.close()
    code, _, err = run_cdr(capsys, monkeypatch, "dashboards", "--data-dir", str(tmp_path))
    assert code == 1
    assert err.count("\n") == 1 and "table rpt_reconciliation_daily" in err and err.endswith("run `cdr build`\n")


def test_an_out_that_is_a_file_or_in_a_missing_folder_is_one_line_and_exit_2(tmp_path, monkeypatch, capsys):
    build_warehouse(tmp_path / "warehouse.duckdb")
    taken = tmp_path / "taken"
    taken.write_text("a file\n")
    for out, message in (
        (taken, f"--out {taken} is a file, not a folder: pass a folder to write into"),
        (tmp_path / "missing" / "site",
         f"--out {tmp_path / 'missing' / 'site'}: {tmp_path / 'missing'} is not a folder; "
         "create it first or pass another folder"),
    ):
        assert run_cdr(capsys, monkeypatch, "dashboards", "--data-dir", str(tmp_path), "--out", str(out)) == (
            2, "", f"error: {message}\n"
        )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["taken", "warehouse.duckdb"]
    assert taken.read_text() == "a file\n"


def test_a_failed_write_leaves_the_previous_site_whole(tmp_path, monkeypatch, capsys):
    import errno

    build_warehouse(tmp_path / "warehouse.duckdb")
    site = tmp_path / "site"
    site.mkdir()
    (site / "index.html").write_text("the site of an earlier build\n")
    write_bytes = Path.write_bytes

    def disk_full_at_plotly(path, data):
        if path.name.startswith(".plotly.min.js."):
            raise OSError(errno.ENOSPC, "No space left on device")
        return write_bytes(path, data)

    monkeypatch.setattr(Path, "write_bytes", disk_full_at_plotly)
    assert run_cdr(capsys, monkeypatch, "dashboards", "--data-dir", str(tmp_path)) == (
        1, "", f"error: cannot write {site / 'plotly.min.js'} (No space left on device)\n"
    )
    assert [p.name for p in site.iterdir()] == ["index.html"]
    assert (site / "index.html").read_text() == "the site of an earlier build\n"

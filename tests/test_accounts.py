"""Accounts: the accounts file, zero-config `default`, choosing accounts, and reading each one's key.

A bad file is one line naming the file, the account and the key at fault; a key never shows.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import SecretStr

from pipelines.accounts import (
    DEFAULT_ACCOUNT,
    Account,
    Accounts,
    account_api_key,
    accounts_file,
    load_accounts,
    select_accounts,
)
from pipelines.errors import CdrError, UsageError
from pipelines.opentact.client import ClientConfig
from pipelines.settings import PRODUCTION_URL, Settings, load_settings

PLANTED = "sk-live-PLANTED0123456789"

GOOD = """\
[accounts.acme]
api_key_env = "ACME_OPENTACT_KEY"        # the variable holding the key
[accounts.globex]
api_key_block = "globex-opentact-key"    # or a Prefect Secret block
base_url = "https://api.stage.opentact.org"   # optional; else OPENTACT_BASE_URL
"""

FILE = "accounts file accounts.toml"
TAKES = "an account takes api_key_env, api_key_block, base_url"
NOT_A_VARIABLE = "api_key_env must be the name of an environment variable (letters, digits and '_')"

BAD_FILES = [
    pytest.param(
        f'[accounts.acme]\napi_key_env = "ACME_OPENTACT_KEY"\napi_key_block = {PLANTED}\n',
        f"{FILE}: not valid TOML (Invalid value (at line 3, column 17))",
        id="unreadable-toml",
    ),
    pytest.param(
        f'[accounts.acme]\napi_key_env = "A"\napi_key_env = "{PLANTED}"\n',
        f"{FILE}: not valid TOML (Cannot overwrite a value (at line 3, column 42))",
        id="a-key-twice",
    ),
    pytest.param("", f"{FILE}: no [accounts] table; write one [accounts.<name>] table per account", id="empty-file"),
    pytest.param(
        '[acounts.acme]\napi_key_env = "ACME_OPENTACT_KEY"\n',
        f"{FILE}: unknown table or key acounts; the file takes [accounts.<name>] tables only",
        id="misspelt-accounts",
    ),
    pytest.param(
        f'api_key = "{PLANTED}"\n[accounts.acme]\napi_key_env = "ACME_OPENTACT_KEY"\n',
        f"{FILE}: unknown table or key api_key; the file takes [accounts.<name>] tables only",
        id="top-level-key",
    ),
    pytest.param(
        "accounts = 3\n",
        f"{FILE}: `accounts` must be a table of [accounts.<name>] tables, not a value",
        id="accounts-not-a-table",
    ),
    pytest.param(
        "[accounts]\n",
        f"{FILE}: [accounts] has no accounts; write one [accounts.<name>] table per account",
        id="no-accounts",
    ),
    pytest.param(
        '[accounts.Acme]\napi_key_env = "ACME_OPENTACT_KEY"\n',
        f"{FILE}: account Acme: an account name is lowercase letters, digits, '_' and '-' only",
        id="uppercase-name",
    ),
    pytest.param(
        '[accounts."acme corp"]\napi_key_env = "ACME_OPENTACT_KEY"\n',
        f"{FILE}: account acme corp: an account name is lowercase letters, digits, '_' and '-' only",
        id="name-with-space",
    ),
    pytest.param(
        '[accounts."acme\\n"]\napi_key_env = "ACME_OPENTACT_KEY"\n',
        f"{FILE}: account 'acme\\n': an account name is lowercase letters, digits, '_' and '-' only",
        id="name-with-line-break",
    ),
    pytest.param(
        '[accounts.""]\napi_key_env = "ACME_OPENTACT_KEY"\n',
        f"{FILE}: account '': an account name is lowercase letters, digits, '_' and '-' only",
        id="empty-name",
    ),
    pytest.param(
        '[accounts]\nacme = "ACME_OPENTACT_KEY"\n',
        f"{FILE}: [accounts.acme] must be a table (write `[accounts.acme]` and its keys below it)",
        id="account-not-a-table",
    ),
    pytest.param(
        '[accounts.acme]\nbase_url = "https://api.opentact.org"\n',
        f"{FILE}: [accounts.acme]: give api_key_env (the variable holding its key) "
        "or api_key_block (a Prefect Secret block)",
        id="neither-env-nor-block",
    ),
    pytest.param(
        '[accounts.acme]\napi_key_env = "ACME_OPENTACT_KEY"\napi_key_block = "acme-key"\n',
        f"{FILE}: [accounts.acme]: give api_key_env or api_key_block, not both",
        id="both-env-and-block",
    ),
    pytest.param(
        '[accounts.acme]\napi_key_evn = "ACME_OPENTACT_KEY"\n',
        f"{FILE}: [accounts.acme]: unknown key api_key_evn; {TAKES}",
        id="misspelt-key",
    ),
    pytest.param(
        '[accounts.acme]\napi_key_env = "ACME_OPENTACT_KEY"\nbaseurl = "https://api.stage.opentact.org"\n',
        f"{FILE}: [accounts.acme]: unknown key baseurl; {TAKES}",
        id="misspelt-optional-key",
    ),
    pytest.param(
        f'[accounts.acme]\napi_key = "{PLANTED}"\n',
        f"{FILE}: [accounts.acme]: unknown key api_key (the key itself never goes in this file: "
        f"name the variable or block holding it); {TAKES}",
        id="the-key-itself",
    ),
    pytest.param(
        "[accounts.acme]\napi_key_env = 3\n",
        f"{FILE}: [accounts.acme]: {NOT_A_VARIABLE}, given a number",
        id="env-a-number",
    ),
    pytest.param(
        f'[accounts.acme]\napi_key_env = "{PLANTED}"\n',
        f"{FILE}: [accounts.acme]: {NOT_A_VARIABLE}, given text that is not such a name",
        id="env-the-key-itself",
    ),
    pytest.param(
        '[accounts.acme]\napi_key_env = ""\n',
        f"{FILE}: [accounts.acme]: {NOT_A_VARIABLE}, given an empty string",
        id="env-empty",
    ),
    pytest.param(
        '[accounts.acme]\napi_key_block = "  "\n',
        f"{FILE}: [accounts.acme]: api_key_block must be the name of a Prefect Secret block, given an empty string",
        id="block-blank",
    ),
    pytest.param(
        f'[accounts.acme]\napi_key_block = ["{PLANTED}"]\n',
        f"{FILE}: [accounts.acme]: api_key_block must be the name of a Prefect Secret block, given an array",
        id="block-an-array",
    ),
    pytest.param(
        '[accounts.acme]\napi_key_env = "ACME_OPENTACT_KEY"\nbase_url = true\n',
        f'{FILE}: [accounts.acme]: base_url must be a string such as "https://api.opentact.org", given true/false',
        id="base-url-a-boolean",
    ),
    pytest.param(
        '[accounts.acme]\napi_key_env = "ACME_OPENTACT_KEY"\nbase_url = "ftp://api.opentact.org"\n',
        f"{FILE}: [accounts.acme]: base_url ftp://api.opentact.org is not an http(s) URL "
        "such as https://api.opentact.org",
        id="base-url-not-http",
    ),
    pytest.param(
        '[accounts.acme]\napi_key_env = "ACME_OPENTACT_KEY"\nbase_url = "api.opentact.org"\n',
        f"{FILE}: [accounts.acme]: base_url api.opentact.org is not an http(s) URL such as https://api.opentact.org",
        id="base-url-no-scheme",
    ),
    pytest.param(
        '[accounts.acme]\napi_key_env = "ACME_OPENTACT_KEY"\nbase_url = "http://api.stage.opentact.org"\n',
        f"{FILE}: [accounts.acme]: base_url http://api.stage.opentact.org uses plain http://, which would send "
        "the API key unencrypted: use https:// (plain http is allowed only for loopback hosts such as the local sandbox)",
        id="base-url-plain-http",
    ),
    pytest.param(
        '[accounts.acme]\napi_key_env = "ACME_OPENTACT_KEY"\n'
        f'base_url = "http://ops:{PLANTED}@api.stage.opentact.org/v2?token={PLANTED}"\n',
        f"{FILE}: [accounts.acme]: base_url http://api.stage.opentact.org must not hold a user name or password "
        "(the API key is sent in its own header)",
        id="base-url-with-a-password",
    ),
    pytest.param(
        '[accounts.acme]\napi_key_env = "ACME_OPENTACT_KEY"\n'
        f'base_url = "http://api.stage.opentact.org/v2?token={PLANTED}"\n',
        f"{FILE}: [accounts.acme]: base_url http://api.stage.opentact.org uses plain http://, which would send "
        "the API key unencrypted: use https:// (plain http is allowed only for loopback hosts such as the local sandbox)",
        id="base-url-plain-http-with-a-query-token",
    ),
    pytest.param(
        '[accounts.acme]\napi_key_env = "ACME_OPENTACT_KEY"\n'
        '[accounts.globex]\napi_key_env = "GLOBEX_KEY"\nbase_url = "https://[::1"\n',
        f"{FILE}: [accounts.globex]: base_url https://[::1 is not an http(s) URL such as https://api.opentact.org",
        id="base-url-unparsable-second-account",
    ),
]


@pytest.fixture()
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The working directory is an empty folder; a planted key sits in the variables an account may name."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ACME_OPENTACT_KEY", PLANTED)
    monkeypatch.setenv("GLOBEX_KEY", PLANTED)
    return tmp_path


def refusal(call, *args, **kwargs) -> CdrError:
    with pytest.raises(CdrError) as refused:
        call(*args, **kwargs)
    message = str(refused.value)
    assert "\n" not in message and PLANTED not in message and "PLANTED" not in repr(refused.value)
    return refused.value


@pytest.mark.parametrize(("text", "message"), BAD_FILES)
def test_a_bad_accounts_file_is_one_line_naming_file_account_and_key_and_never_a_key(
    in_tmp: Path, text: str, message: str
) -> None:
    (in_tmp / "accounts.toml").write_text(text, encoding="utf-8")
    error = refusal(load_accounts, Settings())
    assert (type(error), str(error)) == (UsageError, message)
    assert error.exit_code == 2
    assert error.__cause__ is None and error.__context__ is None  # a chained decoding error could quote the file


def test_an_accounts_file_that_cannot_be_read_says_so_in_one_line(in_tmp: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (in_tmp / "latin1.toml").write_bytes(b'[accounts.acme]\napi_key_env = "CL\xc9"\n')
    monkeypatch.setenv("CDR_ACCOUNTS_FILE", "latin1.toml")
    assert str(refusal(load_accounts, Settings())) == "accounts file latin1.toml: not UTF-8 text; write it as UTF-8 TOML"
    (in_tmp / "folder").mkdir()
    monkeypatch.setenv("CDR_ACCOUNTS_FILE", "folder")
    assert str(refusal(load_accounts, Settings())) == "accounts file folder: cannot read it (Is a directory)"


def test_an_accounts_file_variable_naming_no_file_is_refused_not_ignored(in_tmp: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (in_tmp / "accounts.toml").write_text(GOOD, encoding="utf-8")
    monkeypatch.setenv("CDR_ACCOUNTS_FILE", str(in_tmp / "acounts.toml"))
    error = refusal(load_accounts, Settings())
    assert (type(error), str(error)) == (UsageError, f"CDR_ACCOUNTS_FILE={in_tmp / 'acounts.toml'}: there is no such file")


def test_an_inherited_opentact_base_url_is_refused_at_load_naming_the_account_and_never_its_secrets(
    in_tmp: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (in_tmp / "accounts.toml").write_text(GOOD, encoding="utf-8")
    monkeypatch.setenv("OPENTACT_BASE_URL", f"http://ops:{PLANTED}@api.example.com/v2?token={PLANTED}")
    error = refusal(load_accounts, Settings())
    assert (type(error), str(error), error.exit_code) == (
        UsageError,
        f"{FILE}: [accounts.acme] has no base_url of its own, and OPENTACT_BASE_URL http://api.example.com must not "
        "hold a user name or password (the API key is sent in its own header)",
        2,
    )
    monkeypatch.setenv("OPENTACT_BASE_URL", f"http://api.example.com/v2?token={PLANTED}")
    assert str(refusal(load_accounts, Settings())).endswith(
        "OPENTACT_BASE_URL http://api.example.com uses plain http://, which would send the API key unencrypted: use "
        "https:// (plain http is allowed only for loopback hosts such as the local sandbox)"
    )


def test_the_file_of_the_issue_is_read_in_file_order_with_the_base_url_falling_back_to_opentact_base_url(
    in_tmp: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (in_tmp / "accounts.toml").write_text(GOOD, encoding="utf-8")
    monkeypatch.setenv("OPENTACT_BASE_URL", "http://127.0.0.1:8080")
    assert load_accounts(Settings()) == Accounts(
        (
            Account("acme", "ACME_OPENTACT_KEY", None, "http://127.0.0.1:8080"),
            Account("globex", None, "globex-opentact-key", "https://api.stage.opentact.org"),
        ),
        Path("accounts.toml"),
    )
    monkeypatch.delenv("OPENTACT_BASE_URL")
    assert load_accounts(Settings()).accounts[0].base_url == PRODUCTION_URL


def test_the_accounts_keep_the_files_order_and_names_may_include_default(in_tmp: Path) -> None:
    (in_tmp / "accounts.toml").write_text(
        "".join(f'[accounts.{name}]\napi_key_env = "K"\n' for name in ("zeta", "default", "a-1", "b_2")), encoding="utf-8"
    )
    assert load_accounts(Settings()).names == ("zeta", "default", "a-1", "b_2")


def test_with_no_file_the_one_key_of_today_is_the_account_default(in_tmp: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENTACT_API_KEY", PLANTED)
    settings = Settings()
    configured = load_accounts(settings)
    assert configured == Accounts((Account(DEFAULT_ACCOUNT, "OPENTACT_API_KEY", None, PRODUCTION_URL),), None)
    assert select_accounts(configured) == configured.accounts
    assert account_api_key(configured.accounts[0], settings).get_secret_value() == PLANTED
    monkeypatch.setenv("OPENTACT_BASE_URL", "https://api.stage.opentact.org")
    assert load_accounts(Settings()).accounts[0].base_url == "https://api.stage.opentact.org"


def test_with_no_file_a_missing_key_is_refused_exactly_as_before_accounts(in_tmp: Path) -> None:
    settings = Settings()
    (default,) = load_accounts(settings).accounts
    today = refusal(ClientConfig.from_settings, settings)
    error = refusal(account_api_key, default, settings)
    assert (type(error), str(error)) == (type(today), str(today))


def test_the_default_accounts_key_is_the_settings_one_an_override_included(in_tmp: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The flows put a Secret block's key in with `with_overrides`: the default account must use it.
    monkeypatch.setenv("OPENTACT_API_KEY", "sk-from-the-environment")
    settings = Settings().with_overrides(opentact_api_key=SecretStr(PLANTED))
    (default,) = load_accounts(settings).accounts
    assert account_api_key(default, settings).get_secret_value() == PLANTED


def test_cdr_accounts_file_beats_the_working_directorys_accounts_toml(in_tmp: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (in_tmp / "accounts.toml").write_text('[accounts.local]\napi_key_env = "K"\n', encoding="utf-8")
    (in_tmp / "elsewhere").mkdir()
    named = in_tmp / "elsewhere" / "production.toml"
    named.write_text('[accounts.named]\napi_key_env = "K"\n', encoding="utf-8")
    assert (accounts_file(Settings()), load_accounts(Settings()).names) == (Path("accounts.toml"), ("local",))
    monkeypatch.setenv("CDR_ACCOUNTS_FILE", str(named))
    assert (accounts_file(Settings()), load_accounts(Settings()).names) == (named, ("named",))
    monkeypatch.setenv("CDR_ACCOUNTS_FILE", "")  # empty means not set, as for every variable
    assert load_accounts(Settings()).names == ("local",)
    monkeypatch.delenv("CDR_ACCOUNTS_FILE")
    (in_tmp / ".env").write_text(f"CDR_ACCOUNTS_FILE={named}\n", encoding="utf-8")
    assert load_accounts(load_settings()).names == ("named",)
    monkeypatch.chdir(in_tmp / "elsewhere")  # ./accounts.toml is the working directory's, not the project's
    assert (accounts_file(Settings()), load_accounts(Settings()).source) == (None, None)


@pytest.fixture()
def three(in_tmp: Path) -> Accounts:
    (in_tmp / "accounts.toml").write_text(
        "".join(f'[accounts.{name}]\napi_key_env = "{name.upper()}_KEY"\n' for name in ("acme", "globex", "initech")),
        encoding="utf-8",
    )
    return load_accounts(Settings())


SELECTIONS = [
    pytest.param(None, False, ("acme", "globex", "initech"), id="neither-means-all"),
    pytest.param([], False, ("acme", "globex", "initech"), id="an-unset-repeatable-option-means-all"),
    pytest.param(None, True, ("acme", "globex", "initech"), id="all-accounts"),
    pytest.param("globex", False, ("globex",), id="one"),
    pytest.param("initech,acme", False, ("acme", "initech"), id="file-order"),
    pytest.param("acme, globex,acme", False, ("acme", "globex"), id="spaces-and-repeats"),
    pytest.param(["initech", "acme,globex"], False, ("acme", "globex", "initech"), id="option-repeated"),
]


@pytest.mark.parametrize(("account", "all_accounts", "chosen"), SELECTIONS)
def test_choosing_accounts_gives_them_in_file_order(three: Accounts, account, all_accounts: bool, chosen) -> None:
    assert tuple(a.name for a in select_accounts(three, account, all_accounts=all_accounts)) == chosen


REFUSED_SELECTIONS = [
    pytest.param("acme", True, "--account and --all-accounts together: give one (--all-accounts syncs every account)",
                 id="both-options"),
    pytest.param("umbrella", False, "unknown account umbrella; the accounts configured in accounts.toml: acme, globex, initech",
                 id="unknown"),
    pytest.param("Acme,umbrella,acme,umbrella", False,
                 "unknown accounts Acme, umbrella; the accounts configured in accounts.toml: acme, globex, initech",
                 id="several-unknown"),
    pytest.param("acme,", False, "--account needs account names separated by commas, such as --account acme,globex",
                 id="trailing-comma"),
    pytest.param("", False, "--account needs account names separated by commas, such as --account acme,globex",
                 id="empty"),
]


@pytest.mark.parametrize(("account", "all_accounts", "message"), REFUSED_SELECTIONS)
def test_a_bad_choice_of_accounts_is_one_line(three: Accounts, account: str, all_accounts: bool, message: str) -> None:
    error = refusal(select_accounts, three, account, all_accounts=all_accounts)
    assert (type(error), str(error)) == (UsageError, message)


def test_with_no_file_only_default_can_be_chosen(in_tmp: Path) -> None:
    configured = load_accounts(Settings())
    assert select_accounts(configured, "default") == configured.accounts
    assert str(refusal(select_accounts, configured, "acme")) == (
        "unknown account acme; the accounts configured with no accounts file: default"
    )


def test_a_key_is_read_only_when_its_account_asks_so_an_unset_variable_stops_only_its_account(
    three: Accounts, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ACME_KEY", PLANTED)
    monkeypatch.setenv("GLOBEX_KEY", "")
    acme, globex, initech = select_accounts(three)
    settings = Settings()
    assert account_api_key(acme, settings).get_secret_value() == PLANTED
    assert PLANTED not in repr(account_api_key(acme, settings)) + str(account_api_key(acme, settings))
    for account, variable in ((globex, "GLOBEX_KEY"), (initech, "INITECH_KEY")):
        error = refusal(account_api_key, account, settings)
        assert (type(error), str(error)) == (
            UsageError,
            f"account {account.name}: {variable} is not set (or is empty): export it with the account's API key",
        )


@pytest.mark.parametrize(
    ("key", "problem"),
    [
        (f"{PLANTED}\n", "it has leading or trailing whitespace"),
        (f"{PLANTED[:8]} {PLANTED[8:]}", "it contains a space, a control character or a non-ASCII character"),
    ],
)
def test_an_unusable_key_in_an_accounts_variable_names_the_account_and_variable_never_the_key(
    three: Accounts, monkeypatch: pytest.MonkeyPatch, key: str, problem: str
) -> None:
    monkeypatch.setenv("GLOBEX_KEY", key)
    error = refusal(account_api_key, select_accounts(three, "globex")[0], Settings())
    assert (type(error), str(error)) == (
        UsageError,
        f"account globex: GLOBEX_KEY is not allowed: {problem}; set it to the key exactly as issued",
    )


def test_an_accounts_variable_is_read_from_dotenv_as_the_settings_are_the_environment_first(
    three: Accounts, monkeypatch: pytest.MonkeyPatch, in_tmp: Path
) -> None:
    (in_tmp / ".env").write_text(f"ACME_KEY={PLANTED}\nGLOBEX_KEY=from-dotenv\n", encoding="utf-8")
    monkeypatch.setenv("GLOBEX_KEY", "from-the-environment")
    settings = load_settings().with_overrides(timezone="Europe/Berlin")  # an override keeps the .env
    acme, globex, _ = three.accounts
    assert account_api_key(acme, settings).get_secret_value() == PLANTED
    assert account_api_key(globex, settings).get_secret_value() == "from-the-environment"
    assert Settings().variable("ACME_KEY") is None  # settings made without a .env do not read one


def test_an_account_may_name_opentact_api_key_and_gets_the_settings_key(in_tmp: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (in_tmp / "accounts.toml").write_text('[accounts.main]\napi_key_env = "OPENTACT_API_KEY"\n', encoding="utf-8")
    (main,) = load_accounts(Settings()).accounts
    error = refusal(account_api_key, main, Settings())
    assert str(error) == "account main: OPENTACT_API_KEY is not set (or is empty): export it with the account's API key"
    monkeypatch.setenv("OPENTACT_API_KEY", PLANTED)
    assert account_api_key(main, Settings()).get_secret_value() == PLANTED


@pytest.mark.parametrize("pasted", ["sKlive0PLANTED0123456789abcdef", "planted_0123456789abcdef"])
def test_a_key_of_letters_and_digits_pasted_as_api_key_env_is_never_in_the_message(
    in_tmp: Path, monkeypatch: pytest.MonkeyPatch, pasted: str
) -> None:
    # It passes as a variable name; the sync logs its refusal (state/syncs.json, Prefect's logs).
    (in_tmp / "accounts.toml").write_text(f'[accounts.acme]\napi_key_env = "{pasted}"\n', encoding="utf-8")
    (acme,) = load_accounts(Settings()).accounts
    monkeypatch.delenv(pasted, raising=False)
    error = refusal(account_api_key, acme, Settings())
    assert pasted not in str(error) and pasted not in repr(error)
    assert str(error) == (
        "account acme: the variable its api_key_env names is not set (or is empty): export it with the account's "
        "API key, or correct api_key_env (the variable's name, never the key itself)"
    )


GLOBEX = Account("globex", None, "globex-opentact-key", "https://api.stage.opentact.org")
BLOCK = "account globex: Prefect Secret block globex-opentact-key"


def test_a_block_key_is_read_with_the_callable_given_by_name(in_tmp: Path) -> None:
    asked: list[str] = []

    def read(name: str) -> str:
        asked.append(name)
        return PLANTED

    assert account_api_key(GLOBEX, Settings(), read).get_secret_value() == PLANTED
    assert asked == ["globex-opentact-key"]


def _raise(error: Exception):
    def read(name: str) -> str:
        raise error

    return read


BLOCK_REFUSALS = [
    pytest.param(lambda name: None, UsageError, f"{BLOCK} does not exist: create it (or correct api_key_block)",
                 id="missing-block"),
    pytest.param(lambda name: f" {PLANTED}", UsageError,
                 f"{BLOCK} is not allowed: it has leading or trailing whitespace; store the key exactly as issued",
                 id="unusable-key"),
    pytest.param(lambda name: "", UsageError,
                 f"{BLOCK} is not allowed: it is empty; store the key exactly as issued", id="empty-key"),
    pytest.param(_raise(UsageError("holds dict data, not the key as text")), UsageError,
                 f"{BLOCK}: holds dict data, not the key as text", id="not-text"),
    pytest.param(_raise(ConnectionError("All connection attempts failed\nretrying")), CdrError,
                 f"{BLOCK} could not be read: All connection attempts failed retrying", id="prefect-api-down"),
    pytest.param(None, CdrError,
                 f"{BLOCK} cannot be read here: Prefect Secret blocks are read by the Prefect flows", id="no-reader"),
]


@pytest.mark.parametrize(("read", "kind", "message"), BLOCK_REFUSALS)
def test_a_block_that_gives_no_usable_key_is_one_line_naming_the_account_and_block(
    in_tmp: Path, read, kind: type[CdrError], message: str
) -> None:
    error = refusal(account_api_key, GLOBEX, Settings(), read)
    assert (type(error), str(error)) == (kind, message)

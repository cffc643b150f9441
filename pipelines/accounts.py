"""Accounts: the names the lake, the state and every model are keyed by, and where each one's key is.

One Opentact API key belongs to one account. The accounts are the `[accounts.<name>]` tables of a
TOML file (`CDR_ACCOUNTS_FILE`, else `./accounts.toml` if there is one); with no file, the single
key of today (`OPENTACT_API_KEY`) is the account `default`.

A file is checked whole when it is loaded; a key is read only when its account's key is asked for,
so one account's unset variable does not stop a sync of another. A key never appears in a message.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from pydantic import SecretStr

from pipelines.errors import CdrError, UsageError, clip, one_line
from pipelines.settings import (
    Settings,
    api_key_problem,
    api_key_refusal,
    base_url_refusal,
    missing_api_key,
    read_toml,
    shown_value,
)

DEFAULT_ACCOUNT = "default"

# Up to this many accounts, each is shown: a terminal shows each one's figures (`cdr sync`'s summary, `cdr status`)
# and the dashboards' header each one's link. A reseller's hundreds would bury what needs a look: a terminal shows
# their totals and only the accounts that need it, the header folds the links into a menu.
SHOWN_ACCOUNTS = 10

# Lowercase, so an account's folder name is the same on every filesystem.
_ACCOUNT_NAME = re.compile(r"^[a-z0-9_-]+$")

# Read from the working directory, as a shell's relative paths are (as .env is).
ACCOUNTS_FILE = Path("accounts.toml")

# The variable that holds the key with no accounts file; Settings reads it as `opentact_api_key`.
API_KEY_VARIABLE = "OPENTACT_API_KEY"

# The keys an [accounts.<name>] table takes.
ACCOUNT_KEYS = ("api_key_env", "api_key_block", "base_url")

# Someone who writes `api_key = "..."` is told where the key goes instead.
_API_KEY_HINT = " (the key itself never goes in this file: name the variable or block holding it)"

# A portable environment variable name: a name such as "sk-live-..." is a pasted key, not a variable.
_VARIABLE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

# A name of an unset variable is quoted only in the conventional form (capitals, digits and '_'): any other
# passes as a name but may be a key of letters and digits pasted in its place, and messages are logged.
_CONVENTIONAL_VARIABLE = re.compile(r"^[A-Z_][A-Z0-9_]*$")


def account_name_problem(name: str) -> str | None:
    """A candidate account name -> why it cannot name an account, or None if it can."""
    if not _ACCOUNT_NAME.fullmatch(name):
        return "an account name is lowercase letters, digits, '_' and '-' only"
    return None


@dataclass(frozen=True, slots=True)
class Account:
    """One account: its name, where its key is (exactly one of a variable or a Prefect Secret block), its API.

    `base_url` is the account's own, else OPENTACT_BASE_URL's. The key itself is not kept here: see
    `account_api_key`.
    """

    name: str
    api_key_env: str | None
    api_key_block: str | None
    base_url: str


@dataclass(frozen=True, slots=True)
class Accounts:
    """The configured accounts in file order, and the file they came from (None: no file, only `default`)."""

    accounts: tuple[Account, ...]
    source: Path | None

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(account.name for account in self.accounts)


# Reads a Prefect Secret block by name -> its text, or None if there is no block of that name.
# Prefect lives only in pipelines/flows/, which provides one (`read_secret_block`).
BlockReader = Callable[[str], str | None]


def accounts_file(settings: Settings) -> Path | None:
    """The accounts file to read: CDR_ACCOUNTS_FILE (UsageError if it does not exist), else ./accounts.toml
    if there is one, else None."""
    if settings.accounts_file is not None:
        path = Path(settings.accounts_file)
        if not path.exists():
            raise UsageError(f"CDR_ACCOUNTS_FILE={clip(str(path))}: there is no such file")
        return path
    return ACCOUNTS_FILE if ACCOUNTS_FILE.exists() else None


def load_accounts(settings: Settings) -> Accounts:
    """Settings -> the configured accounts; UsageError, one line naming the file, account and key, for a bad file.

    With no file, the one account `default`, whose key is OPENTACT_API_KEY: zero-config as before accounts.
    """
    path = accounts_file(settings)
    if path is None:
        default = Account(DEFAULT_ACCOUNT, API_KEY_VARIABLE, None, settings.opentact_base_url)
        return Accounts((default,), None)
    shown = f"accounts file {clip(str(path))}"
    document = read_toml(path, shown)
    unknown = [key for key in document if key != "accounts"]
    if unknown:
        raise UsageError(
            f"{shown}: unknown table or key {shown_value(unknown[0])}; the file takes [accounts.<name>] tables only"
        )
    tables = document.get("accounts")
    if tables is None:
        raise UsageError(f"{shown}: no [accounts] table; write one [accounts.<name>] table per account")
    if not isinstance(tables, dict):
        raise UsageError(f"{shown}: `accounts` must be a table of [accounts.<name>] tables, not a value")
    if not tables:
        raise UsageError(f"{shown}: [accounts] has no accounts; write one [accounts.<name>] table per account")
    return Accounts(tuple(_account(name, table, settings, shown) for name, table in tables.items()), path)


def _account(name: str, table: object, settings: Settings, shown: str) -> Account:
    """One [accounts.<name>] table -> its account; UsageError naming the file, the account and the key at fault."""
    if problem := account_name_problem(name):
        raise UsageError(f"{shown}: account {shown_value(name)}: {problem}")
    where = f"{shown}: [accounts.{name}]"
    if not isinstance(table, dict):
        raise UsageError(f"{where} must be a table (write `[accounts.{name}]` and its keys below it)")
    for key in table:
        if key not in ACCOUNT_KEYS:
            hint = _API_KEY_HINT if key == "api_key" else ""
            raise UsageError(
                f"{where}: unknown key {shown_value(key)}{hint}; an account takes {', '.join(ACCOUNT_KEYS)}"
            )
    env, block, base_url = (table.get(key) for key in ACCOUNT_KEYS)
    if env is None and block is None:
        raise UsageError(
            f"{where}: give api_key_env (the variable holding its key) or api_key_block (a Prefect Secret block)"
        )
    if env is not None and block is not None:
        raise UsageError(f"{where}: give api_key_env or api_key_block, not both")
    # The values are never quoted: a key pasted where a name belongs would be shown.
    if env is not None and not (isinstance(env, str) and _VARIABLE_NAME.fullmatch(env)):
        raise UsageError(
            f"{where}: api_key_env must be the name of an environment variable (letters, digits and '_'), "
            f"given {_kind(env)}"
        )
    if block is not None and not (isinstance(block, str) and block.strip() and block.isprintable()):
        raise UsageError(f"{where}: api_key_block must be the name of a Prefect Secret block, given {_kind(block)}")
    if base_url is None:
        # Inherited, it is refused here too, before any account is synced, naming the account it would serve.
        base_url = settings.opentact_base_url
        if refusal := base_url_refusal("OPENTACT_BASE_URL", base_url):
            raise UsageError(f"{where} has no base_url of its own, and {refusal}")
    elif not isinstance(base_url, str):
        raise UsageError(
            f'{where}: base_url must be a string such as "https://api.opentact.org", given {_kind(base_url)}'
        )
    elif refusal := base_url_refusal("base_url", base_url):
        raise UsageError(f"{where}: {refusal}")
    return Account(name, env, block, base_url)


def _kind(value: object) -> str:
    """A bad value -> what it is, without quoting it."""
    if isinstance(value, str):
        return "an empty string" if not value.strip() else "text that is not such a name"
    if isinstance(value, bool):
        return "true/false"
    return {int: "a number", float: "a number", dict: "a table", list: "an array"}.get(type(value), "a date or time")


def select_accounts(
    configured: Accounts, account: str | Iterable[str] | None = None, *, all_accounts: bool = False
) -> tuple[Account, ...]:
    """The configured accounts and the command line's choice -> the accounts to sync, in file order.

    `account` is `--account NAME[,NAME...]` (a string, or one per repetition of the option; None or
    empty: not given); `all_accounts` is `--all-accounts`. Neither means every configured account:
    the nightly run syncs them all with no option to keep in step with the file, and with no
    accounts file that is `default` alone, as before accounts. UsageError for both options at once,
    an empty name, or a name that is not configured (listing the configured ones).
    """
    given = [account] if isinstance(account, str) else list(account or ())
    if not given:
        return configured.accounts
    if all_accounts:
        raise UsageError("--account and --all-accounts together: give one (--all-accounts syncs every account)")
    wanted = [name.strip() for option in given for name in option.split(",")]
    if not wanted or not all(wanted):
        raise UsageError("--account needs account names separated by commas, such as --account acme,globex")
    unknown = [name for name in dict.fromkeys(wanted) if name not in configured.names]
    if unknown:
        where = f"in {clip(str(configured.source))}" if configured.source else "with no accounts file"
        raise UsageError(
            f"unknown account{'s' if len(unknown) > 1 else ''} {', '.join(shown_value(name) for name in unknown)}; "
            f"the accounts configured {where}: {', '.join(configured.names)}"
        )
    return tuple(a for a in configured.accounts if a.name in wanted)


def unsynced_accounts_warning(configured: Accounts, held: Iterable[str]) -> str | None:
    """The configured accounts and those a data dir holds -> a one-line warning naming the held ones no sync of
    this configuration reaches, or None.

    An accounts file added to a data dir synced without one leaves `default` out unless the file names it, and a
    sync run where the file is not found syncs `default` alone: either way an account goes stale silently while
    its data stays in every report (and a month it stops inside is refused as partial).
    """
    unlisted = [name for name in held if name not in configured.names]
    if not unlisted:
        return None
    them = f"account{'s' if len(unlisted) > 1 else ''} {', '.join(unlisted)}"
    if configured.source is None:
        return (
            f"warning: this data dir also holds {them}, which only an accounts file syncs, and none was found "
            f"(CDR_ACCOUNTS_FILE is unset and there is no {ACCOUNTS_FILE} in {clip(str(Path.cwd()))}): "
            f"this sync is of the account {DEFAULT_ACCOUNT} alone"
        )
    again = f"add [accounts.{unlisted[0]}] to it" if len(unlisted) == 1 else "add their tables to it"
    if DEFAULT_ACCOUNT in unlisted:
        again += f' ({DEFAULT_ACCOUNT}: api_key_env = "{API_KEY_VARIABLE}", the key of before the file)'
    it, its = ("them", "their") if len(unlisted) > 1 else ("it", "its")
    return (
        f"warning: this data dir also holds {them}, which {clip(str(configured.source))} does not list: no sync "
        f"reaches {it} and reports still include {its} data; to sync {it}, {again}"
    )


def account_api_key(account: Account, settings: Settings, read_block: BlockReader | None = None) -> SecretStr:
    """An account -> its API key, read now from its variable (as Settings reads variables) or its Prefect Secret
    block (with `read_block`); UsageError naming the account and the variable or block if there is no usable key.

    The `default` account of no accounts file keeps today's message for a missing OPENTACT_API_KEY.
    """
    if account.api_key_block is not None:
        return _block_key(account, account.api_key_block, read_block)
    variable = account.api_key_env or API_KEY_VARIABLE
    # Settings has read (and checked) OPENTACT_API_KEY already, an override included.
    secret = settings.opentact_api_key if variable == API_KEY_VARIABLE else settings.variable(variable)
    key = secret.get_secret_value() if isinstance(secret, SecretStr) else secret
    if key is None:
        if variable == API_KEY_VARIABLE and account.name == DEFAULT_ACCOUNT:
            raise missing_api_key(settings)
        if not _CONVENTIONAL_VARIABLE.fullmatch(variable):
            raise UsageError(
                f"account {account.name}: the variable its api_key_env names is not set (or is empty): export it "
                "with the account's API key, or correct api_key_env (the variable's name, never the key itself)"
            )
        raise UsageError(
            f"account {account.name}: {variable} is not set (or is empty): export it with the account's API key"
        )
    if problem := api_key_problem(key):
        raise UsageError(f"account {account.name}: {api_key_refusal(problem, variable)}")
    return SecretStr(key)


def check_some_key(accounts: Iterable[Account], settings: Settings) -> None:
    """UsageError, before a sync starts, when none of `accounts` has a usable key in its variable: one line of
    each one's refusal. A sync with one such account left runs, and fails the others alone; an account of a
    Prefect Secret block may have its key (only the flow reads blocks)."""
    problems = []
    for account in accounts:
        if account.api_key_block is not None:
            return
        try:
            account_api_key(account, settings)
        except UsageError as exc:
            problems.append(str(exc))
        else:
            return
    if problems:
        raise UsageError("; ".join(problems))


def _block_key(account: Account, block: str, read_block: BlockReader | None) -> SecretStr:
    named = f"account {account.name}: Prefect Secret block {shown_value(block)}"
    if read_block is None:
        raise CdrError(f"{named} cannot be read here: Prefect Secret blocks are read by the Prefect flows")
    try:
        key = read_block(block)
    except CdrError as exc:
        raise (UsageError if isinstance(exc, UsageError) else CdrError)(f"{named}: {exc}") from None
    except Exception as exc:  # an unreachable Prefect API, ...: still one line naming the account
        raise CdrError(f"{named} could not be read: {one_line(exc)}") from exc
    if key is None:
        raise UsageError(f"{named} does not exist: create it (or correct api_key_block)")
    if problem := api_key_problem(key):
        raise UsageError(f"{named} is not allowed: {problem}; store the key exactly as issued")
    return SecretStr(key)

"""WarehouseResource.arrow_connection (the ADBC connection the IO manager loads through) against
a real Postgres: the same settings as connection(), any password, one transaction."""

import secrets

import adbc_driver_manager
import psycopg2
import pytest
from psycopg2 import sql

from flights_shared.warehouse import WarehouseConnectionError, WarehouseResource

# Every character with a meaning in a URI (and a space, quotes, a percent sign, non-ASCII).
URI_CHARACTERS = "@:/?#&=+% '\"é"


@pytest.mark.postgres
def test_wrong_password_names_user_host_and_database_not_the_password(warehouse):
    bad = warehouse.model_copy(update={"password": "definitely-wrong"})
    with pytest.raises(WarehouseConnectionError) as excinfo:
        with bad.arrow_connection():
            pass
    message = str(excinfo.value)
    assert f"warehouse {warehouse.dbname!r} at {warehouse.host}:{warehouse.port} as {warehouse.user!r}" in message
    assert "password authentication failed" in message
    assert "definitely-wrong" not in message
    assert "definitely-wrong" not in str(excinfo.value.__cause__)
    assert isinstance(excinfo.value.__cause__, adbc_driver_manager.OperationalError)


@pytest.mark.postgres
def test_user_and_password_with_uri_characters_connect(warehouse, postgres_server):
    """User name and password are percent-encoded into the URI, never spliced in raw."""
    user = "load@er:/x"
    password = secrets.token_urlsafe(8) + URI_CHARACTERS
    admin = psycopg2.connect(**postgres_server)
    admin.autocommit = True
    try:
        with admin.cursor() as cursor:
            cursor.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
                sql.Identifier(user), sql.Literal(password)))  # fmt: skip
            cursor.execute(sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(
                sql.Identifier(warehouse.dbname), sql.Identifier(user)))  # fmt: skip
        awkward = WarehouseResource(host=warehouse.host, port=warehouse.port, dbname=warehouse.dbname,
                                    user=user, password=password, application_name="load r&d")
        with awkward.arrow_connection() as conn, conn.cursor() as cursor:
            cursor.execute("SELECT current_user, current_database(), current_setting('application_name')")
            assert cursor.fetchone() == (user, warehouse.dbname, "load r&d")
    finally:
        with admin.cursor() as cursor:
            cursor.execute(sql.SQL("REVOKE CONNECT ON DATABASE {} FROM {}").format(
                sql.Identifier(warehouse.dbname), sql.Identifier(user)))  # fmt: skip
            cursor.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(user)))
        admin.close()


@pytest.mark.postgres
def test_arrow_connection_commits_on_exit_and_rolls_back_on_error(clean_warehouse, sql_rows):
    """The IO manager's delete-and-load is atomic because this context is one transaction."""
    with clean_warehouse.connection() as conn, conn.cursor() as cursor:
        cursor.execute("CREATE SCHEMA arrowtest; CREATE TABLE arrowtest.t (v int)")
    with pytest.raises(RuntimeError, match="boom"):
        with clean_warehouse.arrow_connection() as conn, conn.cursor() as cursor:
            cursor.execute("INSERT INTO arrowtest.t VALUES (1)")
            raise RuntimeError("boom")
    assert sql_rows(clean_warehouse, "SELECT count(*) FROM arrowtest.t") == [(0,)]
    with clean_warehouse.arrow_connection() as conn, conn.cursor() as cursor:
        cursor.execute("INSERT INTO arrowtest.t VALUES (2)")
    assert sql_rows(clean_warehouse, "SELECT v FROM arrowtest.t") == [(2,)]


class _Refused(Exception):
    pass


def test_a_transient_refusal_is_retried_until_the_server_answers():
    """What a run in flight sees while Postgres restarts: refused, then reset, then a connection."""
    from flights_shared.warehouse import connect_with_retry

    outcomes = [_Refused("connection refused"), _Refused("server closed the connection unexpectedly"), "conn"]

    def connect():
        outcome = outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    assert connect_with_retry(connect, (_Refused,), retry_seconds=10, describe="warehouse 'w'") == "conn"
    assert outcomes == []


def test_a_wrong_password_is_not_retried_and_a_dead_server_only_for_so_long():
    from flights_shared.warehouse import connect_with_retry

    calls = []

    def wrong_password():
        calls.append(1)
        raise _Refused('FATAL:  password authentication failed for user "w"')

    with pytest.raises(WarehouseConnectionError, match="^cannot connect to warehouse 'w': FATAL"):
        connect_with_retry(wrong_password, (_Refused,), retry_seconds=30, describe="warehouse 'w'")
    assert len(calls) == 1

    def dead():
        raise _Refused("connection refused")

    with pytest.raises(WarehouseConnectionError, match=r"after \d+ attempts over 1 s\): connection refused"):
        connect_with_retry(dead, (_Refused,), retry_seconds=1, describe="warehouse 'w'")


@pytest.mark.postgres
@pytest.mark.parametrize("kind", ["connection", "arrow_connection"])
def test_an_unreachable_warehouse_fails_after_the_retry_window_naming_it(warehouse, kind):
    import socket

    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    gone = warehouse.model_copy(update={"host": "127.0.0.1", "port": closed, "connect_retry_seconds": 1})
    with pytest.raises(WarehouseConnectionError) as excinfo:
        with getattr(gone, kind)():
            pass
    assert f"warehouse {warehouse.dbname!r} at 127.0.0.1:{closed}" in str(excinfo.value)
    assert "attempts over 1 s" in str(excinfo.value)

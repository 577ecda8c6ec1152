"""The stand-in's tables in PostgreSQL, as the real server keeps them there: one table each
(`id`, the row as JSON), so that `make backup`, `make restore` and `make upgrade-db` carry
and count them as they do the server's. Loaded at start; the rows that changed written
every FLUSH_SECONDS after a change, and when the stand-in stops."""

import json
import threading
import time

FLUSH_SECONDS = 1.0
CONNECT_SECONDS = 60.0


class Store:
    def __init__(self, url: str):
        import psycopg2  # here: only the e2e's base image has it, and only apollo needs it

        deadline = time.monotonic() + CONNECT_SECONDS
        while True:
            try:
                self.connection = psycopg2.connect(url)
                break
            except psycopg2.OperationalError:  # the database still starting
                if time.monotonic() > deadline:
                    raise
                time.sleep(1)
        self.written = {}  # table -> id -> the JSON last written

    def load(self, names) -> dict:
        """Each table's rows, its table made where it is new."""
        tables = {}
        with self.connection, self.connection.cursor() as cursor:
            for name in names:
                cursor.execute(
                    f'CREATE TABLE IF NOT EXISTS "{name}" (id text PRIMARY KEY, row jsonb NOT NULL)'
                )
                cursor.execute(f'SELECT id, row::text FROM "{name}"')
                tables[name] = {key: json.loads(text) for key, text in cursor.fetchall()}
        self.written = as_json(tables)
        return tables

    def write(self, tables: dict) -> None:
        """The rows added, changed or gone since the last write, in one transaction."""
        from psycopg2.extras import execute_values

        current = as_json(tables)
        with self.connection, self.connection.cursor() as cursor:
            for name, rows in current.items():
                before = self.written.get(name, {})
                gone = [key for key in before if key not in rows]
                changed = [(key, text) for key, text in rows.items() if before.get(key) != text]
                if gone:
                    cursor.execute(f'DELETE FROM "{name}" WHERE id = ANY(%s)', (gone,))
                if changed:
                    execute_values(
                        cursor,
                        f'INSERT INTO "{name}" (id, row) VALUES %s '
                        "ON CONFLICT (id) DO UPDATE SET row = EXCLUDED.row",
                        changed,
                    )
        self.written = current


def as_json(tables: dict) -> dict:
    """Each row as the JSON written for it, the same text for the same row."""
    return {
        name: {key: json.dumps(row, default=str, sort_keys=True) for key, row in rows.items()}
        for name, rows in tables.items()
    }


def keep_in(standin, url: str, stopped: threading.Event) -> threading.Thread:
    """Loads `standin`'s tables from the database at `url`, then writes them back after
    each change until `stopped`, and once more then (the thread ends after that write)."""
    store = Store(url)
    standin.tables = store.load(standin.tables)

    def keep() -> None:
        written = standin.changes
        while not stopped.wait(FLUSH_SECONDS):
            if standin.changes != written:
                with standin.lock:
                    written = standin.changes
                    store.write(standin.tables)
        with standin.lock:
            store.write(standin.tables)

    thread = threading.Thread(target=keep)
    thread.start()
    return thread

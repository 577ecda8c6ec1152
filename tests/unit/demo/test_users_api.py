import csv
import io
import json
import urllib.error
import urllib.request

import pytest

from demo.users_api import COLUMNS, DemoUsersAPI, users_csv


def test_the_same_seed_page_and_size_give_the_same_users():
    page = users_csv("seed", 2, 5)
    rows = list(csv.reader(io.StringIO(page)))
    assert rows[0] == list(COLUMNS) and len(rows) == 6 and len({len(row) for row in rows}) == 1
    assert users_csv("seed", 2, 5) == page and users_csv("seed", 3, 5) != page


def test_a_client_over_its_limit_gets_429_until_the_window_ends():
    with DemoUsersAPI(lifetime=30, limit=10, window=300) as api:
        urllib.request.urlopen(f"{api.url}?results=10&format=csv&seed=a", timeout=5).close()
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(f"{api.url}?results=1&format=csv&seed=a", timeout=5)
        assert refused.value.code == 429 and "error" in json.loads(refused.value.read())
        assert api.rejected == 1 and [query["results"] for query in api.requests] == ["10", "1"]

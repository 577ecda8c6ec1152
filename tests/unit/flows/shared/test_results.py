import pickle

import pytest

from flows.shared.results import RunFolderResult


class Planted:
    """What a pickle planted by an attacker does when read: writes a file."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def test_a_result_is_written_and_read_back_in_the_runs_folder(tmp_path):
    result = RunFolderResult(folder=lambda: tmp_path / "results")
    written = result.write([1, 2, 3], task_full_name="download_data[0]")
    assert written.location == str(tmp_path / "results" / "download_data[0].prefect")
    assert result.read(written.location).value == [1, 2, 3]


@pytest.mark.parametrize("where", ["elsewhere/planted.prefect", "results/../planted.prefect"])
def test_a_location_anywhere_else_is_refused_before_anything_is_unpickled(tmp_path, where):
    marker = tmp_path / "unpickled"
    planted = tmp_path / where
    planted.parent.mkdir(parents=True, exist_ok=True)
    planted.write_bytes(pickle.dumps(Planted(marker)))
    result = RunFolderResult(folder=lambda: tmp_path / "results")
    with pytest.raises(ValueError) as refused:
        result.read(str(planted))
    assert str(refused.value) == (
        f"refused to read a task result from {planted}: results are read from this run's own folder "
        f"{tmp_path / 'results'} only"
    )
    assert not marker.exists()

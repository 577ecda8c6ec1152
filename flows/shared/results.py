"""Task results read only from the run's own result folder.

A task run's state, as anyone reaching the API may set it, names where its result is (a
LocalResult's `location`); the next container of the run reads every finished upstream
task's result from there, and reading one unpickles it: any file a flow container can
read would run as code in it, with its secrets (prefect 0.15.9 engine/cloud/task_runner.py
load_results, engine/state.py load_result: the flow's own result object reads).
"""

from pathlib import Path
from typing import Callable

from prefect.engine.results import LocalResult


class RunFolderResult(LocalResult):
    """Prefect's LocalResult, writing and reading only inside `folder()`: a location
    anywhere else fails the task, naming it, before anything is read."""

    def __init__(self, folder: Callable[[], Path], **kwargs):
        super().__init__(validate_dir=False, location=self.location_in_folder, **kwargs)
        self.folder = folder

    def location_in_folder(self, task_full_name: str, **_context) -> str:
        """Absolute, so that the result's own `dir` (Prefect's home, never made) plays no part."""
        return str(self.folder().resolve() / f"{task_full_name}.prefect")

    def read(self, location: str):
        folder = self.folder().resolve()
        if folder not in Path(location).resolve().parents:
            raise ValueError(
                f"refused to read a task result from {location}: results are read from this "
                f"run's own folder {folder} only"
            )
        return super().read(location)

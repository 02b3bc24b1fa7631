"""MLflow tracking: the run layout and logging (:mod:`.tracker`) apart from the plots it logs
(:mod:`.plots`). Importing this package imports mlflow; the pipeline does so only when tracking
is on."""

from augment.tracking.tracker import (
    JobTracker,
    LossLogger,
    is_server_uri,
    resolve_tracking_uri,
    run_link,
)

__all__ = ["JobTracker", "LossLogger", "is_server_uri", "resolve_tracking_uri", "run_link"]

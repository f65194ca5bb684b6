"""Former home of the ``/v1/jobs`` router, now :mod:`emorec.service.routes.jobs`; its names
still import from here."""

from emorec.service.routes.jobs import (
    MEDIA_TYPES,
    NOT_FOUND,
    JobPage,
    JobStatus,
    QueueDep,
    job_status,
    router,
)

__all__ = ["MEDIA_TYPES", "NOT_FOUND", "JobPage", "JobStatus", "QueueDep", "job_status", "router"]

"""The HTTP service: ``emorec serve`` (FastAPI), batch jobs, history in a database, dashboard.

:func:`emorec.service.app.create_app` builds the app; :class:`ServiceSettings` configures it
from ``EMOREC_*`` environment variables or a ``.env`` file. Needs the ``service`` extra:
``pip install "emorec[service]"``.
"""

from emorec.service.settings import ServiceSettings, StorageSettings

__all__ = ["ServiceSettings", "StorageSettings"]

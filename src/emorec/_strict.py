"""Base class for emorec's typed settings: unknown keys are errors, assignments are validated."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class StrictModel(BaseModel):
    """A pydantic model that forbids unknown fields and validates on assignment.

    Subclasses document every field with ``Field(description=...)``; that text is the config
    reference shown in README.md and in error messages.
    """

    model_config = ConfigDict(extra="forbid", validate_assignment=True, frozen=False)

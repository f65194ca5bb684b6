"""One router per resource: ``health`` (liveness, readiness), ``predict`` (predictions and
explanations), ``history`` (stored predictions and their statistics) and ``jobs`` (batch jobs).
Each imports what it shares with the others from :mod:`emorec.service.deps`, never the app."""

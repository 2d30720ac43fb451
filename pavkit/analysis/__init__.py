"""Analysis: scores → aggregates → plots. Plot functions take data and ``ax=None`` and return the axes."""

"""Custom pyinfra facts, in the style of pyinfra's own (``pyinfra/facts/*.py``)."""

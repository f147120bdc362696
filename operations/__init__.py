"""Custom pyinfra operations, in the style of pyinfra's own (``pyinfra/operations/*.py``):
each reads facts, then yields commands or says why nothing changes. The deploys in
``deploys/`` compose them."""

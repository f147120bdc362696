"""The cluster's components, one module each: its ``@deploy()`` and its ``Component`` (groups,
files, checker, template values). ``mail_cluster.py`` lists them in the order of the work."""

"""pyinfra inventory: hosts, groups and their data come from staging-small.yml beside this file."""

from mailstack.inventory import groups_for

globals().update(groups_for(__file__))

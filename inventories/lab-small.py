"""pyinfra inventory: hosts, groups and their data come from lab-small.yml beside this file."""

from mailstack.inventory import groups_for

globals().update(groups_for(__file__))
